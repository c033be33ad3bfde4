//! Counters of the labeler stage, read by the progress display and the summary and
//! exported on `/metrics` by `bucketlens label`.

use bucketlens_runtime::metrics::{ByKind, Counter, Latency, Registry};

#[derive(Debug)]
pub struct Metrics {
    /// Records read from objects.changed.v1.
    pub records_in: Counter,
    /// Images labeled.
    pub labeled: Counter,
    /// Objects that became FAILED records.
    pub failed: Counter,
    /// Deletes (and objects gone before they could be read) passed on as removals.
    pub removed: Counter,
    /// Upserts not labeled (nor read), by reason: `unchanged`, a version this
    /// labeler labeled already.
    pub skipped: ByKind,
    /// Records that could not be decoded, sent to the DLQ as they were.
    pub undecodable: Counter,
    /// Retries of retryable failures.
    pub retries: Counter,
    /// Failures by code (CorruptImage, AccessDenied, UndecodableRecord, …).
    pub errors: ByKind,
    /// Time from taking a record to its outcome being durable.
    pub latency: Latency,
    /// 1 once this process spent its budget (`[labeler] budget`, `--max-images`) and
    /// stopped labeling.
    pub budget_spent: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            records_in: Counter::default(),
            labeled: Counter::default(),
            failed: Counter::default(),
            removed: Counter::default(),
            skipped: ByKind::labelled("reason"),
            undecodable: Counter::default(),
            retries: Counter::default(),
            errors: ByKind::default(),
            latency: Latency::default(),
            budget_spent: Counter::default(),
        }
    }
}

impl Metrics {
    /// Exports the counters (names prefixed by the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        self.records_in.register(registry, "labeler_records_in", "Records read from objects.changed.v1");
        self.labeled.register(registry, "labeler_records_labeled", "Images labeled");
        self.failed.register(registry, "labeler_records_failed", "Objects that became FAILED records");
        self.removed.register(registry, "labeler_records_removed", "Removals passed on");
        self.skipped.register(registry, "labeler_skipped", "Upserts not labeled again, by reason");
        self.undecodable.register(registry, "labeler_records_undecodable", "Records that could not be decoded");
        self.retries.register(registry, "labeler_retries", "Retries of retryable failures");
        self.errors.register(registry, "labeler_errors", "Failures by kind");
        self.budget_spent.register(registry, "labeler_budget_spent", "1 once the labeling budget is spent");
        self.latency.register(
            registry,
            "labeler_processing_seconds",
            "Time from taking a record to its outcome being durable",
        );
    }
}

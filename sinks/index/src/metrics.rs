//! Counters of the index sink.

use bucketlens_runtime::metrics::{Counter, Latency, Registry};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from images.labeled.v1.
    pub records_in: Counter,
    /// Records applied to the index (labeled, failed or removed).
    pub applied: Counter,
    /// Stale records ignored.
    pub stale: Counter,
    /// Of those: older labelings of the same object version by another model.
    pub stale_relabel: Counter,
    /// Records that could not be decoded (sent to the DLQ).
    pub undecodable: Counter,
    /// Records the index refused for good (sent to the DLQ).
    pub rejected: Counter,
    /// Documents written again after OpenSearch answered 409 (another writer changed
    /// them since they were read): read again and decided again.
    pub write_conflicts: Counter,
    /// Documents written again after OpenSearch answered 429 or 5xx, after a backoff.
    pub write_throttled: Counter,
    /// Index commits.
    pub commits: Counter,
    /// Time to write and commit one batch.
    pub batch_latency: Latency,
}

impl Metrics {
    /// Exports the counters (names prefixed by the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        self.records_in.register(registry, "sink_records_in", "Records read from images.labeled.v1");
        self.applied.register(registry, "sink_records_applied", "Records applied to the index");
        self.stale.register(registry, "sink_records_stale", "Records older than the indexed state, ignored");
        self.stale_relabel.register(
            registry,
            "sink_records_stale_relabel",
            "Stale records that were an older labeling of the indexed object version by another model",
        );
        self.undecodable.register(
            registry,
            "sink_errors_undecodable",
            "Records that could not be decoded (sent to the DLQ)",
        );
        self.rejected.register(registry, "sink_errors_rejected", "Records the index refused (sent to the DLQ)");
        self.write_conflicts.register(
            registry,
            "sink_write_conflicts",
            "Documents written again after a conflict (409): read again and decided again",
        );
        self.write_throttled.register(
            registry,
            "sink_write_throttled",
            "Documents written again after OpenSearch throttled them or a shard was unavailable (429, 5xx)",
        );
        self.commits.register(registry, "sink_commits", "Index commits");
        self.batch_latency.register(registry, "sink_batch_seconds", "Time to write and commit one batch");
    }
}

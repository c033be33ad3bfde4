//! Counters of the event producer, for `/metrics` and the summary.

use bucketlens_runtime::metrics::{Counter, Registry};
use bucketlens_schemas::ChangeKind;

use crate::Parsed;

/// What the event producer did, for `/metrics` and the summary.
#[derive(Debug, Default)]
pub struct Metrics {
    pub upserts: Counter,
    pub deletes: Counter,
    /// Notifications that were not S3 events (sent to the DLQ or refused).
    pub malformed: Counter,
    /// `s3:TestEvent`s and records of other event types or non-image keys.
    pub skipped: Counter,
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        self.upserts.register(registry, "events_upserts", "Upsert records produced from event notifications");
        self.deletes.register(registry, "events_deletes", "Delete records produced from event notifications");
        self.malformed.register(registry, "events_malformed", "Notifications that could not be read");
        self.skipped.register(registry, "events_skipped", "Test events, other event types and non-image keys");
    }

    pub(crate) fn count(&self, parsed: &Parsed) {
        let deletes = parsed.changes.iter().filter(|c| c.kind == ChangeKind::Delete).count() as u64;
        self.deletes.add(deletes);
        self.upserts.add(parsed.changes.len() as u64 - deletes);
        self.skipped.add(parsed.skipped as u64 + u64::from(parsed.test_event));
    }
}

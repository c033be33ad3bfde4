//! Counters of the listing producer, exported on `/metrics` by
//! `bucketlens produce listing --watch`.

use bucketlens_runtime::metrics::{Counter, Registry};
use bucketlens_runtime::produce::ProduceStats;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Upsert records produced to objects.changed.v1.
    pub upserts: Counter,
    /// Delete records produced to objects.changed.v1.
    pub deletes: Counter,
}

impl Metrics {
    /// Exports the counters (names prefixed by the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        self.upserts.register(registry, "producer_upserts", "Upsert records produced to objects.changed.v1");
        self.deletes.register(registry, "producer_deletes", "Delete records produced to objects.changed.v1");
    }

    /// Counts what one sync produced.
    pub fn count(&self, stats: &ProduceStats) {
        self.upserts.add(stats.upserts);
        self.deletes.add(stats.deletes);
    }
}

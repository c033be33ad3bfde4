//! Counters of the index sink.

use bucketlens_runtime::metrics::Counter;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from images.labeled.v1.
    pub records_in: Counter,
    /// Records applied to the index (labeled, failed or removed).
    pub applied: Counter,
    /// Stale records ignored.
    pub stale: Counter,
    /// Records that could not be decoded (sent to the DLQ).
    pub undecodable: Counter,
    /// Index commits.
    pub commits: Counter,
}

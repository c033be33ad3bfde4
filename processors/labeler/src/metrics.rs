//! Counters of the labeler stage, read by the progress display and the summary.

use bucketlens_runtime::metrics::Counter;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from objects.changed.v1.
    pub records_in: Counter,
    /// Images labeled.
    pub labeled: Counter,
    /// Objects that became FAILED records.
    pub failed: Counter,
    /// Deletes (and objects gone before they could be read) passed on as removals.
    pub removed: Counter,
    /// Records that could not be decoded, sent to the DLQ as they were.
    pub undecodable: Counter,
    /// Retries of retryable failures.
    pub retries: Counter,
}

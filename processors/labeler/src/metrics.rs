//! Counters of the labeler stage, read by the progress display and the summary.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from objects.changed.v1.
    pub records_in: AtomicU64,
    /// Images labeled.
    pub labeled: AtomicU64,
    /// Objects that became FAILED records.
    pub failed: AtomicU64,
    /// Deletes (and objects gone before they could be read) passed on as removals.
    pub removed: AtomicU64,
    /// Records that could not be decoded, sent to the DLQ as they were.
    pub undecodable: AtomicU64,
    /// Retries of retryable failures.
    pub retries: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

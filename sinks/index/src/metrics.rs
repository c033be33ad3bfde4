//! Counters of the index sink.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from images.labeled.v1.
    pub records_in: AtomicU64,
    /// Records applied to the index (labeled, failed or removed).
    pub applied: AtomicU64,
    /// Stale records ignored.
    pub stale: AtomicU64,
    /// Records that could not be decoded (sent to the DLQ).
    pub undecodable: AtomicU64,
    /// Index commits.
    pub commits: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

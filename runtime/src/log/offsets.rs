//! Tracks which offsets of a partition are finished when work completes out of
//! order, and yields the offset that is safe to commit: the end of the contiguous
//! finished prefix. Committing past an unfinished record would lose it on a crash.

use std::collections::{BTreeSet, HashMap};

/// Per-partition bookkeeping of offsets handed out and finished.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
}

#[derive(Debug, Default)]
struct PartitionState {
    /// Offsets started and not finished yet.
    pending: BTreeSet<i64>,
    /// One past the highest offset started.
    next: i64,
    /// The last offset reported by `committable` for this partition.
    committed: Option<i64>,
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that work on `offset` of `partition` has started.
    pub fn start(&mut self, partition: i32, offset: i64) {
        let state = self.partitions.entry(partition).or_default();
        state.pending.insert(offset);
        state.next = state.next.max(offset + 1);
    }

    /// Records that work on `offset` of `partition` is finished (durable downstream).
    pub fn finish(&mut self, partition: i32, offset: i64) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.pending.remove(&offset);
        }
    }

    /// Drops the partitions a rebalance took away: their work is no longer ours to
    /// commit (a late `finish` for them is ignored).
    pub fn forget(&mut self, partitions: &[i32]) {
        self.partitions.retain(|p, _| !partitions.contains(p));
    }

    /// Number of offsets started and not finished.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|s| s.pending.len()).sum()
    }

    /// `(partition, next offset)` pairs that moved since the last call: for each
    /// partition, the lowest unfinished offset, or one past the last started.
    pub fn committable(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&partition, state) in &mut self.partitions {
            let safe = state.pending.first().copied().unwrap_or(state.next);
            if state.committed != Some(safe) {
                state.committed = Some(safe);
                out.push((partition, safe));
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_contiguous_finished_prefix() {
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.start(0, o);
        }
        t.finish(0, 12);
        t.finish(0, 13);
        assert_eq!(t.committable(), vec![(0, 10)], "10 is unfinished: nothing past it");
        t.finish(0, 10);
        assert_eq!(t.committable(), vec![(0, 11)]);
        assert_eq!(t.committable(), vec![], "no change, nothing to commit");
        t.finish(0, 11);
        t.finish(0, 14);
        assert_eq!(t.committable(), vec![(0, 15)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::new();
        t.start(0, 0);
        t.start(1, 7);
        t.finish(1, 7);
        assert_eq!(t.committable(), vec![(0, 0), (1, 8)]);
    }

    #[test]
    fn a_forgotten_partition_is_neither_in_flight_nor_committed() {
        let mut t = OffsetTracker::new();
        t.start(0, 3);
        t.start(1, 5);
        t.forget(&[0]);
        t.finish(0, 3);
        assert_eq!(t.in_flight(), 1);
        t.finish(1, 5);
        assert_eq!(t.committable(), vec![(1, 6)]);
    }
}

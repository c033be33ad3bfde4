//! Which state of a document wins.
//!
//! Each record carries the object's version: the S3 sequencer when there is one
//! (event notifications, our listing producer), else `last_modified`. A record
//! replaces the document's state when its version is the same or newer:
//! - older → stale, ignored (a redelivered or replayed old record never regresses);
//! - same → applied (a replay is idempotent; re-labelling with a newer model
//!   overwrites, because the object version is the same and the labels are new);
//! - a removal leaves a tombstone with its version, so a late create with an older
//!   sequencer does not resurrect a deleted object.

use std::cmp::Ordering;

use bucketlens_schemas::compare_sequencers;

/// The ordering fields of a record or a stored document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    pub sequencer: Option<String>,
    pub last_modified: Option<i64>,
}

/// Whether `incoming` may replace `current`.
pub fn supersedes(incoming: &Version, current: &Version) -> bool {
    if let (Some(a), Some(b)) = (&incoming.sequencer, &current.sequencer) {
        return compare_sequencers(a, b) != Ordering::Less;
    }
    if let (Some(a), Some(b)) = (incoming.last_modified, current.last_modified) {
        return a >= b;
    }
    true
}

/// Whether a document in state `doc` shows `record` already (or a newer state):
/// its version is newer, or the same and labeled no earlier.
pub fn reflects(doc: &crate::Hit, record: &bucketlens_schemas::ImageLabeled) -> bool {
    let stored = Version { sequencer: doc.sequencer.clone(), last_modified: doc.last_modified };
    let incoming = Version { sequencer: record.sequencer.clone(), last_modified: record.last_modified };
    match (supersedes(&incoming, &stored), supersedes(&stored, &incoming)) {
        (false, _) => true,
        (true, true) => doc.labeled_at >= record.labeled_at,
        (true, false) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> Version {
        Version { sequencer: Some(s.into()), last_modified: None }
    }

    #[test]
    fn newer_or_equal_sequencers_win() {
        assert!(supersedes(&seq("0055AED6DCD90281E6"), &seq("0055AED6DCD90281E5")));
        assert!(supersedes(&seq("0055AED6DCD90281E5"), &seq("0055AED6DCD90281E5")), "replays re-apply");
        assert!(!supersedes(&seq("0055AED6DCD90281E4"), &seq("0055AED6DCD90281E5")), "stale");
        // Right-padded comparison: "1" is "10" against "0F".
        assert!(supersedes(&seq("1"), &seq("0F")));
    }

    #[test]
    fn falls_back_to_last_modified_then_applies() {
        let lm = |t| Version { sequencer: None, last_modified: Some(t) };
        assert!(supersedes(&lm(2), &lm(1)));
        assert!(!supersedes(&lm(1), &lm(2)));
        assert!(supersedes(&Version::default(), &lm(2)), "nothing to compare: the newest record wins");
    }
}

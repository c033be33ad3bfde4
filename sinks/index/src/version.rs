//! Which state of a document wins: the newest labeling.
//!
//! ## The rule
//!
//! Every record on `images.labeled.v1` says what the labeler found when it read the
//! store, at `labeled_at`:
//! - a labeled or failed record describes the version whose bytes it read (its etag,
//!   version id, size and LastModified come from that GET or HEAD, not from the change
//!   that asked for it); the labeler always reads the object's current state;
//! - a removal says the object was gone when it looked (a delete change is checked with
//!   a HEAD; an object found there again is labeled instead).
//!
//! S3 reads are strongly consistent, so the newest of those readings is the object's
//! state. A record therefore replaces the document when its `labeled_at` is the same
//! as or newer than the document's:
//! - the same object version labeled again (a new model, new settings, `relabel`)
//!   always lands, whatever source fed either record;
//! - a version delete lands: the labeler read the version now current;
//! - an older record, redelivered or replayed, never regresses the document;
//! - a delete is never undone by a late create of an older state: the labeler of the
//!   late create finds the object gone and records a removal;
//! - equal times: the later record in the log wins (a replay is idempotent).
//!
//! Neither S3 LastModified (second precision from listings, the event's time from
//! notifications, an older version's after a version delete) nor the sequencer (only
//! events have one, and it orders events, not readings) is compared. The labeler
//! makes `labeled_at` grow per object beyond its clock: a labeling is stamped after
//! the newest one its ledger knows of that object, so a member whose clock is behind
//! another's after a rebalance still wins with a newer reading.
//!
//! The labeler's ledger keeps, per object, the outcome with the newest `labeled_at`:
//! the same rule, over the same records, so what it calls labeled is what the index
//! shows.

use bucketlens_schemas::ImageLabeled;
use tracing::debug;

use crate::Hit;

/// The fields of a record or a stored document that decide, and name, its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    pub labeled_at: i64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// `name version` of the model that labeled it.
    pub model: String,
}

impl Version {
    pub fn of(record: &ImageLabeled) -> Self {
        Self {
            labeled_at: record.labeled_at,
            etag: record.etag.clone(),
            version_id: record.version_id.clone(),
            model: format!("{} {}", record.model.name, record.model.version),
        }
    }

    /// Whether both name the same object version: the same version id, or, where
    /// neither has one, the same etag.
    pub fn same_object_version(&self, other: &Self) -> bool {
        match (&self.version_id, &other.version_id) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.etag.is_some() && self.etag == other.etag,
            _ => false,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "labeled at {} by {}", self.labeled_at, self.model)?;
        if let Some(etag) = &self.etag {
            write!(f, ", etag {etag}")?;
        }
        if let Some(version) = &self.version_id {
            write!(f, ", version {version}")?;
        }
        Ok(())
    }
}

/// What the index does with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The record is the newest labeling: it becomes the document.
    Apply,
    /// An older labeling (a redelivery, a replay): ignored.
    Stale,
    /// An older labeling of the very object version the document shows, by another
    /// model: ignored like any stale record, but it means two labelers disagree about
    /// which came last (an old labeler group still running beside a new one, clocks
    /// apart, or an old model's labels replayed into a live index). Counted apart.
    StaleRelabel,
}

/// What to do with `incoming` against the document's `stored` state.
pub fn decide(incoming: &Version, stored: &Version) -> Decision {
    if incoming.labeled_at >= stored.labeled_at {
        return Decision::Apply;
    }
    if incoming.model != stored.model && incoming.same_object_version(stored) {
        return Decision::StaleRelabel;
    }
    Decision::Stale
}

/// [`decide`] for `record`, naming the object, both states and the rule in a debug
/// line when the record is ignored.
pub fn judge(record: &ImageLabeled, incoming: &Version, stored: &Version) -> Decision {
    let decision = decide(incoming, stored);
    if decision != Decision::Apply {
        debug!(
            bucket = %record.bucket, key = %record.key, record = %incoming, document = %stored,
            rule = "the newest labeling wins", ?decision, "stale record ignored"
        );
    }
    decision
}

/// Whether `incoming` may replace `current`.
pub fn supersedes(incoming: &Version, current: &Version) -> bool {
    decide(incoming, current) == Decision::Apply
}

/// Whether a document in state `doc` shows `record` already (or a newer labeling).
pub fn reflects(doc: &Hit, record: &ImageLabeled) -> bool {
    doc.labeled_at >= record.labeled_at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(labeled_at: i64, etag: &str, model: &str) -> Version {
        Version { labeled_at, etag: Some(etag.into()), version_id: None, model: model.into() }
    }

    #[test]
    fn the_newest_labeling_wins_and_equal_times_reapply() {
        assert_eq!(decide(&at(2, "a", "m 1"), &at(1, "b", "m 1")), Decision::Apply);
        assert_eq!(decide(&at(1, "a", "m 1"), &at(1, "a", "m 1")), Decision::Apply, "a replay re-applies");
        assert_eq!(decide(&at(1, "b", "m 1"), &at(2, "a", "m 1")), Decision::Stale);
    }

    #[test]
    fn an_older_labeling_of_the_same_version_by_another_model_is_told_apart() {
        assert_eq!(decide(&at(1, "a", "m 1"), &at(2, "a", "m 2")), Decision::StaleRelabel);
        assert_eq!(decide(&at(1, "b", "m 1"), &at(2, "a", "m 2")), Decision::Stale, "another version");
        let versioned = |t, v: &str, m: &str| Version { version_id: Some(v.into()), ..at(t, "same bytes", m) };
        assert_eq!(decide(&versioned(1, "v1", "m 1"), &versioned(2, "v2", "m 2")), Decision::Stale);
        assert_eq!(decide(&versioned(1, "v1", "m 1"), &versioned(2, "v1", "m 2")), Decision::StaleRelabel);
    }

    #[test]
    fn a_relabel_lands_whatever_the_times_of_the_object_say() {
        // Issue 39's first case: an event record (eventTime 23:22:11.631), then the
        // same version relabeled from a listing (LastModified 23:22:11.000). Object
        // times are not compared: the later labeling wins.
        let event = Version { labeled_at: 1_000, ..at(0, "e1", "lite0 1") };
        let relabel = Version { labeled_at: 2_000, ..at(0, "e1", "lite0 2") };
        assert!(supersedes(&relabel, &event));
        assert!(!supersedes(&event, &relabel));
    }
}

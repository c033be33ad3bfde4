//! What every producer reports: the same statistics and the same error, whether it
//! lists a folder or a bucket, reads an inventory report or receives notifications,
//! so that whoever runs a producer handles them all alike.

use crate::log::LogError;
use crate::sqlite::StoreError;

/// What one run of a producer produced to `objects.changed.v1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProduceStats {
    /// Images found in what was read (changed or not).
    pub images: u64,
    /// Upserts produced (new or changed images).
    pub upserts: u64,
    /// Deletes produced.
    pub deletes: u64,
    /// Entries passed over: not images, folder markers, noncurrent versions.
    pub skipped: u64,
    /// Entries that could not be read, each reported with where it is and why. A
    /// folder that cannot be listed is unknown, not empty: its documents are kept.
    pub unreadable: u64,
    /// Files whose names are not valid UTF-8 (an object key is UTF-8), each reported
    /// with its path.
    pub invalid_names: u64,
    /// Symbolic links (to images or folders) skipped: bucketlens reads only the
    /// files in a folder. Each is reported with its path.
    pub links: u64,
}

impl ProduceStats {
    /// Records produced.
    pub fn produced(&self) -> u64 {
        self.upserts + self.deletes
    }
}

/// Why a producer stopped. Nothing it had read is lost: its position (listing
/// state, checkpoint, queue message) only moves once the log has the records.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The log refused the records.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The producer's own state (listing state, inventory checkpoint) failed.
    #[error(transparent)]
    State(#[from] StoreError),
    /// What the producer reads cannot be read: `what` names it.
    #[error("{what}: {reason}")]
    Source { what: String, reason: String },
    /// A record could not be encoded (a bug: the schemas and the structs disagree).
    #[error("encoding a change failed: {0}")]
    Encode(String),
}

impl ProduceError {
    /// `what` (a listing, a manifest, a data file) cannot be read, because of `reason`.
    pub fn reading(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Source { what: what.into(), reason: reason.to_string() }
    }
}

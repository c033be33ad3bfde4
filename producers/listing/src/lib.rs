//! The listing producer: turns what a bucket holds into `objects.changed.v1` records.
//!
//! For a local directory it is a sync: it remembers what it produced (in
//! `<data-dir>/listing.sqlite`) and emits only the differences — new or changed
//! images as upserts, vanished ones as deletes — so indexing the same folder twice
//! does no work the second time, and files deleted while bucketlens was not running
//! are removed on the next run. `--watch` keeps syncing the paths that change.
//!
//! Layout: [`config`]; [`state`] (what was produced, per key); [`dir`] (walk +
//! diff + produce); [`s3`] (ListObjectsV2 + diff + produce); [`watch`] (filesystem notifications → targeted syncs).
//! Memory does not grow with the number of files: the diff runs in SQLite.

pub mod config;
pub mod dir;
pub mod s3;
pub mod state;
pub mod watch;

pub use config::Config;
pub use dir::{DirProducer, SyncStats};

//! The listing producer: turns what a bucket holds into `objects.changed.v1` records.
//!
//! For a local directory it is a sync: it remembers what it produced (in
//! `<data-dir>/listing.sqlite`) and emits only the differences — new or changed
//! images as upserts, vanished ones as deletes — so indexing the same folder twice
//! does no work the second time, and files deleted while bucketlens was not running
//! are removed on the next run. `--watch` keeps syncing the paths that change.
//!
//! Layout: [`config`]; [`state`] (what was produced, per key); [`dir`] (walk +
//! diff + produce); [`s3`] (ListObjectsV2 + diff + produce); [`watch`] (filesystem
//! notifications → targeted syncs); [`metrics`]; this file (what both listings
//! share: encoding a change, and the deletes of keys gone since the last listing).
//! Memory does not grow with the number of files: the diff runs in SQLite.
//!
//! A record's key is `bucket/key` ([`bucketlens_schemas::record_key`]), so every
//! change of one object lands on one partition of `objects.changed.v1`, in order.

pub mod config;
pub mod dir;
pub mod metrics;
pub mod s3;
pub mod state;
pub mod watch;

use bucketlens_runtime::log::{OutRecord, Output};
use bucketlens_runtime::produce::ProduceError;
use bucketlens_schemas::{record_key, topics, AvroRecord, ObjectChanged};

pub use config::Config;
pub use dir::DirProducer;
pub use metrics::Metrics;
use state::{Scope, State};

/// `change` as a record of `objects.changed.v1` (and as itself, for `--print`).
fn encode(change: ObjectChanged) -> Result<(OutRecord, ObjectChanged), ProduceError> {
    let value = change.to_bytes().map_err(|e| ProduceError::Encode(e.to_string()))?;
    Ok((OutRecord::new(record_key(&change.bucket, &change.key), value), change))
}

/// Produces a delete (made by `delete`) for every key of `scope` that `generation`
/// did not see, `batch_size` at a time, forgetting each batch once the log has it.
async fn produce_deletes(
    state: &State,
    output: &Output,
    scope: &Scope,
    generation: i64,
    batch_size: usize,
    delete: impl Fn(&str) -> ObjectChanged,
) -> Result<u64, ProduceError> {
    let mut deletes = 0;
    loop {
        let within = scope.clone();
        let gone = state.run(move |s| s.unseen(&within, generation, batch_size)).await?;
        if gone.is_empty() {
            return Ok(deletes);
        }
        let records = gone.iter().map(|key| encode(delete(key))).collect::<Result<Vec<_>, _>>()?;
        output.send(topics::OBJECTS_CHANGED, records).await?;
        deletes += gone.len() as u64;
        let bucket = scope.bucket.clone();
        state.run(move |s| s.forget(&bucket, &gone)).await?;
    }
}

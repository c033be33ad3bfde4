//! The event producer: S3 event notifications become `objects.changed.v1` records,
//! from an SQS queue ([`sqs`]), an HTTP webhook ([`webhook`]) or a file ([`file`]).
//!
//! Layout: [`config`]; [`notification`] (every documented shape → records, no IO);
//! one module per input; [`metrics`]. Each input acknowledges its source (deletes the SQS
//! message, answers the request 2xx) only after the log has the records.
//! A body that is not a notification goes to `notifications.dlq.v1` with the
//! reason in its headers (SQS) or is refused with a 400 (webhook).
//!
//! Each record's key is `bucket/key` of the object the event names, so every event
//! of one object lands on one partition of `objects.changed.v1`, in order; S3's
//! sequencer travels in the record so that the index can drop late events.

pub mod config;
pub mod file;
pub mod metrics;
pub mod notification;
pub mod sqs;
pub mod webhook;

use bucketlens_runtime::log::{OutRecord, Output};
use bucketlens_runtime::produce::ProduceError;
use bucketlens_schemas::{record_key, topics, AvroRecord, ObjectChanged};

pub use config::Config;
pub use metrics::Metrics;
pub use notification::{parse, ParseError, Parsed};

/// The log records of `changes`, each with its readable form for `--print`.
pub fn records(changes: Vec<ObjectChanged>) -> Result<Vec<(OutRecord, ObjectChanged)>, ProduceError> {
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        let value = change.to_bytes().map_err(|e| ProduceError::Encode(e.to_string()))?;
        out.push((OutRecord::new(record_key(&change.bucket, &change.key), value), change));
    }
    Ok(out)
}

/// Produces what one parsed notification holds.
pub async fn produce(output: &Output, metrics: &Metrics, parsed: Parsed) -> Result<(), ProduceError> {
    if parsed.test_event {
        tracing::info!("s3:TestEvent received (a notification was configured); nothing to produce");
    }
    metrics.count(&parsed);
    output.send(topics::OBJECTS_CHANGED, records(parsed.changes)?).await?;
    Ok(())
}

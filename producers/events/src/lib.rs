//! The event producer: S3 event notifications become `objects.changed.v1` records,
//! from an SQS queue ([`sqs`]), an HTTP webhook ([`webhook`]) or a file ([`file`]).
//!
//! Layout: [`config`]; [`notification`] (every documented shape → records, no IO);
//! one module per input. Each input acknowledges its source (deletes the SQS
//! message, answers the request 2xx) only after the log has the records.
//! A body that is not a notification goes to `notifications.dlq.v1` with the
//! reason in its headers (SQS) or is refused with a 400 (webhook).

pub mod config;
pub mod file;
pub mod notification;
pub mod sqs;
pub mod webhook;

use bucketlens_runtime::log::{OutRecord, Output};
use bucketlens_runtime::metrics::Counter;
use bucketlens_runtime::produce::ProduceError;
use bucketlens_schemas::{record_key, topics, AvroRecord, ChangeKind, ObjectChanged};

pub use config::Config;
pub use notification::{parse, ParseError, Parsed};

/// What the event producer did, for `/metrics` and the summary.
#[derive(Debug, Default)]
pub struct Metrics {
    pub upserts: Counter,
    pub deletes: Counter,
    /// Notifications that were not S3 events (sent to the DLQ or refused).
    pub malformed: Counter,
    /// `s3:TestEvent`s and records of other event types or non-image keys.
    pub skipped: Counter,
}

impl Metrics {
    pub fn register(&self, registry: &mut bucketlens_runtime::metrics::Registry) {
        self.upserts.register(registry, "events_upserts", "Upsert records produced from event notifications");
        self.deletes.register(registry, "events_deletes", "Delete records produced from event notifications");
        self.malformed.register(registry, "events_malformed", "Notifications that could not be read");
        self.skipped.register(registry, "events_skipped", "Test events, other event types and non-image keys");
    }

    fn count(&self, parsed: &Parsed) {
        let deletes = parsed.changes.iter().filter(|c| c.kind == ChangeKind::Delete).count() as u64;
        self.deletes.add(deletes);
        self.upserts.add(parsed.changes.len() as u64 - deletes);
        self.skipped.add(parsed.skipped as u64 + u64::from(parsed.test_event));
    }
}

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

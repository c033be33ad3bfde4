//! S3 event notifications, in every shape they arrive in, normalised into
//! `ObjectChanged` records:
//! - S3's own `{"Records": [...]}` (eventVersion 2.x), as SQS, Lambda and files get
//!   it; MinIO and RustFS send the same records with `EventName`/`Key` beside them;
//! - the same wrapped in an SNS envelope (`"Type": "Notification"`, `"Message": "…"`);
//! - EventBridge events (`"source": "aws.s3"`, `"detail-type": "Object Created"`);
//! - `s3:TestEvent`, sent when a notification is configured: ignored;
//! - Lambda's event documents, as users save them from an existing Lambda set-up:
//!   SQS records (`"eventSource": "aws:sqs"`, the notification in `body`, itself
//!   possibly an SNS envelope) and SNS records (`"EventSource": "aws:sns"`, the
//!   notification in `Sns.Message`).
//!
//! A record that cannot be read does not discard the others: the document's good
//! records are returned, and the bad ones in [`Parsed::bad`] with their index.
//!
//! Keys arrive form-URL-encoded (`+` is a space, `%2F` a slash) and are decoded
//! here. This module does no IO.

use bucketlens_runtime::aws::{decode_key, parse_time};
use bucketlens_runtime::now_ms;
use bucketlens_schemas::{ChangeKind, ChangeSource, ImageFormat, ObjectChanged};
use serde::Deserialize;

/// What one notification body holds.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Creates and deletes of images, in the order of the body.
    pub changes: Vec<ObjectChanged>,
    /// Records skipped: other event types (tagging, ACL, restore...), folder
    /// markers and keys that are not images.
    pub skipped: usize,
    /// An `s3:TestEvent` (sent by S3 when a notification is configured).
    pub test_event: bool,
    /// Records that could not be read: where they are in the document, and why
    /// (`record 2: …`, `record 0: record 1: …` inside an SQS record's body).
    pub bad: Vec<String>,
}

impl Parsed {
    fn merge(&mut self, index: usize, inner: Result<Parsed, ParseError>) {
        match inner {
            Ok(inner) => {
                self.changes.extend(inner.changes);
                self.skipped += inner.skipped;
                self.test_event |= inner.test_event;
                self.bad.extend(inner.bad.into_iter().map(|reason| format!("record {index}: {reason}")));
            }
            Err(e) => self.bad.push(format!("record {index}: {e}")),
        }
    }
}

/// Why a body is not an S3 notification.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not an S3 event notification (no Records, no EventBridge detail, no SNS Message, no s3:TestEvent)")]
    Unknown,
    #[error("record {index}: {reason}")]
    Record { index: usize, reason: String },
    /// No record of the document could be read: each one, with its index.
    #[error("{}", .0.join("; "))]
    Records(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Records(S3Records),
    EventBridge(EventBridgeEvent),
    Sns(SnsEnvelope),
    Test(TestEvent),
}

#[derive(Deserialize)]
struct S3Records {
    #[serde(rename = "Records")]
    records: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    event_version: String,
    event_name: String,
    event_time: Option<String>,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Object {
    key: String,
    size: Option<i64>,
    e_tag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeEvent {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    time: Option<String>,
    detail: EventBridgeDetail,
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: S3Bucket,
    object: EventBridgeObject,
    /// "Permanently Deleted" or "Delete Marker Created" (Object Deleted only).
    #[serde(rename = "deletion-type")]
    deletion_type: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeObject {
    key: String,
    size: Option<i64>,
    etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct TestEvent {
    #[serde(rename = "Event")]
    event: String,
}

/// Parses one notification body (the body of an SQS message, a webhook request, a
/// line of a file).
pub fn parse(body: &str) -> Result<Parsed, ParseError> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| ParseError::Json(e.to_string()))?;
    parse_value(value)
}

/// Why a record of a `Records` list is another service's event (SES, SNS, DynamoDB
/// streams use the same list), if it is one: S3's is `aws:s3`, S3-compatible stores
/// name themselves (`minio:s3`).
fn not_s3(raw: &serde_json::Value) -> Option<String> {
    let source = raw.get("eventSource").or_else(|| raw.get("EventSource")).and_then(|s| s.as_str());
    match source {
        // aws:s3, and the S3-compatible stores' own (minio:s3 from MinIO and RustFS, ceph:s3).
        Some(s3) if s3.ends_with(":s3") => None,
        Some(other) => Some(format!("not an S3 event notification (its eventSource is {other:?})")),
        None => None,
    }
}

pub(crate) fn parse_value(value: serde_json::Value) -> Result<Parsed, ParseError> {
    let body: Body = serde_json::from_value(value).map_err(|_| ParseError::Unknown)?;
    let mut parsed = Parsed::default();
    match body {
        Body::Records(records) => {
            for (index, raw) in records.records.into_iter().enumerate() {
                if let Some(inner) = lambda_record(&raw) {
                    parsed.merge(index, parse(inner));
                    continue;
                }
                let record = match not_s3(&raw) {
                    Some(reason) => Err(reason),
                    None => serde_json::from_value::<S3Record>(raw).map_err(|e| e.to_string()).and_then(from_s3_record),
                };
                match record {
                    Ok(change) => push(&mut parsed, change),
                    Err(reason) => parsed.bad.push(format!("record {index}: {reason}")),
                }
            }
            // Nothing readable at all: the document is malformed as a whole.
            let nothing_read = parsed.changes.is_empty() && parsed.skipped == 0 && !parsed.test_event;
            if nothing_read && !parsed.bad.is_empty() {
                return Err(ParseError::Records(parsed.bad));
            }
        }
        Body::EventBridge(event) => {
            if event.source != "aws.s3" {
                return Err(ParseError::Unknown);
            }
            push(&mut parsed, from_eventbridge(event).map_err(|reason| ParseError::Record { index: 0, reason })?);
        }
        Body::Sns(envelope) => {
            if envelope.kind != "Notification" {
                return Err(ParseError::Unknown);
            }
            return parse(&envelope.message);
        }
        Body::Test(test) => {
            if !test.event.ends_with("TestEvent") {
                return Err(ParseError::Unknown);
            }
            parsed.test_event = true;
        }
    }
    Ok(parsed)
}

/// The notification inside a record of a Lambda event document: an SQS record's
/// `body`, or an SNS record's `Sns.Message`.
fn lambda_record(raw: &serde_json::Value) -> Option<&str> {
    if raw.get("eventSource").and_then(|s| s.as_str()) == Some("aws:sqs") {
        return raw.get("body")?.as_str();
    }
    if raw.get("EventSource").and_then(|s| s.as_str()) == Some("aws:sns") {
        return raw.get("Sns")?.get("Message")?.as_str();
    }
    None
}

fn push(parsed: &mut Parsed, change: Option<ObjectChanged>) {
    match change {
        Some(change) => parsed.changes.push(change),
        None => parsed.skipped += 1,
    }
}

/// `None` for events that do not change what an object holds, and for keys that
/// are not images.
fn from_s3_record(record: S3Record) -> Result<Option<ObjectChanged>, String> {
    if !record.event_version.starts_with("2.") {
        return Err(format!("eventVersion {} is not supported (2.x is)", record.event_version));
    }
    let name = record.event_name.strip_prefix("s3:").unwrap_or(&record.event_name);
    let kind = match name.split(':').next() {
        Some("ObjectCreated") => ChangeKind::Upsert,
        Some("ObjectRemoved") => ChangeKind::Delete,
        // A restored copy of an archived object can be read now: it is labeled.
        Some("ObjectRestore") if name.ends_with(":Completed") => ChangeKind::Upsert,
        // Expiry removes the object (or hides it behind a delete marker).
        Some("LifecycleExpiration") if name.contains("Delete") => ChangeKind::Delete,
        _ => return Ok(None),
    };
    let object = record.s3.object;
    let version_removed = kind == ChangeKind::Delete && name.ends_with(":Delete") && object.version_id.is_some();
    change(
        Fields {
            bucket: record.s3.bucket.name,
            raw_key: object.key,
            kind,
            size: object.size,
            etag: object.e_tag,
            version_id: object.version_id,
            sequencer: object.sequencer,
            time: record.event_time,
        }
        .version_removed(version_removed),
    )
}

fn from_eventbridge(event: EventBridgeEvent) -> Result<Option<ObjectChanged>, String> {
    let kind = match event.detail_type.as_str() {
        "Object Created" | "Object Restore Completed" => ChangeKind::Upsert,
        "Object Deleted" => ChangeKind::Delete,
        _ => return Ok(None),
    };
    let version_removed = kind == ChangeKind::Delete
        && event.detail.deletion_type.as_deref() == Some("Permanently Deleted")
        && event.detail.object.version_id.is_some();
    let object = event.detail.object;
    change(
        Fields {
            bucket: event.detail.bucket.name,
            raw_key: object.key,
            kind,
            size: object.size,
            etag: object.etag,
            version_id: object.version_id,
            sequencer: object.sequencer,
            time: event.time,
        }
        .version_removed(version_removed),
    )
}

struct Fields {
    bucket: String,
    raw_key: String,
    kind: ChangeKind,
    size: Option<i64>,
    etag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
    time: Option<String>,
}

impl Fields {
    /// When `removed`, the event deleted one version of a versioned object (not a
    /// delete marker): the key may still hold an older version, which is now the
    /// current one. Such a removal becomes a change of the key with no version or
    /// etag: the labeler reads whatever is current and labels it, or removes the key
    /// when no version is left.
    fn version_removed(self, removed: bool) -> Self {
        if !removed {
            return self;
        }
        Self { kind: ChangeKind::Upsert, size: None, etag: None, version_id: None, ..self }
    }
}

fn change(f: Fields) -> Result<Option<ObjectChanged>, String> {
    let key = decode_key(&f.raw_key)?;
    if key.is_empty() || key.ends_with('/') || ImageFormat::from_extension(&key).is_none() {
        return Ok(None);
    }
    let last_modified = match &f.time {
        Some(t) => Some(parse_time(t).map_err(|e| format!("eventTime {t:?}: {e}"))?),
        None => None,
    };
    let upsert = f.kind == ChangeKind::Upsert;
    Ok(Some(ObjectChanged {
        bucket: f.bucket,
        key,
        // The null version of an unversioned bucket has no id worth keeping.
        version_id: f.version_id.filter(|v| !v.is_empty() && v != "null"),
        kind: f.kind,
        size: f.size.filter(|_| upsert),
        etag: f.etag.filter(|e| upsert && !e.is_empty()).map(|e| e.trim_matches('"').to_string()),
        last_modified,
        sequencer: f.sequencer.filter(|s| !s.is_empty()),
        source: ChangeSource::Event,
        observed_at: now_ms(),
        storage_class: None,
        access_tier: None,
    }))
}

#[cfg(test)]
mod tests;

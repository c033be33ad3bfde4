//! Confluent Schema Registry framing, applied at the Kafka boundary.
//!
//! Inside bucketlens every payload is Avro single-object encoded (`C3 01`, the
//! schema's 8-byte fingerprint, the body). With a registry configured, the Kafka log
//! writes the state topics in Confluent's wire format instead — magic byte `0`, the
//! schema's 4-byte registry id (big-endian), the same body — so that any
//! Confluent-compatible consumer reads them. The schemas are registered at start-up
//! under TopicNameStrategy subjects (`<topic>-value`); a registry that refuses one as
//! incompatible stops the process with its answer. Consumers read both framings: a
//! Confluent-framed record's id is looked up once (cached) and turned back into the
//! fingerprint of that schema.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use apache_avro::Schema;
use bucketlens_schemas::fingerprint;
use serde_json::{json, Value};

use super::LogError;

const SINGLE_OBJECT: [u8; 2] = [0xC3, 0x01];
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A Confluent-compatible schema registry (Confluent Platform, Confluent Cloud,
/// Karapace, Redpanda, Apicurio's ccompat API…).
pub struct SchemaRegistry {
    url: String,
    auth: Option<(String, String)>,
    http: reqwest::Client,
    /// Registry id → fingerprint of that schema.
    fingerprints: Mutex<HashMap<u32, [u8; 8]>>,
    /// For lookups from librdkafka's consumer threads.
    runtime: tokio::runtime::Handle,
}

impl SchemaRegistry {
    /// Call from within the tokio runtime.
    pub fn new(url: &str, username: &str, password: &str, timeout: Duration) -> Result<Self, LogError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| LogError::Open { location: url.to_string(), reason: e.to_string() })?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| LogError::Open {
            location: url.to_string(),
            reason: format!("the schema registry client needs the async runtime: {e}"),
        })?;
        let auth = (!username.is_empty()).then(|| (username.to_string(), password.to_string()));
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            auth,
            http,
            fingerprints: Mutex::new(HashMap::new()),
            runtime,
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<(u16, Value), LogError> {
        let request = match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let response = request
            .header("accept", CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| LogError::Unavailable { reason: format!("schema registry {}: {e}", self.url) })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| LogError::Unavailable { reason: format!("schema registry {}: {e}", self.url) })?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Registers `schema` (the .avsc text) under `subject`; its id. Registering the
    /// same schema again returns the same id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, LogError> {
        let path = format!("{}/subjects/{subject}/versions", self.url);
        let body = serde_json::to_vec(&json!({ "schema": schema })).unwrap_or_default();
        let (status, answer) = self.call(self.http.post(&path).header("content-type", CONTENT_TYPE).body(body)).await?;
        let message = answer.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        match status {
            200..=299 => answer.get("id").and_then(Value::as_u64).map(|id| id as u32).ok_or_else(|| LogError::Open {
                location: self.url.clone(),
                reason: format!("registering {subject}: the answer has no id: {answer}"),
            }),
            409 => Err(LogError::Open {
                location: self.url.clone(),
                reason: format!(
                    "the schema registry refuses bucketlens's schema for subject {subject} as incompatible with the versions registered there ({message}); change the subject's compatibility setting or use another topic prefix"
                ),
            }),
            429 | 500..=599 => Err(LogError::Unavailable {
                reason: format!("schema registry {} answered {status} registering {subject}: {message}", self.url),
            }),
            _ => Err(LogError::Open {
                location: self.url.clone(),
                reason: format!("registering {subject} was answered {status}: {answer}"),
            }),
        }
    }

    fn cached(&self, id: u32) -> Option<[u8; 8]> {
        self.fingerprints.lock().ok().and_then(|m| m.get(&id).copied())
    }

    /// Fetches the schema `id` and its fingerprint (not cached yet).
    async fn lookup(&self, id: u32) -> Result<[u8; 8], String> {
        let (status, answer) =
            self.call(self.http.get(format!("{}/schemas/ids/{id}", self.url))).await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("schema registry {} answered {status} for schema id {id}: {answer}", self.url));
        }
        let text = answer.get("schema").and_then(Value::as_str).ok_or("the answer has no schema")?;
        let schema = Schema::parse_str(text).map_err(|e| format!("schema id {id} does not parse: {e}"))?;
        let fp = fingerprint(&schema);
        if let Ok(mut cache) = self.fingerprints.lock() {
            cache.insert(id, fp);
        }
        Ok(fp)
    }

    /// Confluent framing → single-object framing (`None`: not Confluent-framed). Blocks:
    /// call it from a consumer thread, not from async code.
    pub fn to_single_object(&self, payload: &[u8]) -> Option<Result<Vec<u8>, String>> {
        if payload.len() < 5 || payload[0] != 0 {
            return None;
        }
        let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let fp = match self.cached(id).map_or_else(|| self.runtime.block_on(self.lookup(id)), Ok) {
            Ok(fp) => fp,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(confluent_to_single_object(payload, &fp)))
    }
}

/// A Confluent-framed payload (magic 0, 4-byte schema id, body) reframed as
/// single-object encoding with the fingerprint `fp` of that schema.
pub fn confluent_to_single_object(payload: &[u8], fp: &[u8; 8]) -> Vec<u8> {
    let body = payload.get(5..).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 10);
    out.extend_from_slice(&SINGLE_OBJECT);
    out.extend_from_slice(fp);
    out.extend_from_slice(body);
    out
}

/// Single-object framing of the schema `fp` → Confluent framing with `id`; `None`
/// when the payload is not written with that schema (it is then left as it is).
pub fn to_confluent(payload: &[u8], id: u32, fp: &[u8; 8]) -> Option<Vec<u8>> {
    if payload.len() < 10 || payload[..2] != SINGLE_OBJECT || payload[2..10] != fp[..] {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len() - 5);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&payload[10..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_object_and_confluent_framing_carry_the_same_body() {
        let fp = [1, 2, 3, 4, 5, 6, 7, 8];
        let single = [&SINGLE_OBJECT[..], &fp, b"body"].concat();
        let confluent = to_confluent(&single, 258, &fp).unwrap();
        assert_eq!(confluent, [&[0u8, 0, 0, 1, 2][..], b"body"].concat());
        assert!(to_confluent(&single, 258, &[9; 8]).is_none(), "another schema is left alone");
        assert!(to_confluent(b"\0\0\0\x01\x02body", 258, &fp).is_none());
    }
}

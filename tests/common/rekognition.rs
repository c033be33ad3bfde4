//! A stand-in for Amazon Rekognition (which cannot run here): an HTTP/1.1 endpoint on
//! 127.0.0.1 speaking its JSON 1.1 protocol (`X-Amz-Target:
//! RekognitionService.DetectLabels`), as strict as the service on what a client can
//! get wrong, in its documented error shapes:
//! - a request must be SigV4-signed for `rekognition` with the tests' credentials
//!   (`test`/`test`): else MissingAuthenticationTokenException,
//!   InvalidSignatureException or UnrecognizedClientException (403);
//! - `Image` holds `Bytes` or `S3Object`, not both and not neither
//!   (InvalidParameterException); `Bytes` must be a JPEG or a PNG
//!   (InvalidImageFormatException) of at most 5 MB (ImageTooLargeException);
//! - `Features`, `MinConfidence`, `MaxLabels` and `Settings.GeneralLabels` must be
//!   what DetectLabels documents (InvalidParameterException).
//!
//! DetectText (`RekognitionService.DetectText`) takes the same `Image` and none of
//! DetectLabels' other members, and answers with `detect-text.json`.
//!
//! It answers with AWS's documented example response, throttles above a TPS quota (a
//! token bucket, as AWS quotas behave), and fails on demand by object name:
//! - a name containing `denied` gets AccessDeniedException (400);
//! - a name containing `flaky` gets InternalServerError (500) on its first call.
//!
//! Point the SDK at it with AWS_ENDPOINT_URL_REKOGNITION.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use serde_json::Value;

use super::http::Request;

const EXAMPLE: &str = include_str!("../fixtures/rekognition/detect-labels.json");
/// A DetectText answer in the documented shape (see the fixtures' README).
const TEXT_EXAMPLE: &str = include_str!("../fixtures/rekognition/detect-text.json");
/// DetectLabels' limit on image bytes.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// The credentials the stand-in takes (the tests' AWS_ACCESS_KEY_ID and secret).
pub const ACCESS_KEY: &str = "test";
pub const SECRET: &str = "test";

/// One DetectLabels or DetectText call as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `DetectLabels` or `DetectText`.
    pub operation: String,
    pub at: Instant,
    /// `Some((bucket, name))` for an S3Object reference, `None` for bytes.
    pub s3_object: Option<(String, String)>,
    /// The image bytes sent, decoded.
    pub bytes: Vec<u8>,
    pub bytes_len: usize,
    pub status: u16,
    /// The error type of a refused call.
    pub error: Option<String>,
    pub request: Value,
}

struct State {
    quota: f64,
    tokens: f64,
    refilled: Instant,
    calls: Vec<Call>,
    failed_once: Vec<String>,
}

pub struct FakeRekognition {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeRekognition {
    /// An endpoint allowing `quota` calls per second (bursts up to `quota`).
    pub fn start(quota: f64) -> Self {
        let state = Arc::new(Mutex::new(State {
            quota,
            tokens: quota,
            refilled: Instant::now(),
            calls: Vec::new(),
            failed_once: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let port = super::http::serve(move |request| {
            let (status, reply) = answer(&shared, request);
            (status, "application/x-amz-json-1.1", reply.to_string())
        });
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

fn error(kind: &str, message: &str) -> Value {
    serde_json::json!({ "__type": kind, "Message": message })
}

type Refused = (u16, &'static str, String);
/// The S3 reference or the bytes of a request's image.
type Image = (Option<(String, String)>, Vec<u8>);

fn invalid(message: impl Into<String>) -> Refused {
    (400, "InvalidParameterException", message.into())
}

/// What DetectLabels checks of a request before it looks at the image's content.
fn check(request: &Value) -> Result<Image, Refused> {
    let image = request.get("Image").filter(|i| i.is_object()).ok_or_else(|| invalid("Image is required"))?;
    let s3_object = image.get("S3Object").map(|o| {
        (o["Bucket"].as_str().unwrap_or_default().to_string(), o["Name"].as_str().unwrap_or_default().to_string())
    });
    let bytes = match image.get("Bytes") {
        None => None,
        Some(Value::String(text)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| (400, "SerializationException", format!("Image.Bytes is not base64: {e}")))?,
        ),
        Some(_) => return Err((400, "SerializationException", "Image.Bytes must be a base64 string".into())),
    };
    let bytes = match (&s3_object, bytes) {
        (Some(_), Some(_)) => return Err(invalid("Image takes either Bytes or S3Object, not both")),
        (None, None) => return Err(invalid("Image needs Bytes or S3Object")),
        (_, bytes) => bytes.unwrap_or_default(),
    };
    if bytes.len() > MAX_BYTES {
        return Err((400, "ImageTooLargeException", format!("Image size {} is above 5242880 bytes", bytes.len())));
    }
    let jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
    let png = bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
    if s3_object.is_none() && !jpeg && !png {
        return Err((400, "InvalidImageFormatException", "Request has invalid image format".into()));
    }
    let features: Vec<&str> = match request.get("Features") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(|f| f.as_str().unwrap_or("")).collect(),
        Some(_) => return Err(invalid("Features must be a list")),
    };
    if let Some(bad) = features.iter().find(|f| !["GENERAL_LABELS", "IMAGE_PROPERTIES"].contains(f)) {
        return Err(invalid(format!("Features holds {bad:?}: GENERAL_LABELS or IMAGE_PROPERTIES")));
    }
    if let Some(min) = request.get("MinConfidence") {
        if !min.as_f64().is_some_and(|m| (0.0..=100.0).contains(&m)) {
            return Err(invalid(format!("MinConfidence must be 0 to 100, got {min}")));
        }
    }
    if let Some(max) = request.get("MaxLabels") {
        if max.as_u64().is_none() {
            return Err(invalid(format!("MaxLabels must be a whole number of 0 or more, got {max}")));
        }
    }
    if let Some(settings) = request.get("Settings") {
        check_settings(settings, &features)?;
    }
    Ok((s3_object, bytes))
}

fn check_settings(settings: &Value, features: &[&str]) -> Result<(), Refused> {
    let object = settings.as_object().ok_or_else(|| invalid("Settings must be an object"))?;
    if let Some(key) = object.keys().find(|k| !["GeneralLabels", "ImageProperties"].contains(&k.as_str())) {
        return Err(invalid(format!("Settings has no member {key}")));
    }
    let Some(general) = object.get("GeneralLabels") else { return Ok(()) };
    if !features.is_empty() && !features.contains(&"GENERAL_LABELS") {
        return Err(invalid("Settings.GeneralLabels needs the GENERAL_LABELS feature"));
    }
    let filters = general.as_object().ok_or_else(|| invalid("Settings.GeneralLabels must be an object"))?;
    const FILTERS: [&str; 4] = [
        "LabelInclusionFilters",
        "LabelExclusionFilters",
        "LabelCategoryInclusionFilters",
        "LabelCategoryExclusionFilters",
    ];
    for (key, value) in filters {
        if !FILTERS.contains(&key.as_str()) {
            return Err(invalid(format!("Settings.GeneralLabels has no member {key}")));
        }
        let items = value.as_array().ok_or_else(|| invalid(format!("{key} must be a list")))?;
        if items.len() > 100 || !items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty())) {
            return Err(invalid(format!("{key} must hold at most 100 names")));
        }
    }
    Ok(())
}

fn answer(state: &Mutex<State>, request: &Request) -> (u16, Value) {
    let target = request.header("x-amz-target");
    let operation = match target {
        Some("RekognitionService.DetectLabels") => "DetectLabels",
        Some("RekognitionService.DetectText") => "DetectText",
        _ => return (400, error("UnknownOperationException", &format!("unknown target {target:?}"))),
    };
    if let Err(refusal) = super::sigv4::verify(request, "rekognition", ACCESS_KEY, SECRET, None) {
        return (403, error(refusal.kind, &refusal.message));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return (400, error("SerializationException", "the body is not JSON"));
    };
    let now = Instant::now();
    let checked = match body.as_object().and_then(|o| o.keys().find(|k| !["Image", "Filters"].contains(&k.as_str()))) {
        Some(key) if operation == "DetectText" => Err(invalid(format!("DetectText has no member {key}"))),
        _ => check(&body),
    };
    let mut state = state.lock().unwrap();
    let (s3_object, bytes) = match checked {
        Ok(parts) => parts,
        Err((status, kind, message)) => {
            let call = Call {
                operation: operation.into(),
                at: now,
                s3_object: None,
                bytes: Vec::new(),
                bytes_len: 0,
                status,
                error: Some(kind.into()),
                request: body,
            };
            state.calls.push(call);
            return (status, error(kind, &message));
        }
    };
    // Token bucket: `quota` tokens a second, at most `quota` saved up.
    let quota = state.quota;
    state.tokens = (state.tokens + now.duration_since(state.refilled).as_secs_f64() * quota).min(quota);
    state.refilled = now;
    let (status, kind, reply) = if state.tokens < 1.0 {
        (400, Some("ThrottlingException"), error("ThrottlingException", "Rate exceeded"))
    } else {
        state.tokens -= 1.0;
        let name = s3_object.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        if name.contains("denied") {
            let message = "User is not authorized to access the S3 object";
            (400, Some("AccessDeniedException"), error("AccessDeniedException", message))
        } else if name.contains("flaky") && !state.failed_once.contains(&name) {
            state.failed_once.push(name);
            (500, Some("InternalServerError"), error("InternalServerError", "Internal server error"))
        } else {
            (200, None, serde_json::from_str(if operation == "DetectText" { TEXT_EXAMPLE } else { EXAMPLE }).unwrap())
        }
    };
    let bytes_len = bytes.len();
    let error = kind.map(str::to_string);
    let operation = operation.to_string();
    state.calls.push(Call { operation, at: now, s3_object, bytes, bytes_len, status, error, request: body });
    (status, reply)
}

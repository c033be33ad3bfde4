//! A stand-in for Amazon Rekognition (which cannot run here): an HTTP/1.1 endpoint on
//! 127.0.0.1 speaking its JSON 1.1 protocol (`X-Amz-Target:
//! RekognitionService.DetectLabels`), answering with AWS's documented example
//! response, throttling above a TPS quota (a token bucket, as AWS quotas behave),
//! and failing on demand by object name:
//! - a name containing `denied` gets AccessDeniedException (400);
//! - a name containing `flaky` gets InternalServerError (500) on its first call.
//!
//! Point the SDK at it with AWS_ENDPOINT_URL_REKOGNITION.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

const EXAMPLE: &str = include_str!("../fixtures/rekognition/detect-labels.json");

/// One DetectLabels call as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    /// `Some((bucket, name))` for an S3Object reference, `None` for bytes.
    pub s3_object: Option<(String, String)>,
    pub bytes_len: usize,
    pub status: u16,
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
            let (status, reply) = answer(&shared, request.header("x-amz-target"), &request.body);
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

fn answer(state: &Mutex<State>, target: Option<&str>, body: &[u8]) -> (u16, Value) {
    if target != Some("RekognitionService.DetectLabels") {
        return (400, error("UnknownOperationException", &format!("unknown target {target:?}")));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (400, error("SerializationException", "the body is not JSON"));
    };
    let image = &request["Image"];
    let s3_object = image.get("S3Object").map(|o| {
        (o["Bucket"].as_str().unwrap_or_default().to_string(), o["Name"].as_str().unwrap_or_default().to_string())
    });
    let bytes_len = image.get("Bytes").and_then(Value::as_str).map_or(0, str::len);
    let mut state = state.lock().unwrap();
    // Token bucket: `quota` tokens a second, at most `quota` saved up.
    let now = Instant::now();
    let quota = state.quota;
    state.tokens = (state.tokens + now.duration_since(state.refilled).as_secs_f64() * quota).min(quota);
    state.refilled = now;
    let (status, reply) = if s3_object.is_none() && bytes_len == 0 {
        (400, error("InvalidParameterException", "Image needs Bytes or S3Object"))
    } else if state.tokens < 1.0 {
        (400, error("ThrottlingException", "Rate exceeded"))
    } else {
        state.tokens -= 1.0;
        let name = s3_object.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        if name.contains("denied") {
            (400, error("AccessDeniedException", "User is not authorized to access the S3 object"))
        } else if name.contains("flaky") && !state.failed_once.contains(&name) {
            state.failed_once.push(name);
            (500, error("InternalServerError", "Internal server error"))
        } else {
            (200, serde_json::from_str(EXAMPLE).unwrap())
        }
    };
    state.calls.push(Call { at: now, s3_object, bytes_len, status, request });
    (status, reply)
}

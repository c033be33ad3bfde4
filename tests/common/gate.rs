//! Amazon OpenSearch Service's SigV4 gate, for the OpenSearch tests (kept apart from
//! `opensearch.rs`, which the index crate's own tests include by path).
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Amazon OpenSearch Service's gate, in front of osmem-server: every request must be
/// SigV4-signed for `service` (`es` for a domain, `aoss` for Serverless, which also
/// wants the payload's hash in `x-amz-content-sha256`) with the tests' credentials
/// (`test`/`test`); a refused one gets 403 with AWS's error shape, the rest go on to
/// the server. Counts both.
pub struct SigV4Gate {
    pub port: u16,
    passed: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl SigV4Gate {
    pub fn start(upstream_url: &str, service: &'static str) -> Self {
        let upstream: u16 = upstream_url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
        let passed = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (count, said) = (Arc::clone(&passed), Arc::clone(&refused));
        let port = super::http::serve(move |request| {
            let mut checked = super::sigv4::verify(request, service, "test", "test", None);
            if checked.is_ok() && service == "aoss" && request.header("x-amz-content-sha256").is_none() {
                checked = Err(super::sigv4::Refusal {
                    kind: "InvalidSignatureException",
                    message: "OpenSearch Serverless needs x-amz-content-sha256".into(),
                });
            }
            if let Err(refusal) = checked {
                said.lock().unwrap().push(format!("{} {}: {}", request.method, request.path, refusal.message));
                let body = serde_json::json!({ "__type": refusal.kind, "message": refusal.message });
                return (403, "application/json", body.to_string());
            }
            count.fetch_add(1, Ordering::SeqCst);
            let (status, body) = super::http::send(upstream, request);
            (status, "application/json; charset=UTF-8", String::from_utf8_lossy(&body).into_owned())
        });
        Self { port, passed, refused }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn passed(&self) -> usize {
        self.passed.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

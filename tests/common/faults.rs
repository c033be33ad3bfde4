//! A busy or contended OpenSearch cluster, scripted, in front of osmem-server (kept
//! apart from `opensearch.rs`, which the index crate's own tests include by path).
//!
//! The statuses OpenSearch gives `_bulk` items it did not apply, each with the error
//! type the service documents: 409 `version_conflict_engine_exception` (another
//! writer changed the document since it was read), 429
//! `es_rejected_execution_exception` (the write queue is full) and 503
//! `unavailable_shards_exception`. A faulted item is taken out of the request before
//! it goes on to the server, so, as on the real service, it is not written; its item
//! in the answer is put back in its place. An outage answers every `_bulk` with 503.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::http::{self, Request};

/// What the stand-in did and saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A `_bulk` item answered with this status, for this document id.
    Faulted(u16, String),
    /// A `_bulk` item passed on to the server.
    Written(String),
    /// A document read (`_mget` or `_doc`).
    Read(String),
    /// A `_bulk` answered 503 whole (the outage).
    Refused,
}

pub struct Faults {
    pub port: u16,
    script: Arc<Mutex<VecDeque<u16>>>,
    outage: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Faults {
    pub fn start(upstream_url: &str) -> Self {
        let upstream: u16 = upstream_url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let outage = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, o, log) = (Arc::clone(&script), Arc::clone(&outage), Arc::clone(&seen));
        let port = http::serve(move |request| {
            if request.path.contains("/_bulk") {
                if o.load(Ordering::SeqCst) {
                    log.lock().unwrap().push(Seen::Refused);
                    let body = json!({
                        "error": { "type": "unavailable_shards_exception", "reason": "primary shard is not active" },
                        "status": 503
                    });
                    return (503, "application/json; charset=UTF-8", body.to_string());
                }
                return bulk(upstream, request, &s, &log);
            }
            for id in read_ids(request) {
                log.lock().unwrap().push(Seen::Read(id));
            }
            let (status, body) = http::send(upstream, request);
            (status, "application/json; charset=UTF-8", String::from_utf8_lossy(&body).into_owned())
        });
        Self { port, script, outage, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The statuses the next `_bulk` items get, one each, in order (200: passed on).
    pub fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    /// Every `_bulk` answered 503 while `on`.
    pub fn outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The ids a read asks for: `_mget`'s `ids` (or `docs`), or a `_doc/ID` path.
fn read_ids(request: &Request) -> Vec<String> {
    if request.path.contains("/_mget") {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let ids = body["ids"].as_array().cloned().unwrap_or_default();
        let docs = body["docs"].as_array().cloned().unwrap_or_default();
        return ids.iter().chain(docs.iter().map(|d| &d["_id"])).filter_map(|v| v.as_str().map(String::from)).collect();
    }
    match request.path.split_once("/_doc/") {
        Some((_, id)) if request.method == "GET" => vec![id.split('?').next().unwrap_or(id).to_string()],
        _ => Vec::new(),
    }
}

/// One `_bulk`: the scripted items answered here, the rest passed on, the answers
/// put back in order.
fn bulk(upstream: u16, request: &Request, script: &Mutex<VecDeque<u16>>, seen: &Mutex<Vec<Seen>>) -> http::Reply {
    // Operations: an action line, and a source line unless it is a delete.
    let text = String::from_utf8_lossy(&request.body).into_owned();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut ops: Vec<(String, Value, Vec<&str>)> = Vec::new();
    while let Some(action_line) = lines.next() {
        let action: Value = serde_json::from_str(action_line).unwrap();
        let (kind, meta) = action.as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
        let mut raw = vec![action_line];
        if kind != "delete" {
            raw.push(lines.next().unwrap());
        }
        ops.push((kind, meta, raw));
    }
    let mut faults: Vec<Option<u16>> = Vec::new();
    let mut forward = String::new();
    {
        let mut script = script.lock().unwrap();
        for (_, meta, raw) in &ops {
            let id = meta["_id"].as_str().unwrap_or_default().to_string();
            match script.pop_front().filter(|&s| s != 200) {
                Some(status) => {
                    seen.lock().unwrap().push(Seen::Faulted(status, id));
                    faults.push(Some(status));
                }
                None => {
                    seen.lock().unwrap().push(Seen::Written(id));
                    for line in raw {
                        forward.push_str(line);
                        forward.push('\n');
                    }
                    faults.push(None);
                }
            }
        }
    }
    // The index of a `/{index}/_bulk` request, where an item does not name its own.
    let index = request.path.trim_start_matches('/').split('/').next().unwrap_or_default().to_string();
    let mut answered: VecDeque<Value> = VecDeque::new();
    let mut took = 0;
    if !forward.is_empty() {
        let passed = Request {
            method: request.method.clone(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: forward.into_bytes(),
        };
        let (status, body) = http::send(upstream, &passed);
        if status >= 300 {
            return (status, "application/json; charset=UTF-8", String::from_utf8_lossy(&body).into_owned());
        }
        let body: Value = serde_json::from_slice(&body).unwrap();
        took = body["took"].as_u64().unwrap_or(0);
        answered = body["items"].as_array().cloned().unwrap_or_default().into();
    }
    let items: Vec<Value> = ops
        .iter()
        .zip(&faults)
        .map(|((kind, meta, _), fault)| match fault {
            None => answered.pop_front().unwrap(),
            Some(status) => {
                let (kind_of_error, reason) = match status {
                    409 => ("version_conflict_engine_exception", "version conflict, required seqNo differs"),
                    429 => ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
                    _ => ("unavailable_shards_exception", "primary shard is not active"),
                };
                json!({ kind: {
                    "_index": meta["_index"].as_str().unwrap_or(&index), "_id": meta["_id"], "status": status,
                    "error": { "type": kind_of_error, "reason": reason }
                }})
            }
        })
        .collect();
    let errors = items.iter().any(|i| {
        i.as_object().and_then(|o| o.values().next()).is_some_and(|r| r["status"].as_u64().unwrap_or(0) >= 300)
    });
    let body = json!({ "took": took, "errors": errors, "items": items });
    (200, "application/json; charset=UTF-8", body.to_string())
}

//! A stand-in for a Confluent Schema Registry (none can be installed here: the
//! Confluent and Karapace servers are in none of the registries this machine reaches),
//! speaking its documented REST API: `POST /subjects/{subject}/versions` (the same
//! schema keeps its id; a subject marked refusing answers 409 as an incompatible
//! schema does), `GET /schemas/ids/{id}` (404 with error code 40403 when unknown).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

#[derive(Default)]
struct State {
    /// Schema text → id.
    ids: BTreeMap<String, u32>,
    /// Subject → the ids registered under it.
    subjects: BTreeMap<String, Vec<u32>>,
    refusing: Vec<String>,
    lookups: u32,
}

pub struct FakeRegistry {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let port = super::http::serve(move |request| {
            let (status, body) = answer(&shared, &request.method, &request.path, &request.body);
            (status, "application/vnd.schemaregistry.v1+json", body.to_string())
        });
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The id registered under `subject` (its latest).
    pub fn id_of(&self, subject: &str) -> Option<u32> {
        self.state.lock().unwrap().subjects.get(subject).and_then(|v| v.last().copied())
    }

    /// From now on, registering under `subject` answers 409 (incompatible).
    pub fn refuse(&self, subject: &str) {
        self.state.lock().unwrap().refusing.push(subject.to_string());
    }

    /// `GET /schemas/ids/{id}` calls so far.
    pub fn lookups(&self) -> u32 {
        self.state.lock().unwrap().lookups
    }
}

fn answer(state: &Mutex<State>, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["subjects", subject, "versions"]) => {
            let Some(schema) =
                serde_json::from_slice::<Value>(body).ok().and_then(|v| v["schema"].as_str().map(String::from))
            else {
                return (422, json!({ "error_code": 42201, "message": "Invalid schema" }));
            };
            if state.refusing.iter().any(|s| s == subject) {
                let message =
                    format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\"");
                return (409, json!({ "error_code": 409, "message": message }));
            }
            let next = state.ids.len() as u32 + 1;
            let id = *state.ids.entry(schema).or_insert(next);
            let versions = state.subjects.entry(subject.to_string()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            (200, json!({ "id": id }))
        }
        ("GET", ["schemas", "ids", id]) => {
            state.lookups += 1;
            let id: u32 = id.parse().unwrap_or(0);
            match state.ids.iter().find(|(_, v)| **v == id) {
                Some((schema, _)) => (200, json!({ "schema": schema })),
                None => (404, json!({ "error_code": 40403, "message": "Schema not found" })),
            }
        }
        _ => (404, json!({ "error_code": 404, "message": format!("no route {method} {path}") })),
    }
}

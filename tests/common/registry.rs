//! A stand-in for a Confluent Schema Registry (none can be installed here: the
//! Confluent and Karapace servers are in none of the registries this machine reaches),
//! speaking its documented REST API, as strict as the registry on what a client can
//! get wrong: `POST /subjects/{subject}/versions` (the schema must parse as Avro, else
//! 422 with error code 42201; the same schema keeps its id; a subject marked refusing
//! answers 409 as an incompatible schema does), `GET /schemas/ids/{id}` (404 with
//! error code 40403 when unknown, each lookup counted by id), and with credentials
//! (Confluent Cloud's API key and secret) every request needs them as Basic auth (401
//! with error code 40101 otherwise).
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
    /// Id → `GET /schemas/ids/{id}` calls.
    lookups: BTreeMap<u32, u32>,
}

pub struct FakeRegistry {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry that takes only requests with these Basic credentials.
    pub fn start_with(credentials: Option<(&str, &str)>) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let expected = credentials.map(|(user, password)| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        let port = super::http::serve(move |request| {
            let kind = "application/vnd.schemaregistry.v1+json";
            if let Some(expected) = &expected {
                if request.header("authorization") != Some(expected.as_str()) {
                    let body = json!({ "error_code": 40101, "message": "Unauthorized" });
                    return (401, kind, body.to_string());
                }
            }
            let (status, body) = answer(&shared, &request.method, &request.path, &request.body);
            (status, kind, body.to_string())
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

    /// `GET /schemas/ids/{id}` calls so far, of every id.
    pub fn lookups(&self) -> u32 {
        self.state.lock().unwrap().lookups.values().sum()
    }

    /// `GET /schemas/ids/{id}` calls so far, of `id`.
    pub fn lookups_of(&self, id: u32) -> u32 {
        self.state.lock().unwrap().lookups.get(&id).copied().unwrap_or(0)
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
                return (422, json!({ "error_code": 42201, "message": "Invalid schema: no schema string" }));
            };
            if let Err(e) = apache_avro::Schema::parse_str(&schema) {
                return (422, json!({ "error_code": 42201, "message": format!("Invalid schema: {e}") }));
            }
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
            let id: u32 = id.parse().unwrap_or(0);
            *state.lookups.entry(id).or_default() += 1;
            match state.ids.iter().find(|(_, v)| **v == id) {
                Some((schema, _)) => (200, json!({ "schema": schema })),
                None => (404, json!({ "error_code": 40403, "message": "Schema not found" })),
            }
        }
        _ => (404, json!({ "error_code": 404, "message": format!("no route {method} {path}") })),
    }
}

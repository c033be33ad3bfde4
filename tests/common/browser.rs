//! A real browser for the UI tests: Debian's chromium, driven through chromedriver
//! (WebDriver) with fantoccini. `scripts/test-servers` installs both.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use super::Killed;

pub struct Browser {
    pub client: Client,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

fn tool(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "the browser tests need {path} (Debian's chromium and chromium-driver): run them with scripts/test, which installs both"
    );
    path
}

impl Browser {
    pub async fn start() -> Self {
        let driver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = tool("CHROMIUM", "/usr/bin/chromium");
        let mut tries = Vec::new();
        let (driver, port) = loop {
            let port = super::free_port();
            let mut child = Command::new(&driver)
                .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            match super::wait_listening(&mut child, "127.0.0.1", port, Duration::from_secs(30)) {
                Ok(()) => break (Killed(child), port),
                Err(status) => tries.push(format!("port {port}: {status}")),
            }
            assert!(tries.len() < super::PORT_TRIES, "chromedriver did not start: {tries:?}");
        };
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,860", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        Self { client, _driver: driver, _profile: profile }
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `script` (a function body) returns something truthy; returns it.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        self.within(what, script, Duration::from_secs(60)).await
    }

    /// [`Browser::until`] with a limit of its own: for what must not stall.
    pub async fn within(&self, what: &str, script: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(script).await;
            if !matches!(value, Value::Null | Value::Bool(false)) && value != json!(0) && value != json!("") {
                return value;
            }
            assert!(started.elapsed() < limit, "{what}: did not happen in the browser within {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A slow network for the page from now on (chromedriver's network conditions,
    /// which set Chromium's DevTools network emulation): `latency` per request and
    /// `bytes_per_second` each way.
    pub async fn throttle(&self, latency: Duration, bytes_per_second: u64) {
        let conditions = NetworkConditions(json!({ "network_conditions": {
            "offline": false,
            "latency": latency.as_millis() as u64,
            "download_throughput": bytes_per_second,
            "upload_throughput": bytes_per_second,
        } }));
        self.client.issue_cmd(conditions).await.unwrap();
    }

    /// The keys of the cards in the grid.
    pub async fn cards(&self) -> Vec<String> {
        let keys = self.js("return [...document.querySelectorAll('#grid .card')].map(c => c.dataset.key)").await;
        serde_json::from_value(keys).unwrap()
    }
}

/// `POST /session/{id}/chromium/network_conditions`, chromedriver's own command.
#[derive(Debug)]
struct NetworkConditions(Value);

impl fantoccini::wd::WebDriverCompatibleCommand for NetworkConditions {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/chromium/network_conditions", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

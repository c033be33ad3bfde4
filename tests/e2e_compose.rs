//! The deployment files, proven with no Docker engine:
//! - the compose files, the Dockerfile and the dashboards pass their real validators
//!   (docker-compose, the compose-spec schema, hadolint), and broken copies fail them;
//! - every bucketlens service of `docker-compose.yml` runs with this binary exactly as
//!   the file writes it (command, environment, mounted config, replicas), each compose
//!   host name mapped to a real server on 127.0.0.1 (tansu for `kafka`, moto for
//!   `rustfs`, osmem-server for `opensearch`); the init steps are replayed with boto3,
//!   RustFS's notifications are posted to the `events` service in their documented
//!   shape, and every photo becomes searchable through the index and through `serve`.
//!
//! What only a real `docker compose up` proves: the images build and start, the
//! third-party services' settings (Kafka's listeners, RustFS's webhook target,
//! Dashboards' import), the health checks and the start order.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::kafka::Broker;
use common::opensearch::Osmem;
use common::s3::Moto;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A validator that `scripts/test-servers` installed and named in `var`.
fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run the tests with scripts/test, which installs the validators"));
    assert!(path.is_file(), "{var}={} does not exist", path.display());
    path
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn printed(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `docker-compose config` of `file` (in `dir`) with the committed `.env.example`.
fn compose_config(dir: &Path, file: &str) -> Output {
    output(
        Command::new(tool("DOCKER_COMPOSE"))
            .current_dir(dir)
            .args(["--env-file"])
            .arg(root().join(".env.example"))
            .args(["-f", file, "config"]),
    )
}

fn schema_check(file: &Path) -> Output {
    output(Command::new(tool("CHECK_JSONSCHEMA")).args(["--builtin-schema", "vendor.compose-spec"]).arg(file))
}

fn hadolint(file: &Path) -> Output {
    output(Command::new(tool("HADOLINT")).arg("--config").arg(root().join(".hadolint.yaml")).arg(file))
}

/// A copy of the repository's `name` with `from` replaced by `to` (once), in `dir`.
fn broken_copy(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join(name)).unwrap();
    assert!(text.contains(from), "{name} no longer contains {from:?}: update the test");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn the_compose_files_and_the_dockerfile_pass_their_validators_and_broken_copies_fail() {
    for file in ["docker-compose.yml", "docker-compose.embedded.yml"] {
        let out = compose_config(&root(), file);
        assert!(out.status.success(), "docker-compose config {file}:\n{}", printed(&out));
        let out = schema_check(&root().join(file));
        assert!(out.status.success(), "compose-spec schema, {file}:\n{}", printed(&out));
    }
    let out = hadolint(&root().join("Dockerfile"));
    assert!(out.status.success(), "hadolint Dockerfile:\n{}", printed(&out));
    assert_eq!(printed(&out).trim(), "", "hadolint has findings");

    // Each check bites: a misspelt key, a wrong depends_on condition, a bad Dockerfile.
    let tmp = tempfile::tempdir().unwrap();
    let misspelt = broken_copy(tmp.path(), "docker-compose.yml", "    command: [\"label\"]", "    comand: [\"label\"]");
    let out = compose_config(tmp.path(), "docker-compose.yml");
    assert!(!out.status.success() && printed(&out).contains("comand"), "docker-compose took a misspelt key");
    assert!(!schema_check(&misspelt).status.success(), "the schema took a misspelt key");
    let condition = tmp.path().join("condition");
    std::fs::create_dir_all(&condition).unwrap();
    broken_copy(&condition, "docker-compose.yml", "condition: service_healthy", "condition: service_ready");
    let out = compose_config(&condition, "docker-compose.yml");
    assert!(!out.status.success(), "docker-compose took an unknown depends_on condition:\n{}", printed(&out));
    assert!(!schema_check(&condition.join("docker-compose.yml")).status.success());
    let dockerfile = broken_copy(tmp.path(), "Dockerfile", "FROM debian:bookworm-slim", "FROM debian");
    let out = hadolint(&dockerfile);
    assert!(
        !out.status.success() && printed(&out).contains("DL3006"),
        "hadolint took an untagged image:\n{}",
        printed(&out)
    );
}

/// A compose file as the JSON of what docker-compose resolved (variables, anchors,
/// absolute paths).
fn resolved(file: &str) -> Value {
    let out = compose_config(&root(), file);
    assert!(out.status.success(), "{}", printed(&out));
    let mut python = Command::new("python3")
        .args(["-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    python.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let json = python.wait_with_output().unwrap();
    assert!(json.status.success(), "PyYAML (docker-compose's) cannot read the resolved file");
    serde_json::from_slice(&json.stdout).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Compose host names and listen addresses → the servers of this test.
struct Hosts(Vec<(String, String)>);

impl Hosts {
    fn map(&self, text: &str) -> String {
        self.0.iter().fold(text.to_string(), |text, (from, to)| text.replace(from, to))
    }
}

/// One process of a bucketlens service: its arguments and environment as the compose
/// file has them, after [`Hosts::map`].
struct Role {
    service: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Role {
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(common::BIN);
        cmd.args(args).env_clear().envs(&self.env);
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("BUCKETLENS_LOG", "info,rdkafka=warn");
        cmd
    }
}

/// The processes of every bucketlens service (the image built from this repository).
fn roles(spec: &Value, hosts: &Hosts, tmp: &Path) -> Vec<Role> {
    let mut roles = Vec::new();
    for (service, def) in spec["services"].as_object().unwrap() {
        if def["image"] != "bucketlens:local" {
            continue;
        }
        let replicas = def["deploy"]["replicas"].as_u64().unwrap_or(1);
        for replica in 0..replicas {
            let dir = tmp.join(format!("{service}-{replica}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut env: BTreeMap<String, String> = def["environment"]
                .as_object()
                .map(|e| e.iter().map(|(k, v)| (k.clone(), hosts.map(v.as_str().unwrap_or_default()))).collect())
                .unwrap_or_default();
            // The image's own ENV: the data dir is the container's, here a dir per replica.
            env.insert("BUCKETLENS_DATA_DIR".into(), dir.join("data").display().to_string());
            env.insert("HOME".into(), dir.display().to_string());
            // Bind-mounted files: a mapped copy, at the path the environment names.
            for volume in def["volumes"].as_array().into_iter().flatten() {
                let (source, target) = match volume.as_str() {
                    Some(short) => {
                        let mut parts = short.split(':');
                        (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
                    }
                    None => (volume["source"].as_str().unwrap().into(), volume["target"].as_str().unwrap().into()),
                };
                if Path::new(&source).is_file() {
                    let copy = dir.join(Path::new(&target).file_name().unwrap());
                    std::fs::write(&copy, hosts.map(&std::fs::read_to_string(&source).unwrap())).unwrap();
                    for value in env.values_mut() {
                        if *value == target {
                            *value = copy.display().to_string();
                        }
                    }
                }
            }
            let args = def["command"].as_array().unwrap().iter().map(|a| hosts.map(a.as_str().unwrap())).collect();
            roles.push(Role { service: service.clone(), args, env });
        }
    }
    roles
}

/// A running role, killed (by its PID) when dropped.
struct Running {
    service: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn logs(running: &[Running]) -> String {
    running
        .iter()
        .map(|r| format!("--- {}:\n{}", r.service, std::fs::read_to_string(&r.log).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An HTTP/1.1 request; the status and the body.
fn http(addr: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A RustFS bucket notification as its webhook target posts it (MinIO's documented
/// shape, which RustFS keeps).
fn notification(event: &str, key: &str, etag: &str, size: usize, sequencer: u64) -> String {
    let mut object = json!({"key": key, "sequencer": format!("{sequencer:016X}")});
    if event.starts_with("ObjectCreated") {
        object["size"] = size.into();
        object["eTag"] = etag.into();
    }
    json!({
        "EventName": format!("s3:{event}"),
        "Key": format!("photos/{key}"),
        "Records": [{
            "eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-12-01T10:00:00.000Z", "eventName": format!("s3:{event}"),
            "userIdentity": {"principalId": "bucketlens"},
            "s3": {
                "s3SchemaVersion": "1.0", "configurationId": "bucketlens",
                "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
                "object": object
            }
        }]
    })
    .to_string()
}

fn dotenv(name: &str) -> String {
    let text = std::fs::read_to_string(root().join(".env.example")).unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap().to_string()
}

fn wait_until(what: &str, within: Duration, running: &[Running], mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", logs(running));
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every field a saved object of `deploy/dashboards/` uses, which the index must map.
fn dashboard_fields() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("deploy/dashboards/bucketlens.ndjson")).unwrap();
    let objects: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut fields = Vec::new();
    for object in &objects {
        for reference in object["references"].as_array().unwrap() {
            assert!(ids.contains(&reference["id"].as_str().unwrap()), "a dangling reference: {reference}");
        }
        let a = &object["attributes"];
        if let Some(time) = a["timeFieldName"].as_str() {
            fields.push(time.to_string());
        }
        if let Some(vis) = a["visState"].as_str() {
            let vis: Value = serde_json::from_str(vis).unwrap();
            fields.extend(
                vis["aggs"].as_array().unwrap().iter().filter_map(|g| g["params"]["field"].as_str()).map(String::from),
            );
        }
        fields.extend(a["columns"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap().to_string()));
        fields.extend(a["sort"].as_array().into_iter().flatten().map(|s| s[0].as_str().unwrap().to_string()));
    }
    assert!(objects.iter().any(|o| o["type"] == "dashboard"), "no dashboard");
    fields
}

#[test]
fn every_bucketlens_service_of_the_compose_file_runs_as_written_and_the_photos_become_searchable() {
    let spec = resolved("docker-compose.yml");
    let (broker, moto, osmem) = (Broker::start(), Moto::start(), Osmem::start());
    let (webhook, serve) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let hosts = Hosts(vec![
        ("kafka:9092".into(), broker.bootstrap()),
        ("http://rustfs:9000".into(), moto.url()),
        ("http://opensearch:9200".into(), osmem.url.clone()),
        ("0.0.0.0:8080".into(), webhook.clone()),
        ("0.0.0.0:7878".into(), serve.clone()),
        ("0.0.0.0:9464".into(), "127.0.0.1:0".into()),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let roles = roles(&spec, &hosts, tmp.path());
    let services: Vec<&str> = roles.iter().map(|r| r.service.as_str()).collect();
    assert_eq!(services, ["backfill", "events", "label", "label", "serve", "sink"], "the bucketlens services");
    for role in &roles {
        let out = output(&mut role.command(&["config".into(), "check".into()]));
        assert!(out.status.success(), "config check of {}:\n{}", role.service, printed(&out));
        let args = role.args.join(" ");
        assert!(!args.contains("0.0.0.0"), "{}: a listen address left unmapped: {args}", role.service);
    }

    let mut running = Vec::new();
    let one_shots: Vec<&Role> = roles.iter().filter(|r| spec["services"][&r.service]["restart"] == "no").collect();
    for role in roles.iter().filter(|r| spec["services"][&r.service]["restart"] != "no") {
        let log = tmp.path().join(format!("{}-{}.log", role.service, running.len()));
        let mut cmd = role.command(&role.args);
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        running.push(Running { service: role.service.clone(), child, log });
    }
    wait_until("the webhook and serve to listen", Duration::from_secs(60), &running, || {
        TcpStream::connect(&webhook).is_ok() && TcpStream::connect(&serve).is_ok()
    });

    // rustfs-init, replayed with boto3: the bucket and the example photos. Each upload
    // is notified to the events service as RustFS's webhook target posts it.
    let token = dotenv("BUCKETLENS_WEBHOOK_TOKEN");
    let bearer = format!("Bearer {token}");
    let notify = |event: &str, key: &str, body: &[u8], sequencer: u64| {
        use md5::{Digest, Md5};
        let etag: String = Md5::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        let (status, answer) = http(
            &webhook,
            "POST",
            "/rustfs",
            &[("Authorization", &bearer)],
            &notification(event, key, &etag, body.len(), sequencer),
        );
        assert_eq!(status, 200, "the webhook refused {event} {key}: {answer}");
    };
    assert_eq!(http(&webhook, "HEAD", "/", &[], "").0, 200, "RustFS's liveness check of its webhook target");
    moto.create_bucket("photos");
    let names = common::example_names();
    for (i, name) in names.iter().enumerate() {
        let body = std::fs::read(common::examples_dir().join(name)).unwrap();
        moto.put("photos", name, &body);
        notify("ObjectCreated:Put", name, &body, i as u64 + 1);
    }
    let [backfill] = one_shots.as_slice() else { panic!("one one-shot bucketlens service: the backfill") };
    let out = output(&mut backfill.command(&backfill.args));
    assert!(out.status.success(), "the backfill:\n{}", printed(&out));

    let sink = roles.iter().find(|r| r.service == "sink").unwrap();
    let search = |query: &str| -> Vec<String> {
        let args: Vec<String> = ["search", query, "--json", "--limit", "1000"].map(String::from).to_vec();
        let out = output(&mut sink.command(&args));
        if !out.status.success() {
            return Vec::new(); // the index is not made yet
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut keys: Vec<String> =
            v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap().to_string()).collect();
        keys.sort();
        keys
    };
    wait_until("every photo in OpenSearch", Duration::from_secs(180), &running, || search("*") == names);

    // Through serve's API, with the token of .env.example.
    let serve_token = format!("Bearer {}", dotenv("BUCKETLENS_SERVE_TOKEN"));
    let (status, _) = http(&serve, "GET", "/api/search?q=*", &[], "");
    assert_eq!(status, 401, "serve answers without its token");
    let api_total = || {
        let (status, body) = http(&serve, "GET", "/api/search?q=*&limit=500", &[("Authorization", &serve_token)], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["total"].as_u64().unwrap()
    };
    assert_eq!(api_total(), names.len() as u64);

    // A photo added, and one deleted, after the backfill: notifications only.
    let cat = std::fs::read(common::examples_dir().join("chelsea.png")).unwrap();
    moto.put("photos", "new/cat.png", &cat);
    notify("ObjectCreated:Put", "new/cat.png", &cat, 1000);
    moto.delete("photos", "rocket.jpg");
    notify("ObjectRemoved:Delete", "rocket.jpg", b"", 1001);
    wait_until("the new cat, and the rocket gone", Duration::from_secs(120), &running, || {
        let keys = search("*");
        keys.iter().any(|k| k == "new/cat.png") && !keys.iter().any(|k| k == "rocket.jpg")
    });
    assert!(search("cat").iter().any(|k| k == "new/cat.png"), "the new photo is labeled a cat");
    assert_eq!(api_total(), names.len() as u64);

    // The dashboards' saved objects use only fields the sink's index maps.
    let mapping = {
        let addr = osmem.url.trim_start_matches("http://");
        let (status, body) = http(addr, "GET", "/bucketlens-images/_mapping", &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    // `bucketlens-images` is the alias of the index the sink made.
    let properties = &mapping.as_object().unwrap().values().next().unwrap()["mappings"]["properties"];
    for field in dashboard_fields() {
        let mapped = field.split('.').try_fold(properties, |at, part| {
            let next = &at[part];
            (!next.is_null()).then(|| if next["properties"].is_null() { next } else { &next["properties"] })
        });
        assert!(mapped.is_some(), "the dashboards use {field}, which the index does not map");
    }
    drop(running); // each role killed by its PID
}

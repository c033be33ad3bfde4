//! The deployment files, proven with no Docker engine:
//! - the compose files, the Dockerfile and the dashboards pass their real validators
//!   (docker-compose, the compose-spec schema, hadolint), and broken copies fail them;
//! - every bucketlens service of `docker-compose.yml` runs with this binary exactly as
//!   the file writes it (command, environment, the mounted config file itself,
//!   replicas; nothing of either file is rewritten). The test runs in a user, network
//!   and mount namespace of its own, made like the compose network: a bridge, each role
//!   in a network namespace of its own on it (its 0.0.0.0 ports its own), the real
//!   servers on the ports the file names (tansu as `kafka:9092`, moto as
//!   `rustfs:9000`, osmem-server as `opensearch:9200`), and the names in an
//!   `/etc/hosts` bound in that namespace. The init steps are replayed with boto3,
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
use std::net::TcpStream;
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

/// The address of the test's own network namespace where the servers listen (the
/// compose services `kafka`, `rustfs` and `opensearch`), and the first address given
/// to a role's namespace. Private addresses, but only on a bridge inside the
/// namespaces this test makes: nothing leaves them.
const SERVERS: &str = "10.89.0.1";
const FIRST_ROLE: u8 = 10;

/// Gives a role's network namespace its address: waits for the `eth0` the test moves
/// in, configures it, then runs the role's command exactly.
const ROLE_NETNS: &str = r#"ip=$1; shift
while ! ip link show eth0 >/dev/null 2>&1; do sleep 0.05; done
ip link set lo up && ip addr add "$ip/24" dev eth0 && ip link set eth0 up || exit 90
exec "$@""#;

/// One process of a bucketlens service: its arguments and environment exactly as
/// the compose file has them, and the address of its own network namespace.
struct Role {
    service: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    ip: String,
}

impl Role {
    /// The role's program with its environment, in the test's namespace (for
    /// `config check` and `search`, which listen on nothing).
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(common::BIN);
        cmd.args(args);
        self.environment(&mut cmd);
        cmd
    }

    fn environment(&self, cmd: &mut Command) {
        cmd.env_clear().envs(&self.env);
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("BUCKETLENS_LOG", "info,rdkafka=warn");
    }

    /// Starts the role as its container would: a network namespace of its own (its
    /// ports, 0.0.0.0 included, are its own), reached over a veth on the bridge.
    fn spawn(&self, log: &Path) -> Child {
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "sh", "-c", ROLE_NETNS, "sh", &self.ip, common::BIN]).args(&self.args);
        self.environment(&mut cmd);
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap();
        let veth = format!("veth{}", self.ip.rsplit('.').next().unwrap());
        let pid = child.id().to_string();
        // Until `unshare` has made the child's network namespace, a veth end sent to
        // its pid lands in ours (and the role waits for its eth0 forever).
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|theirs| theirs == ours) {
            assert!(Instant::now() < deadline, "{} never got a network namespace of its own", self.service);
            std::thread::sleep(Duration::from_millis(5));
        }
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &pid]);
        ip(&["link", "set", &veth, "master", "br0"]);
        ip(&["link", "set", &veth, "up"]);
        child
    }
}

fn ip(args: &[&str]) {
    let out = output(Command::new("ip").args(args));
    assert!(out.status.success(), "ip {}: {}", args.join(" "), printed(&out));
}

/// The processes of every bucketlens service (the image built from this repository).
/// Nothing of the file is changed: a bind-mounted file is the repository's own file at
/// its path here (the environment naming the mount target names it), and the data
/// dir, the image's own ENV, is a dir per replica.
fn roles(spec: &Value, tmp: &Path) -> Vec<Role> {
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
                .map(|e| e.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default();
            env.insert("BUCKETLENS_DATA_DIR".into(), dir.join("data").display().to_string());
            env.insert("HOME".into(), dir.display().to_string());
            for volume in def["volumes"].as_array().into_iter().flatten() {
                let (source, target) = match volume.as_str() {
                    Some(short) => {
                        let mut parts = short.split(':');
                        (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
                    }
                    None => (volume["source"].as_str().unwrap().into(), volume["target"].as_str().unwrap().into()),
                };
                if Path::new(&source).is_file() {
                    for value in env.values_mut() {
                        if *value == target {
                            *value = source.clone();
                        }
                    }
                }
            }
            let args = def["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            let ip = format!("10.89.0.{}", FIRST_ROLE as usize + roles.len());
            roles.push(Role { service: service.clone(), args, env, ip });
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

const COMPOSE_TEST: &str =
    "every_bucketlens_service_of_the_compose_file_runs_as_written_and_the_photos_become_searchable";
/// Set in the run of [`COMPOSE_TEST`] inside the namespaces.
const INSIDE: &str = "BUCKETLENS_COMPOSE_INSIDE";

/// Runs [`COMPOSE_TEST`] again, in this test binary, inside a user, network and mount
/// namespace of its own (`unshare`, util-linux): as root there it can make a bridge,
/// give each role a network namespace and bind its own `/etc/hosts`.
fn in_namespaces() {
    let exe = std::env::current_exe().unwrap();
    let out = output(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--mount"])
            .arg(exe)
            .args(["--exact", COMPOSE_TEST, "--nocapture", "--test-threads", "1"])
            .env(INSIDE, "1"),
    );
    let text = printed(&out);
    assert!(out.status.success() && text.contains("1 passed"), "the compose test in its namespaces:\n{text}");
}

#[test]
fn every_bucketlens_service_of_the_compose_file_runs_as_written_and_the_photos_become_searchable() {
    if std::env::var_os(INSIDE).is_none() {
        return in_namespaces();
    }
    let spec = resolved("docker-compose.yml");
    let tmp = tempfile::tempdir().unwrap();
    let roles = roles(&spec, tmp.path());
    let services: Vec<&str> = roles.iter().map(|r| r.service.as_str()).collect();
    assert_eq!(services, ["act", "backfill", "events", "label", "label", "serve", "sink"], "the bucketlens services");
    let address = |service: &str| roles.iter().find(|r| r.service == service).unwrap().ip.clone();
    // The compose network: a bridge, the servers on it, each role on its own veth,
    // and the services' names in /etc/hosts (this mount namespace's own).
    ip(&["link", "set", "lo", "up"]);
    ip(&["link", "add", "br0", "type", "bridge"]);
    ip(&["addr", "add", &format!("{SERVERS}/24"), "dev", "br0"]);
    ip(&["link", "set", "br0", "up"]);
    let hosts = tmp.path().join("hosts");
    let names = format!(
        "127.0.0.1 localhost\n{SERVERS} kafka rustfs opensearch\n{} events\n{} serve\n",
        address("events"),
        address("serve")
    );
    std::fs::write(&hosts, names).unwrap();
    let mounted = output(Command::new("mount").arg("--bind").arg(&hosts).arg("/etc/hosts"));
    assert!(mounted.status.success(), "{}", printed(&mounted));
    let broker = Broker::start_at(SERVERS, 9092);
    let moto = Moto::start_at(SERVERS, 9000);
    let osmem = Osmem::start_at(&format!("{SERVERS}:9200"));
    let (webhook, serve) = (format!("{}:8080", address("events")), format!("{}:7878", address("serve")));
    for role in &roles {
        let out = output(&mut role.command(&["config".into(), "check".into()]));
        assert!(out.status.success(), "config check of {}:\n{}", role.service, printed(&out));
    }

    let mut running = Vec::new();
    let one_shots: Vec<&Role> = roles.iter().filter(|r| spec["services"][&r.service]["restart"] == "no").collect();
    for role in roles.iter().filter(|r| spec["services"][&r.service]["restart"] != "no") {
        let log = tmp.path().join(format!("{}-{}.log", role.service, running.len()));
        let child = role.spawn(&log);
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
    let backfill_log = tmp.path().join("backfill.log");
    let status = backfill.spawn(&backfill_log).wait().unwrap();
    let log = std::fs::read_to_string(&backfill_log).unwrap_or_default();
    assert!(status.success(), "the backfill: {status}\n{log}");

    let sink = roles.iter().find(|r| r.service == "sink").unwrap();
    let search = |query: &str| -> Vec<String> {
        let args: Vec<String> = ["search", query, "--json", "--limit", "1000"].map(String::from).to_vec();
        let out = output(&mut sink.command(&args));
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The index not made yet is "nothing yet"; anything else fails the test.
            assert!(stderr.contains("does not exist"), "search {query:?} failed: {stderr}");
            return Vec::new();
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

    // The act service's rule of the mounted config: each cat tagged on the S3 store,
    // and nothing else.
    let tagged = || -> Vec<String> {
        let out = moto.py("keys = [o['Key'] for o in s3.list_objects_v2(Bucket='photos').get('Contents', [])]\n\
             print(json.dumps(sorted(k for k in keys if any(t['Key'] == 'bucketlens:cats' for t in \
             s3.get_object_tagging(Bucket='photos', Key=k)['TagSet']))))");
        serde_json::from_str(out.trim()).unwrap()
    };
    let out = output(&mut sink.command(&["search", "cat", "--min-confidence", "50", "--json"].map(String::from)));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut cats: Vec<String> =
        v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap().into()).collect();
    cats.sort();
    assert!(cats.len() >= 2 && cats.contains(&"new/cat.png".to_string()), "{cats:?}");
    wait_until("the cats tagged by act", Duration::from_secs(60), &running, || tagged() == cats);

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
    drop(broker);
}

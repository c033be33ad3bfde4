//! The pipeline on a real Kafka-protocol broker (tansu, started by the test): the
//! producer, labeler group members and the index sink as separate processes.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bucketlens_runtime::log::{KafkaConfig, KafkaLog, Log, OutRecord};
use common::kafka::Broker;
use common::msk::MskFront;
use common::serve::{events, Server};
use common::tls::TlsFront;
use common::{assert_success, World};
use serde_json::Value;

/// One broker-heavy test at a time: on 2 cores, parallel brokers and labelers
/// starve each other's heartbeats.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A world whose log is a fresh broker.
struct KafkaWorld {
    _serial: std::sync::MutexGuard<'static, ()>,
    world: World,
    broker: Broker,
    config: PathBuf,
    /// Running roles, with the file their stderr goes to.
    roles: Vec<(Child, PathBuf)>,
}

impl KafkaWorld {
    fn new(copies: usize, partitions: u32) -> Self {
        let serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let broker = Broker::start();
        let bootstrap = broker.bootstrap();
        Self::with_broker(serial, copies, partitions, broker, &bootstrap, "", "")
    }

    /// A world on `broker`, reached at `bootstrap`, with more `[log.kafka]` settings.
    fn with_broker(
        serial: std::sync::MutexGuard<'static, ()>,
        copies: usize,
        partitions: u32,
        broker: Broker,
        bootstrap: &str,
        kafka: &str,
        properties: &str,
    ) -> Self {
        let world = World::new(copies);
        let config = world.tmp.path().join("bucketlens.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[log]
backend = "kafka"
partitions = {partitions}

[log.kafka]
brokers = "{bootstrap}"
drain-timeout = "10s"
{kafka}

# Passed to librdkafka as they are: a killed member is noticed within 6 s.
[log.kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
{properties}
"#
            ),
        )
        .unwrap();
        Self { _serial: serial, world, broker, config, roles: Vec::new() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.world.command(args);
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts a long-running role; returns its index in `roles`.
    fn spawn(&mut self, args: &[&str], env: &[(&str, &str)]) -> usize {
        let n = self.roles.len();
        let err = self.world.tmp.path().join(format!("role-{n}-{}.log", args[0]));
        let mut cmd = self.command(args);
        cmd.env("BUCKETLENS_LOG", "info,rdkafka=warn").envs(env.iter().copied());
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&err).unwrap());
        self.roles.push((child.spawn().unwrap(), err));
        n
    }

    fn stderr(&self, role: usize) -> String {
        std::fs::read_to_string(&self.roles[role].1).unwrap_or_default()
    }

    /// Ends a role with SIGTERM and requires a clean exit.
    fn terminate(&mut self, role: usize) {
        let child = &mut self.roles[role].0;
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = wait_exit(child, Duration::from_secs(60));
        assert!(status.success(), "role {role} exited with {status}: {}", self.stderr(role));
    }

    fn kill(&mut self, role: usize) {
        let child = &mut self.roles[role].0;
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A counter of a role's /metrics (summed over its labels). A role that never
    /// says where its metrics are (within 30 s of its start), whose endpoint does not
    /// answer, or that has no such metric fails the test: none of those is a 0.
    fn metric(&self, role: usize, name: &str) -> f64 {
        let started = std::time::Instant::now();
        let addr = loop {
            let err = self.stderr(role);
            if let Some(addr) = err.lines().find_map(|l| l.strip_prefix("metrics on http://")) {
                break addr.trim_end_matches("/metrics").to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "role {role} never said where its metrics are:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut conn = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("role {role}'s metrics at {addr}: {e}"));
        write!(conn, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).unwrap();
        let values: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect();
        assert!(!values.is_empty(), "role {role} has no metric {name}");
        values.iter().sum()
    }

    fn status(&self, env: &[(&str, &str)]) -> Option<Value> {
        let out = self.command(&["status", "--json"]).envs(env.iter().copied()).output().unwrap();
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Waits until both groups have committed everything on their topics, and the
    /// labeler's output is all indexed (lag 0 twice in a row, a second apart).
    fn wait_caught_up(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut zero_in_a_row = 0;
        loop {
            let lags = self.status(&[]).map(|s| {
                s["groups"].as_array().unwrap().iter().map(|g| g["lag"].as_i64().unwrap()).collect::<Vec<_>>()
            });
            let caught_up = lags.as_ref().is_some_and(|l| l.iter().all(|&x| x == 0));
            zero_in_a_row = if caught_up { zero_in_a_row + 1 } else { 0 };
            if zero_in_a_row >= 2 {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.roles.len()).map(|r| self.stderr(r)).collect();
                panic!("not caught up in {within:?}: lags {lags:?}\n{}", logs.join("\n-----\n"));
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    }

    /// Lists the photos, runs a sink and a labeler until both groups caught up, then
    /// stops them one at a time.
    fn produce_label_and_index(&mut self) {
        self.run(&["produce", "listing", self.world.photos.to_str().unwrap()]);
        let sink = self.spawn(&["sink"], &[]);
        let label = self.spawn(&["label"], &[]);
        self.wait_caught_up(Duration::from_secs(120));
        self.terminate(label);
        self.terminate(sink);
    }

    async fn kafka_log(&self) -> KafkaLog {
        KafkaLog::connect(KafkaConfig { brokers: self.broker.bootstrap(), ..KafkaConfig::default() }).await.unwrap()
    }
}

impl Drop for KafkaWorld {
    fn drop(&mut self) {
        for (child, _) in &mut self.roles {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a role did not exit within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl KafkaWorld {
    fn wait_for(&self, what: &str, within: Duration, mut ready: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !ready(self) {
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.roles.len()).map(|r| self.stderr(r)).collect();
                panic!("timed out waiting for {what}\n{}", logs.join("\n-----\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn keys_of_photos(w: &World) -> Vec<String> {
    let mut keys: Vec<String> = walk(&w.photos)
        .into_iter()
        .map(|p| p.strip_prefix(&w.photos).unwrap().to_string_lossy().into_owned())
        .collect();
    keys.sort();
    keys
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

const LABELER_GROUP: &str = "bucketlens-labeler";

/// Whether a role's log shows it was last assigned some partitions of `group` (a
/// labeler is also a member of its ledger follower's group, which this ignores).
fn holds_partitions(stderr: &str, group: &str) -> bool {
    let field = format!("group={group} ");
    stderr
        .lines()
        .rfind(|l| l.contains(&field) && (l.contains("partitions assigned") || l.contains("partitions revoked")))
        .is_some_and(|l| l.contains("partitions assigned") && !l.contains("partitions=[]"))
}

fn labels_of<'a>(docs: &'a [(String, Vec<(String, f64)>)], key: &str) -> &'a [(String, f64)] {
    &docs.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("{key} is not indexed")).1
}

/// A sink and two labelers A and B, both holding partitions before the photos are
/// listed; A is SIGKILLed once it has labeled `labeled` records. Returns (sink, B).
fn two_labelers_one_killed_midstream(k: &mut KafkaWorld, labeled: f64) -> (usize, usize) {
    let sink = k.spawn(&["sink"], &[]);
    let a = k.spawn(&["label"], &[]);
    let b = k.spawn(&["label"], &[]);
    // Both members hold partitions before any record arrives.
    k.wait_for("both labelers to be assigned partitions", Duration::from_secs(60), |k| {
        holds_partitions(&k.stderr(a), LABELER_GROUP) && holds_partitions(&k.stderr(b), LABELER_GROUP)
    });
    k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
    k.wait_for("labeler A to be mid-stream", Duration::from_secs(120), |k| {
        k.metric(a, "bucketlens_labeler_records_labeled") >= labeled
    });
    k.kill(a);
    (sink, b)
}

#[test]
fn two_labelers_share_the_partitions_and_one_killed_midstream_loses_nothing() {
    let mut k = KafkaWorld::new(6, 4);
    let (sink, b) = two_labelers_one_killed_midstream(&mut k, 3.0);
    // A replacement member joins, as an orchestrator would start one. On Apache
    // Kafka the survivor alone takes over once A's session (6 s) times out. tansu
    // 0.6.0 evicts A then but keeps its old assignment until another member joins,
    // and a member joining before the eviction gets an assignment that still counts
    // A: so the replacement joins after A's session has expired.
    std::thread::sleep(Duration::from_secs(10));
    let c = k.spawn(&["label"], &[]);
    // C holds partitions before the next records arrive, or the survivor might take
    // them all in the rebalance C's join starts.
    k.wait_for("the replacement labeler to be assigned partitions", Duration::from_secs(60), |k| {
        holds_partitions(&k.stderr(c), LABELER_GROUP)
    });
    // The first listing is labeled through before anything is replaced: otherwise a
    // record still waiting on A's partitions reads the replaced bytes, and the second
    // listing's record of it is rightly skipped as unchanged (one label record fewer
    // than this test counts; seen in CI).
    k.wait_caught_up(Duration::from_secs(240));
    // Replace three images while a member is down: the index must end with the new content.
    let cat = k.world.photos.join("set-0/chelsea.png");
    let replaced = ["set-1/coffee.png", "set-2/brick.png", "set-3/astronaut.png"];
    let names = common::example_names();
    for r in replaced {
        let name = r.rsplit('/').next().unwrap();
        assert!(names.iter().any(|n| n == name), "{name} is not an example photo");
        std::fs::copy(&cat, k.world.photos.join(r)).unwrap();
    }
    k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
    k.wait_caught_up(Duration::from_secs(240));

    assert!(k.metric(b, "bucketlens_labeler_records_labeled") > 0.0, "the surviving member labelled");
    // C took over A's partitions: what A had labeled comes back to it, skipped.
    assert!(k.metric(c, "bucketlens_labeler_records_in") > 0.0, "the killed member's partitions were taken over");
    let docs = k.world.all_documents();
    let keys: Vec<String> = docs.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(keys, keys_of_photos(&k.world), "every image exactly once, none missing, none left over");
    let cat_labels = labels_of(&docs, "set-0/chelsea.png");
    assert!(!cat_labels.is_empty());
    for (key, labels) in &docs {
        let (_, name) = key.split_once('/').unwrap();
        if !replaced.contains(&key.as_str()) {
            assert_eq!(labels, labels_of(&docs, &format!("set-0/{name}")), "{key}: the same image, the same labels");
        }
    }
    for r in replaced {
        assert_eq!(labels_of(&docs, r), cat_labels, "{r} was replaced by the cat: its labels are the cat's");
    }
    let status = k.status(&[]).unwrap();
    assert_eq!(status["failed"], 0);
    assert_eq!(status["documents"].as_u64().unwrap() as usize, keys.len());
    // The records A had labeled but not committed came back to B and C, who skipped
    // them (their ledgers had read A's outcomes): one outcome per image version.
    assert_eq!(label_log_records(&status), keys.len() + replaced.len(), "an image was labeled twice: {status}");
    // tansu does not describe groups it has seen: `status` says so once, in words,
    // not as an outage to retry.
    let out = k.command(&["status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("members are unknown").count(), 1, "{stderr}");
    assert!(stderr.contains("does not describe groups") && !stderr.contains("retrying may help"), "{stderr}");
    k.terminate(b);
    k.terminate(c);
    k.terminate(sink);
}

/// One of two labelers killed, and no replacement started: the survivor, which
/// keeps its own partitions, notices that the killed member's make no progress and
/// rejoins, which hands it them (tansu 0.6.0 keeps a killed member's assignment
/// until a member joins). Every image ends up indexed.
#[test]
fn a_survivor_takes_over_a_killed_members_partitions_with_no_replacement() {
    let mut k = KafkaWorld::new(3, 4);
    let (sink, b) = two_labelers_one_killed_midstream(&mut k, 2.0);
    k.wait_caught_up(Duration::from_secs(300));
    assert!(k.stderr(b).contains("this member does not hold them: rejoining the group"), "{}", k.stderr(b));
    let keys: Vec<String> = k.world.all_documents().into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, keys_of_photos(&k.world), "every image exactly once");
    k.terminate(b);
    k.terminate(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_and_a_broken_image_go_to_the_dlq_without_blocking_their_partition() {
    let mut k = KafkaWorld::new(1, 1);
    // One partition: the poison comes first, every good image after it.
    k.run(&["status", "--json"]); // creates the topics
    let log = k.kafka_log().await;
    log.produce("objects.changed.v1", vec![OutRecord::new("photos/poison", b"\x00not avro at all".to_vec())])
        .await
        .unwrap();
    std::fs::write(k.world.photos.join("broken.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
    k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
    let sink = k.spawn(&["sink"], &[]);
    let label = k.spawn(&["label"], &[]);
    k.wait_caught_up(Duration::from_secs(120));

    let docs = k.world.all_documents();
    assert_eq!(docs.len(), common::example_names().len(), "every good image is indexed behind the poison");
    let failed = k.world.json(&["search", "--failed", "--json"]);
    let failed_keys: Vec<&str> =
        failed["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(failed_keys, vec!["broken.jpg"]);

    let mut dlq = log.subscribe("test-dlq-reader", "objects.changed.dlq.v1").await.unwrap();
    let mut dead = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dead.len() < 2 && Instant::now() < deadline {
        dead.extend(dlq.poll(10, Duration::from_millis(500)).await.unwrap());
    }
    let mut reasons: Vec<(String, String)> =
        dead.iter().map(|r| (r.key.clone(), r.header("error.code").unwrap_or("").to_string())).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "photos/broken.jpg");
    assert_eq!(reasons[1], ("photos/poison".to_string(), "UndecodableRecord".to_string()));
    assert!(!reasons[0].1.is_empty(), "the broken image's DLQ record says why");
    assert!(dead.iter().all(|r| r.header("error.message").is_some_and(|m| !m.is_empty())));
    drop(dlq);
    k.terminate(label);
    k.terminate(sink);
}

/// Records ever appended to images.labeled.v1 (the end offsets, which compaction
/// does not lower), from `status --json`.
fn label_log_records(status: &Value) -> usize {
    let labels = status["groups"].as_array().unwrap().iter().find(|g| g["topic"] == "images.labeled.v1").unwrap();
    labels["partitions"].as_array().unwrap().iter().map(|p| p["end"].as_u64().unwrap() as usize).sum()
}

/// S3 delivers an event at least once and SQS redelivers a message that was not
/// deleted in time: the same notification twice costs a lookup, not a second
/// label, whichever of two labeler members gets it.
#[test]
fn a_duplicated_s3_event_is_labeled_once_by_a_group_of_two() {
    let moto = common::s3::Moto::start();
    let mut k = KafkaWorld::new(0, 4);
    let aws: Vec<(&str, String)> = moto.env();
    let aws: Vec<(&str, &str)> = aws.iter().map(|(name, value)| (*name, value.as_str())).collect();
    moto.create_bucket("photos");
    let queue = moto.py("print(sqs.create_queue(QueueName='photos-events')['QueueUrl'])").trim().to_string();
    let cat = std::fs::read(common::examples_dir().join("chelsea.png")).unwrap();
    let etag: String = {
        use md5::{Digest, Md5};
        Md5::digest(&cat).iter().map(|b| format!("{b:02x}")).collect()
    };
    let keys = ["one.png", "two.png", "three.png", "four.png", "five.png", "six.png"];
    for key in keys {
        moto.put("photos", key, &cat);
    }
    let sink = k.spawn(&["sink"], &[]);
    let a = k.spawn(&["label"], &aws);
    let b = k.spawn(&["label"], &aws);
    k.wait_for("both labelers to be assigned partitions", Duration::from_secs(60), |k| {
        holds_partitions(&k.stderr(a), LABELER_GROUP) && holds_partitions(&k.stderr(b), LABELER_GROUP)
    });
    let events = k.spawn(&["produce", "events", "--sqs", &queue], &aws);
    let send_all = || {
        for (i, key) in keys.iter().enumerate() {
            let body = serde_json::json!({"Records": [{
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2026-11-24T10:00:00.000Z", "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
                       "object": {"key": key, "size": cat.len(), "eTag": etag,
                                  "sequencer": format!("00000000000000{i:02X}")}}
            }]});
            let body = common::s3::py_str(&body.to_string());
            moto.py(&format!("sqs.send_message(QueueUrl={queue:?}, MessageBody={body})"));
        }
    };
    send_all();
    k.wait_for("every image indexed", Duration::from_secs(120), |k| k.world.documents_so_far().len() == keys.len());
    k.wait_caught_up(Duration::from_secs(60));
    send_all(); // the same messages again
    let skipped = |k: &KafkaWorld| {
        k.metric(a, "bucketlens_labeler_skipped_total") + k.metric(b, "bucketlens_labeler_skipped_total")
    };
    k.wait_for("the duplicates to be taken", Duration::from_secs(60), |k| skipped(k) >= keys.len() as f64);
    k.wait_caught_up(Duration::from_secs(60));

    let labeled = k.metric(a, "bucketlens_labeler_records_labeled") + k.metric(b, "bucketlens_labeler_records_labeled");
    assert_eq!(labeled, keys.len() as f64, "each image labeled once");
    assert_eq!(skipped(&k), keys.len() as f64, "each duplicate skipped");
    let status = k.status(&aws).unwrap();
    assert_eq!(label_log_records(&status), keys.len(), "no second outcome: {status}");
    assert_eq!(k.world.all_documents().len(), keys.len(), "one document per image");
    k.terminate(events);
    k.terminate(a);
    k.terminate(b);
    k.terminate(sink);
}

/// An S3 notification for `key` in bucket `photos`, as S3 sends it to SQS: one
/// version, its etag (S3 sends none for a delete), the event's time and a sequencer.
fn photos_event(name: &str, key: &str, version: &str, etag: Option<&str>, time: &str, sequencer: &str) -> String {
    let mut object = serde_json::json!({"key": key, "versionId": version, "sequencer": sequencer});
    if let Some(etag) = etag {
        object["eTag"] = etag.into();
    }
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": time, "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"}, "object": object}
    }]})
    .to_string()
}

/// Issue 39's three repros, as an operator met them: tansu, moto (a versioned bucket,
/// SQS events and a listing feeding the same objects) and the OpenSearch backend, each
/// role its own process. The events are sent by hand in S3's documented shape, with
/// the times that broke the old rule: an event's millisecond `eventTime` after the
/// listing's whole-second LastModified of the same version.
#[test]
fn a_relabel_a_version_delete_and_a_delete_in_the_same_second_all_reach_opensearch() {
    let moto = common::s3::Moto::start();
    let server = common::opensearch::Osmem::start();
    let mut k = KafkaWorld::new(0, 2);
    k.world.env.extend(common::opensearch::Osmem::env(&server.url, "bucketlens-images"));
    k.world.env.extend(moto.env().into_iter().map(|(name, value)| (name.to_string(), value)));
    moto.create_bucket("photos");
    moto.py("s3.put_bucket_versioning(Bucket='photos', VersioningConfiguration={'Status': 'Enabled'})");
    let queue = moto.py("print(sqs.create_queue(QueueName='photos-events')['QueueUrl'])").trim().to_string();
    let sink = k.spawn(&["sink"], &[]);
    let label = k.spawn(&["label"], &[]);
    let events = k.spawn(&["produce", "events", "--sqs", &queue], &[]);
    let send = |body: String| {
        moto.py(&format!("sqs.send_message(QueueUrl={queue:?}, MessageBody={})", common::s3::py_str(&body)));
    };
    // Puts an example photo; its version id, etag, and LastModified in whole seconds.
    let put = |key: &str, image: &str| -> (String, String, String) {
        let path = common::examples_dir().join(image);
        let out = moto.py(&format!(
            "r = s3.put_object(Bucket='photos', Key={key:?}, Body=open({:?}, 'rb').read())\n\
             h = s3.head_object(Bucket='photos', Key={key:?}, VersionId=r['VersionId'])\n\
             print(r['VersionId'], r['ETag'].strip('\"'), h['LastModified'].strftime('%Y-%m-%dT%H:%M:%S'))",
            path.to_str().unwrap()
        ));
        let mut parts = out.split_whitespace().map(str::to_string);
        (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap())
    };
    let top = |key: &str| -> Option<String> {
        let docs = k.world.documents_so_far();
        let (_, labels) = docs.into_iter().find(|(k, _)| k == key)?;
        labels.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(name, _)| name)
    };
    let within = Duration::from_secs(120);
    let wait = |what: &str, mut done: Box<dyn FnMut() -> bool + '_>| {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };

    // Repro 1, first half: the event indexes the rocket with its millisecond event
    // time; then a listing records the same version with S3's whole-second LastModified.
    let (rocket_version, rocket_etag, rocket_second) = put("rocket.jpg", "rocket.jpg");
    let event_time = format!("{rocket_second}.631Z");
    send(photos_event(
        "ObjectCreated:Put",
        "rocket.jpg",
        &rocket_version,
        Some(&rocket_etag),
        &event_time,
        "0000000000000010",
    ));
    wait("the rocket's event is indexed", Box::new(|| top("rocket.jpg").is_some()));

    // Repro 2, first half: pet.png is the cat (v1), then the coffee (v2, a later second).
    put("cat.png", "chelsea.png");
    let (_, _, first) = put("pet.png", "chelsea.png");
    while put("other.png", "coffee.png").2 == first {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (coffee_version, ..) = put("pet.png", "coffee.png");
    k.run(&["produce", "listing", "s3://photos/"]);
    k.wait_caught_up(within);
    let (cat, coffee) = (top("cat.png").unwrap(), top("other.png").unwrap());
    assert_ne!(cat, coffee);
    assert_eq!(top("pet.png"), Some(coffee.clone()), "the listing indexed pet.png's current version");
    assert_eq!(k.metric(label, "bucketlens_labeler_records_labeled"), 4.0, "the listing's rocket is unchanged");

    // Repro 2: the coffee version is deleted, so the cat, older, is current again.
    moto.py(&format!("s3.delete_object(Bucket='photos', Key='pet.png', VersionId={coffee_version:?})"));
    let now = moto
        .py("import datetime; print(datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds'))");
    let time = now.trim().replace("+00:00", "Z");
    send(photos_event("ObjectRemoved:Delete", "pet.png", &coffee_version, None, &time, "0000000000000020"));
    wait("pet.png shows the cat again", Box::new(|| top("pet.png").as_ref() == Some(&cat)));

    // Repro 3: an object indexed from an event at .631 s, deleted in the same second,
    // whose delete event says that second with no milliseconds.
    let (gone_version, gone_etag, gone_second) = put("gone.png", "chelsea.png");
    let created = format!("{gone_second}.631Z");
    send(photos_event("ObjectCreated:Put", "gone.png", &gone_version, Some(&gone_etag), &created, "0000000000000030"));
    wait("gone.png is indexed", Box::new(|| top("gone.png").is_some()));
    moto.py(&format!("s3.delete_object(Bucket='photos', Key='gone.png', VersionId={gone_version:?})"));
    let deleted = format!("{gone_second}Z");
    send(photos_event("ObjectRemoved:Delete", "gone.png", &gone_version, None, &deleted, "0000000000000040"));
    wait("gone.png is removed", Box::new(|| top("gone.png").is_none()));

    // Repro 1: docs/operating.md's model change, a new labeler group with min-confidence 70,
    // relabels every object; the running sink puts each new labeling in OpenSearch,
    // the rocket's too (the event's and the listing's records alike).
    let before = k.world.all_documents();
    let low = |docs: &[(String, Vec<(String, f64)>)]| -> Vec<(String, String, f64)> {
        let mut low = Vec::new();
        for (key, labels) in docs {
            low.extend(labels.iter().filter(|(_, c)| *c < 70.0).map(|(n, c)| (key.clone(), n.clone(), *c)));
        }
        low
    };
    assert!(low(&before).iter().any(|(key, ..)| key == "rocket.jpg"), "the rocket has labels under 70: {before:?}");
    let v2 = [("BUCKETLENS_LABELER__GROUP", "bucketlens-labeler-v2"), ("BUCKETLENS_LABELER__MIN_CONFIDENCE", "70")];
    let replay = ["replay", "--group", "bucketlens-labeler-v2", "--until-end"];
    let out = k.command(&replay).envs(v2).output().unwrap();
    assert_success(&out, &replay);
    k.wait_caught_up(within);
    let after = k.world.all_documents();
    let keys = |docs: &[(String, Vec<(String, f64)>)]| docs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&after), ["cat.png", "other.png", "pet.png", "rocket.jpg"]);
    assert_eq!(low(&after), Vec::<(String, String, f64)>::new(), "every document shows the new model's labels");
    assert!(after.iter().all(|(_, labels)| !labels.is_empty()), "{after:?}");
    assert_eq!(top("pet.png"), Some(cat), "the relabel kept the current version");
    assert_eq!(k.metric(sink, "bucketlens_sink_records_stale_relabel_total"), 0.0);
    k.terminate(events);
    k.terminate(label);
    k.terminate(sink);
}

#[test]
fn replaying_labels_rebuilds_the_index_and_a_new_labeler_group_relabels_everything() {
    let mut k = KafkaWorld::new(1, 2);
    k.produce_label_and_index();
    let before = k.world.all_documents();
    let labeler_offsets = k.status(&[]).unwrap()["groups"][0].clone();
    assert_eq!(before.len(), common::example_names().len());

    // Rebuild the index from images.labeled.v1 alone: no labelling.
    std::fs::remove_dir_all(k.world.data.join("index")).unwrap();
    let out = k.run(&["replay", "--group", "bucketlens-index", "--from", "earliest", "--until-end"]);
    assert!(out.starts_with(&format!("indexed {} label records", before.len())), "{out}");
    assert!(!out.contains("changes: labeled"), "an index replay runs no labeler: {out}");
    assert_eq!(k.world.all_documents(), before, "the same documents with the same labels");
    assert_eq!(k.status(&[]).unwrap()["groups"][0], labeler_offsets, "the labeler group did not move");

    // `--from TIME` starts at the first record at or after it, checked against the
    // records: a time after every record is the end (tansu answers offset 0 there,
    // which replayed everything), a time before them all is the start.
    let from = |time: &str| k.run(&["replay", "--group", "bucketlens-index", "--from", time, "--until-end"]);
    let out = from("2030-01-01T00:00:00Z");
    assert!(out.starts_with("indexed 0 label records"), "nothing is at or after 2030: {out}");
    let out = from("2020-01-01T00:00:00Z");
    assert!(out.starts_with(&format!("indexed {} label records", before.len())), "all is after 2020: {out}");

    // `serve` on Kafka follows the label log with a group of its own: the new labels
    // below are announced, each once the index returns it.
    let server = Server::start(k.command(&["serve"]));
    let changes = events(&server);

    // A model change: a new labeler group reads objects.changed.v1 from the start.
    let v2 = [("BUCKETLENS_LABELER__GROUP", "bucketlens-labeler-v2")];
    let out = k.command(&["replay", "--group", "bucketlens-labeler-v2", "--until-end"]).envs(v2).output().unwrap();
    assert_success(&out, &["replay", "--group", "bucketlens-labeler-v2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!("changes: labeled {} · unchanged 0", before.len());
    assert!(stdout.starts_with("read ") && stdout.contains(&expected), "every image labelled again: {stdout}");
    assert!(!stdout.contains("indexed"), "a Kafka relabel runs no sink: {stdout}");
    let v2_status = k.status(&v2).unwrap();
    assert_eq!(v2_status["groups"][0]["group"], "bucketlens-labeler-v2");
    assert_eq!(v2_status["groups"][0]["lag"], 0);
    let out = k.run(&["replay", "--group", "bucketlens-index", "--until-end"]);
    assert!(out.starts_with(&format!("indexed {} label records", before.len())), "the new labels are indexed: {out}");
    assert_eq!(k.world.all_documents(), before, "same model, same labels");
    let announced: std::collections::BTreeSet<String> = (0..before.len())
        .map(|_| {
            changes.recv_timeout(Duration::from_secs(60)).expect("an event per new label")["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(announced.into_iter().collect::<Vec<_>>(), before.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());

    // A group with a running member is not moved under it: tansu does not describe
    // groups it has seen, so replay joins the group for a moment, is handed only some
    // partitions, and refuses. `--ignore-members` moves it anyway; once the member
    // has stopped, the move goes through.
    let label = k.spawn(&["label"], &[]);
    k.wait_for("the labeler to hold partitions", Duration::from_secs(120), |k| {
        holds_partitions(&k.stderr(label), "bucketlens-labeler")
    });
    let replay = ["replay", "--group", "bucketlens-labeler", "--from", "earliest"];
    let out = k.command(&replay).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "moved under a running member: {stderr}");
    assert!(stderr.contains("seems to have running members") && stderr.contains("--ignore-members"), "{stderr}");
    let forced: Vec<&str> = replay.iter().copied().chain(["--ignore-members"]).collect();
    k.run(&forced);
    k.terminate(label);
    let out = k.command(&replay).output().unwrap();
    assert_success(&out, &replay);
    assert!(String::from_utf8_lossy(&out.stderr).contains("moved to [0, 0]"), "{out:?}");
}

#[test]
fn every_role_rides_out_a_broker_restart_and_nothing_is_lost() {
    let mut k = KafkaWorld::new(3, 2);
    let sink = k.spawn(&["sink"], &[]);
    let label = k.spawn(&["label"], &[]);
    let photos = k.world.photos.to_str().unwrap().to_string();
    let producer = k.spawn(&["produce", "listing", &photos, "--watch"], &[]);
    k.wait_for("labelling to start", Duration::from_secs(120), |k| {
        k.metric(label, "bucketlens_labeler_records_labeled") >= 3.0
    });
    let roles = [("sink", sink), ("label", label), ("produce", producer)];
    let said_before: Vec<usize> = roles.iter().map(|(_, r)| k.stderr(*r).len()).collect();
    let labeled_before = k.metric(label, "bucketlens_labeler_records_labeled");
    let applied_before = k.metric(sink, "bucketlens_sink_records_applied");
    k.broker.stop();
    // New images while the broker is down: the watching producer holds them.
    let extra = k.world.photos.join("extra");
    std::fs::create_dir(&extra).unwrap();
    for name in common::example_names() {
        std::fs::copy(common::examples_dir().join(&name), extra.join(&name)).unwrap();
    }
    // Every role saw the outage (librdkafka's warnings of the lost broker), or this
    // test would not show that it rode one out.
    k.wait_for("every role to see the broker down", Duration::from_secs(60), |k| {
        roles.iter().zip(&said_before).all(|((_, r), from)| k.stderr(*r)[*from..].contains("librdkafka"))
    });
    k.broker.restart();
    k.wait_caught_up(Duration::from_secs(240));
    // The watcher may still be producing the last of the extra folder.
    k.wait_for("every image indexed", Duration::from_secs(120), |k| {
        k.world.documents_so_far().len() == keys_of_photos(&k.world).len()
    });
    // And each went on after it: the producer's extra folder is indexed (below); the
    // labeler labeled and the sink applied more than before the outage.
    assert!(k.metric(label, "bucketlens_labeler_records_labeled") > labeled_before, "the labeler made no progress");
    assert!(k.metric(sink, "bucketlens_sink_records_applied") > applied_before, "the sink made no progress");
    let docs = k.world.all_documents();
    let keys: Vec<String> = docs.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(keys, keys_of_photos(&k.world));
    for (key, labels) in &docs {
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(labels, labels_of(&docs, &format!("extra/{name}")), "{key}: the same image, the same labels");
    }
    k.terminate(producer);
    k.terminate(label);
    k.terminate(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_schema_registry_records_are_confluent_framed_and_an_incompatible_schema_stops_start_up() {
    // Confluent Cloud's path: the registry takes only its API key and secret.
    let registry = common::registry::FakeRegistry::start_with(Some(("KEY123", "s3cr3t")));
    let mut k = KafkaWorld::new(1, 2);
    k.world.env.push(("BUCKETLENS_LOG__KAFKA__SCHEMA_REGISTRY_URL".into(), registry.url()));
    let photos = k.world.photos.to_str().unwrap().to_string();
    let out = k.command(&["produce", "listing", &photos]).output().unwrap();
    assert!(!out.status.success(), "registered without credentials");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401") && stderr.contains("Unauthorized"), "{stderr}");
    k.world.env.push(("BUCKETLENS_LOG__KAFKA__SCHEMA_REGISTRY_USERNAME".into(), "KEY123".into()));
    k.world.env.push(("BUCKETLENS_LOG__KAFKA__SCHEMA_REGISTRY_PASSWORD".into(), "s3cr3t".into()));
    k.produce_label_and_index();
    let images = common::example_names().len();
    assert_eq!(k.world.all_documents().len(), images, "everything flowed through Confluent-framed topics");
    assert!(k.world.json(&["search", "cat", "--json"])["total"].as_u64().unwrap() >= 1);

    // On the wire: magic byte 0 and the id registered under TopicNameStrategy.
    let raw = k.kafka_log().await; // no registry: the bytes as they are
    for (topic, subject) in
        [("objects.changed.v1", "objects.changed.v1-value"), ("images.labeled.v1", "images.labeled.v1-value")]
    {
        let id = registry.id_of(subject).unwrap_or_else(|| panic!("{subject} was not registered"));
        let mut consumer = raw.subscribe(&format!("raw-{topic}"), topic).await.unwrap();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while records.len() < images && Instant::now() < deadline {
            records.extend(consumer.poll(100, Duration::from_millis(500)).await.unwrap());
        }
        assert_eq!(records.len(), images, "{topic}");
        for r in &records {
            assert_eq!(r.value[0], 0, "{topic}: not Confluent-framed");
            assert_eq!(u32::from_be_bytes(r.value[1..5].try_into().unwrap()), id, "{topic}");
        }
    }
    assert_ne!(registry.id_of("objects.changed.v1-value"), registry.id_of("images.labeled.v1-value"));
    // Each writer schema is looked up once per process that reads it, then cached, not
    // once a record: the labeler reads objects.changed, and images.labeled (its ledger
    // follows the label log); the sink reads images.labeled.
    let (objects, labeled) =
        (registry.id_of("objects.changed.v1-value").unwrap(), registry.id_of("images.labeled.v1-value").unwrap());
    assert_eq!(registry.lookups_of(objects), 1, "objects.changed's schema, by the labeler");
    assert_eq!(registry.lookups_of(labeled), 2, "images.labeled's schema, by the labeler's ledger and the sink");
    assert_eq!(registry.lookups(), 3, "no other lookup");

    // The example consumers read the framed records, each writer schema fetched once
    // from the registry with the credentials written in its URL.
    let authed = registry.url().replacen("http://", "http://KEY123:s3cr3t@", 1);
    for (name, mut consumer) in example_consumers(&k.broker.bootstrap()) {
        let group = format!("{name}-framed");
        let out = consumer.args(["--until-end", "--json", "--registry", &authed, "--group", &group]).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let counted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(counted["documents"], images, "{name}: {counted}");
    }
    assert_eq!(registry.lookups_of(labeled), 4, "once per example consumer");

    // A registry that finds bucketlens's schema incompatible stops the start-up, saying so.
    registry.refuse("objects.changed.v1-value");
    let out = k.command(&["produce", "listing", k.world.photos.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("objects.changed.v1-value") && stderr.contains("incompatible"), "{stderr}");
}

/// MSK with IAM access control. MSK cannot run here, so a stand-in for its sign-in
/// (tests/common/msk.rs) sits in front of tansu, which advertises it: every
/// connection must sign in with SASL/OAUTHBEARER and MSK's token, whose SigV4
/// signature the stand-in checks with the one secret it knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_msk_with_iam_every_role_signs_in_with_a_signed_token_and_a_wrong_secret_is_refused() {
    let serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // TLS outside (MSK's port 9098), the IAM sign-in inside it, then the broker:
    // tansu advertises the TLS port, so every connection comes through both.
    let tls_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let broker = Broker::start_behind(tls_listener.local_addr().unwrap().port());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front = MskFront::start(listener, broker.port, "eu-west-1", "AKIDMSKTEST", "msk/test+secret");
    let tls = TlsFront::start(tls_listener, front.port);
    // Session credentials, as ECS tasks and IRSA pods always have: the token must be sent.
    front.require_session_token("session/token==");
    let bootstrap = tls.bootstrap();
    let ca = common::tls::ca_file();
    let mut k = KafkaWorld::with_broker(
        serial,
        1,
        2,
        broker,
        &bootstrap,
        "msk-iam = true\nmsk-iam-region = \"eu-west-1\"\nrequest-timeout = \"8s\"",
        // security.protocol is left to the product: SASL_SSL with msk-iam. The
        // brokers' certificates come from a private CA here, as a team's own may.
        &format!("\"ssl.ca.location\" = \"{}\"", ca.display()),
    );
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "AKIDMSKTEST"),
        ("AWS_SECRET_ACCESS_KEY", "msk/test+secret"),
        ("AWS_SESSION_TOKEN", "session/token=="),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ] {
        k.world.env.push((name.into(), value.into()));
    }

    // Topics cannot be made with IAM tokens (rdkafka's admin client cannot sign in):
    // the error names each one and how to create it.
    let out = k.command(&["produce", "listing", k.world.photos.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("objects.changed.v1 does not exist")
            && stderr.contains("kafka-topics.sh")
            && stderr.contains("--partitions 2")
            && stderr.contains("cleanup.policy=compact"),
        "{stderr}"
    );
    // One property map feeds every client; librdkafka's "ignored by this producer" is not shown.
    assert!(!stderr.contains("will be ignored by this"), "{stderr}");
    assert!(front.signed_in() >= 1, "the metadata client never signed in");

    // A long-running role waits for them instead, saying what is missing and how to
    // create it, and names itself and its settings first.
    let err_file = k.world.tmp.path().join("label.err");
    let mut waiting = k
        .command(&["label"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let label_err = || std::fs::read_to_string(&err_file).unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !label_err().contains("waiting for the topics: topic objects.changed.v1 does not exist") {
        assert!(std::time::Instant::now() < deadline, "label did not say it waits: {}", label_err());
        assert!(waiting.try_wait().unwrap().is_none(), "label exited: {}", label_err());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(label_err().starts_with("bucketlens label: Kafka at "), "{}", label_err());
    assert!(label_err().contains("kafka-topics.sh"), "{}", label_err());

    // An operator creates them (here without IAM, before the front enforces sign-in).
    let properties = [("security.protocol", "SSL"), ("ssl.ca.location", ca.to_str().unwrap())]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    let admin = KafkaLog::connect(KafkaConfig { brokers: bootstrap.clone(), properties, ..KafkaConfig::default() })
        .await
        .unwrap();
    for (topic, compacted) in bucketlens_schemas::topics::ALL {
        admin.ensure_topic(topic, 2, compacted).await.unwrap();
    }
    drop(admin);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !label_err().contains("labeler group bucketlens-labeler") {
        assert!(std::time::Instant::now() < deadline, "label did not go on: {}", label_err());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = waiting.kill();
    let _ = waiting.wait();
    front.enforce();
    // Sessions last 3 s: long-running clients sign in again on open connections.
    front.expire_sessions_after(3_000);
    let before = front.signed_in();

    // Producer, labeler, sink and status all sign in; nothing is refused.
    k.produce_label_and_index();
    let images = common::example_names().len() as u64;
    assert_eq!(k.world.json(&["search", "--json"])["total"].as_u64(), Some(images));
    assert!(k.world.json(&["search", "cat", "--json"])["total"].as_u64().unwrap() >= 1);
    assert!(front.refused().is_empty(), "refused: {:?}", front.refused());
    // At least a producer, a group consumer each for the labeler and the sink, and
    // the metadata clients that status uses.
    assert!(front.signed_in() >= before + 4, "only {} sign-ins", front.signed_in() - before);
    assert!(front.renewed() >= 1, "no session was renewed on its connection");
    // Over TLS, all of it: tansu advertises only the TLS port.
    let sessions = front.signed_in() - front.renewed();
    assert!(tls.handshakes() >= sessions, "{} connections signed in, {} TLS handshakes", sessions, tls.handshakes());
    assert!(tls.failed().is_empty(), "TLS handshakes failed: {:?}", tls.failed());

    // A client that does not trust the brokers' CA stops, naming the certificate.
    let untrusting = k.world.tmp.path().join("untrusting.toml");
    let config = std::fs::read_to_string(&k.config).unwrap();
    std::fs::write(&untrusting, config.replace(&ca.display().to_string(), "probe")).unwrap();
    let out = k.world.command(&["status"]).arg("--config").arg(&untrusting).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate verify failed"), "{stderr}");

    // A wrong secret: MSK refuses the signature, and bucketlens says it could not sign in.
    let out = k.command(&["status"]).env("AWS_SECRET_ACCESS_KEY", "not-the-secret").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().rfind(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(last.contains("refused to sign bucketlens in") && last.contains("signature does not match"), "{stderr}");
    assert!(front.refused().iter().any(|r| r.contains("signature does not match")), "{:?}", front.refused());

    // The session token left out (a signer that drops it): refused.
    let out = k.command(&["status"]).env_remove("AWS_SESSION_TOKEN").output().unwrap();
    assert!(!out.status.success());
    assert!(front.refused().iter().any(|r| r.contains("session token")), "{:?}", front.refused());

    // No credentials at all: start-up stops at once, saying so.
    let out =
        k.command(&["status"]).env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MSK IAM: no AWS credentials"), "{stderr}");
}

/// bucketlens's MSK IAM token against botocore's SigV4 query signing (the signer
/// AWS's Python MSK library uses), same credentials and instant: same URL.
#[test]
fn the_msk_iam_token_is_signed_as_botocore_signs_it() {
    use bucketlens_runtime::log::msk_iam;
    let python = PathBuf::from(std::env::var("MOTO_HOME").expect("MOTO_HOME: run the tests with scripts/test"))
        .join("bin/python");
    let script = r#"
import datetime, sys
from unittest import mock
import botocore.auth, botocore.awsrequest, botocore.credentials
creds = botocore.credentials.Credentials(sys.argv[1], sys.argv[2], sys.argv[3])
req = botocore.awsrequest.AWSRequest(method="GET", url="https://kafka.%s.amazonaws.com/" % sys.argv[4],
                                     params={"Action": "kafka-cluster:Connect"})
at = datetime.datetime.fromtimestamp(int(sys.argv[5]), datetime.timezone.utc).replace(tzinfo=None)
class Fixed(datetime.datetime):
    @classmethod
    def utcnow(cls): return at
    @classmethod
    def now(cls, tz=None): return at.replace(tzinfo=tz) if tz else at
with mock.patch.object(botocore.auth.datetime, "datetime", Fixed):
    botocore.auth.SigV4QueryAuth(creds, "kafka-cluster", sys.argv[4], expires=900).add_auth(req)
print(req.prepare().url)
"#;
    for (region, session, at) in
        [("eu-west-1", "session/token+==", 1_700_000_000u64), ("us-east-1", "FwoGZXIvYXdzE", 1_767_225_599)]
    {
        let (key, secret) = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let out =
            Command::new(&python).args(["-c", script, key, secret, session, region, &at.to_string()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let credentials = aws_credential_types::Credentials::new(key, secret, Some(session.to_string()), None, "test");
        let ours = msk_iam::presign(&credentials, region, std::time::UNIX_EPOCH + Duration::from_secs(at)).unwrap();
        let (signed, user_agent) = ours.rsplit_once("&User-Agent=").unwrap();
        assert!(user_agent.starts_with("bucketlens%2F"), "{user_agent}");
        let sorted = |url: &str| {
            let (base, query) = url.split_once('?').unwrap();
            let mut params: Vec<&str> = query.split('&').collect();
            params.sort_unstable();
            (base.to_string(), params.join("&"))
        };
        assert_eq!(sorted(signed), sorted(&theirs), "{region}");
    }
}

/// Labeled documents behind `name` (an alias or an index) on `server`.
fn labeled_count(server: &common::opensearch::Osmem, name: &str) -> Option<u64> {
    let (status, body) = server.call("POST", &format!("/{name}/_count"), r#"{"query":{"term":{"state":"labeled"}}}"#);
    (status == 200).then(|| body["count"].as_u64()).flatten()
}

#[test]
fn reindex_moves_the_alias_to_a_full_new_index_while_the_sink_writes_and_search_never_sees_it_half_filled() {
    let server = common::opensearch::Osmem::start();
    let mut k = KafkaWorld::new(1, 2);
    k.world.env.extend(common::opensearch::Osmem::env(&server.url, "bucketlens-images"));
    k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
    let _sink = k.spawn(&["sink"], &[]);
    let _label = k.spawn(&["label"], &[]);
    k.wait_caught_up(Duration::from_secs(120));
    let first = common::example_names().len() as u64;
    // A new name is an alias of its first index, so that it can be moved.
    let (_, aliases) = server.call("GET", "/_alias/bucketlens-images", "");
    assert!(aliases.get("bucketlens-images-v1").is_some(), "{aliases}");
    assert_eq!(labeled_count(&server, "bucketlens-images-v1"), Some(first));

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (polls, fell, out) = std::thread::scope(|scope| {
        // Searches throughout: documents are only added, so a search never sees
        // fewer than an earlier one did (an empty or half-filled index would).
        let poller = scope.spawn(|| {
            let (mut polls, mut highest, mut fell) = (0u32, first, None);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = labeled_count(&server, "bucketlens-images").unwrap_or(0);
                if n < highest && fell.is_none() {
                    fell = Some((highest, n));
                }
                highest = highest.max(n);
                polls += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (polls, fell)
        });
        // New photos while the reindex runs: the live labeler and sink take them.
        for copy in 0..3 {
            let extra = k.world.photos.join(format!("extra-{copy}"));
            std::fs::create_dir_all(&extra).unwrap();
            for name in common::example_names() {
                std::fs::copy(common::examples_dir().join(&name), extra.join(&name)).unwrap();
            }
        }
        k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
        let reindex = k.command(&["reindex"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let out = reindex.wait_with_output().unwrap();
        k.wait_caught_up(Duration::from_secs(120));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (polls, fell) = poller.join().unwrap();
        (polls, fell, out)
    });
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("reindex said:\n{stdout}\n{stderr}\n({polls} polls)");
    assert!(out.status.success(), "reindex failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("keeps serving bucketlens-images-v1"), "{stderr}");
    assert!(stdout.contains("the old index bucketlens-images-v1 is untouched"), "{stdout}");
    assert!(polls > 20, "{polls} polls");
    assert_eq!(fell, None, "a search saw fewer documents (after, before) than an earlier one");

    let (_, aliases) = server.call("GET", "/_alias/bucketlens-images", "");
    assert_eq!(aliases.as_object().unwrap().keys().collect::<Vec<_>>(), ["bucketlens-images-v2"], "{aliases}");
    // Everything, including what the live sink wrote during the reindex, is in the new
    // index; search reads it through the alias.
    assert_eq!(labeled_count(&server, "bucketlens-images-v2"), Some(4 * first));
    let keys: std::collections::BTreeSet<String> = k.world.all_documents().into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys.len() as u64, 4 * first, "{keys:?}");
    // The old index is still there, with at least what it had.
    assert!(labeled_count(&server, "bucketlens-images-v1").is_some_and(|n| n >= first));
    // After the switch the live sink writes the new index.
    std::fs::copy(common::examples_dir().join("chelsea.png"), k.world.photos.join("late.png")).unwrap();
    k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
    k.wait_caught_up(Duration::from_secs(60));
    assert_eq!(labeled_count(&server, "bucketlens-images-v2"), Some(4 * first + 1));

    // A second reindex goes to v3; one into an existing index is refused before anything moves.
    let refused = k.command(&["reindex", "--to", "bucketlens-images-v2"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("index being replaced"), "{refused:?}");
}

#[test]
fn a_replay_run_as_a_batch_array_job_is_shared_by_its_children_and_each_exits_at_the_end() {
    let mut k = KafkaWorld::new(0, 4);
    // 1,200 objects: hard links to one copy of each example.
    let originals = k.world.tmp.path().join("originals");
    std::fs::create_dir_all(&originals).unwrap();
    let names = common::example_names();
    for name in &names {
        std::fs::copy(common::examples_dir().join(name), originals.join(name)).unwrap();
    }
    for i in 0..100 {
        let dir = k.world.photos.join(format!("batch-{i:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for name in &names {
            std::fs::hard_link(originals.join(name), dir.join(name)).unwrap();
        }
    }
    let total = 100 * names.len();
    k.run(&["produce", "listing", k.world.photos.to_str().unwrap()]);
    k.spawn(&["sink"], &[]);

    // As deploy/aws's ReplayJob starts its children: the same command and
    // environment (a new labeler group), one AWS_BATCH_JOB_ARRAY_INDEX each.
    let group = "bucketlens-labeler-v2";
    let children: Vec<(Child, PathBuf)> = (0..3)
        .map(|i| {
            let err = k.world.tmp.path().join(format!("child-{i}.log"));
            let child = k
                .command(&["replay", "--group", group, "--until-end"])
                .env("BUCKETLENS_LABELER__GROUP", group)
                .env("AWS_BATCH_JOB_ARRAY_INDEX", i.to_string())
                .env("BUCKETLENS_LOG", "info,rdkafka=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&err).unwrap())
                .spawn()
                .unwrap();
            (child, err)
        })
        .collect();
    let mut labeled = Vec::new();
    for (mut child, err) in children {
        let status = wait_exit(&mut child, Duration::from_secs(420));
        let mut stdout = String::new();
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        let log = std::fs::read_to_string(&err).unwrap_or_default();
        assert!(status.success(), "a child exited with {status}:\n{stdout}\n{log}");
        // A revoked child finishes only what it has in flight (records it had fetched
        // and not started go to the next owner), well within drain-timeout.
        assert!(!log.contains("not drained in time"), "a child gave partitions away with work in flight:\n{log}");
        let n: usize = stdout
            .split("labeled ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {stdout:?}"));
        labeled.push(n);
    }
    eprintln!("labeled per child: {labeled:?} of {total}");
    assert!(labeled.iter().filter(|n| **n > 0).count() >= 2, "the children did not share the work: {labeled:?}");
    assert_eq!(labeled.iter().sum::<usize>(), total, "each object labeled once among the children: {labeled:?}");

    let v2 = [("BUCKETLENS_LABELER__GROUP", group)];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = k.status(&v2).unwrap();
        let lags: Vec<i64> = status["groups"].as_array().unwrap().iter().map(|g| g["lag"].as_i64().unwrap()).collect();
        if lags.iter().all(|l| *l == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the sink did not catch up: {status}");
        std::thread::sleep(Duration::from_secs(1));
    }
    // The label log grew by exactly one record an object: no child labeled twice.
    let status = k.status(&v2).unwrap();
    let index = status["groups"].as_array().unwrap().iter().find(|g| g["topic"] == "images.labeled.v1").unwrap();
    let records: i64 = index["partitions"].as_array().unwrap().iter().map(|p| p["end"].as_i64().unwrap()).sum();
    assert_eq!(records, total as i64, "the label log: {index}");
    let docs = k.world.all_documents();
    let keys: std::collections::BTreeSet<&String> = docs.iter().map(|(key, _)| key).collect();
    assert_eq!((docs.len(), keys.len()), (total, total), "one document per object");
    // Every copy of the cat has the same labels, whichever child labeled it.
    let cats: Vec<&Vec<(String, f64)>> =
        docs.iter().filter(|(key, _)| key.ends_with("/chelsea.png")).map(|(_, labels)| labels).collect();
    assert_eq!(cats.len(), 100);
    assert!(!cats[0].is_empty() && cats.iter().all(|labels| *labels == cats[0]), "{cats:?}");
}

/// The registry stand-in refuses what a registry refuses: a schema that is not Avro
/// (422, 42201) and a request without the credentials it was given (401, 40101).
#[test]
fn the_registry_stand_in_refuses_a_schema_that_is_not_avro_and_a_request_without_credentials() {
    let registry = common::registry::FakeRegistry::start_with(Some(("KEY123", "s3cr3t")));
    let post = |body: &str, authorization: Option<&str>| {
        let mut headers = vec![
            ("host".to_string(), format!("127.0.0.1:{}", registry.port)),
            ("content-type".to_string(), "application/vnd.schemaregistry.v1+json".to_string()),
        ];
        headers.extend(authorization.map(|a| ("authorization".to_string(), a.to_string())));
        let request = common::http::Request {
            method: "POST".into(),
            path: "/subjects/s-value/versions".into(),
            headers,
            body: body.as_bytes().to_vec(),
        };
        let (status, reply) = common::http::send(registry.port, &request);
        (status, serde_json::from_slice::<Value>(&reply).unwrap()["error_code"].clone())
    };
    let avro = r#"{"schema": "{\"type\": \"record\", \"name\": \"R\", \"fields\": []}"}"#;
    let auth = "Basic S0VZMTIzOnMzY3IzdA=="; // KEY123:s3cr3t
    assert_eq!(post(avro, None), (401, serde_json::json!(40101)));
    assert_eq!(post(avro, Some("Basic S0VZMTIzOndyb25n")), (401, serde_json::json!(40101)), "a wrong secret");
    assert_eq!(post(r#"{"schema": "{\"type\": \"recrod\"}"}"#, Some(auth)), (422, serde_json::json!(42201)));
    assert_eq!(post(avro, Some(auth)).0, 200);
}

/// The example consumers, each as a user starts it against `bootstrap`: the Python
/// one in the venv `scripts/test` makes, the Rust one's binary beside this test's.
fn example_consumers(bootstrap: &str) -> Vec<(&'static str, Command)> {
    let python = std::env::var("CONSUMER_PYTHON").expect("CONSUMER_PYTHON: run the tests with scripts/test");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/consumers/python/consumer.py");
    let rust = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("bucketlens-example-consumer");
    assert!(rust.is_file(), "{} is missing: cargo build --release -p bucketlens-example-consumer", rust.display());
    let mut py = Command::new(python);
    py.arg(script).args(["--bootstrap", bootstrap]);
    let mut rs = Command::new(rust);
    rs.args(["--bootstrap", bootstrap]);
    vec![("python", py), ("rust", rs)]
}

/// The example consumers of the consumer guide (`examples/consumers/python/` and
/// `rust/`), as a user runs them after a real label run: each decodes every record
/// of images.labeled.v1 (single-object encoding, resolved with the shipped schemas)
/// and counts the documents of each label, which must be what the index counts.
#[test]
fn the_example_consumers_count_what_the_index_counts() {
    let mut k = KafkaWorld::new(1, 2);
    k.produce_label_and_index();
    let bootstrap = k.broker.bootstrap();
    let index = k.world.json(&["labels", "--json", "--limit", "10000"]);
    let indexed: serde_json::Map<String, serde_json::Value> = index["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_string(), l["documents"].clone()))
        .collect();
    for (name, mut consumer) in example_consumers(&bootstrap) {
        let out = consumer.args(["--until-end", "--json", "--group", &format!("{name}-counter")]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let counted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(counted["documents"], index["documents"], "{name}: {counted}\n{stderr}");
        assert_eq!(
            counted["labels"],
            serde_json::Value::Object(indexed.clone()),
            "{name}'s counts against the index's"
        );
        assert!(counted["labels"]["Cat"].as_u64() >= Some(1), "{name}: {counted}");

        // The readable form: one line an outcome, naming the object and its labels.
        let (_, mut again) = example_consumers(&bootstrap).into_iter().find(|(n, _)| *n == name).unwrap();
        let out = again.args(["--until-end", "--group", &format!("{name}-reader")]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().any(|l| l.starts_with("labeled photos/chelsea.png: ") && l.contains("Cat ")),
            "{name}: {text}"
        );
        assert!(text.contains(&format!("{} labeled documents", common::example_names().len())), "{name}: {text}");
    }
}

/// `act` as a role on Kafka: a temporary member of its own group publishes one
/// images.matched.v1 record per object its rule matches (what the index finds for
/// the same query), keyed bucket/key; a replay of the label log publishes nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_publishes_each_match_on_its_topic_once() {
    use bucketlens_schemas::{AvroRecord, ImageMatched, MatchKind};
    let mut k = KafkaWorld::new(1, 2);
    k.produce_label_and_index();
    let mut config = std::fs::read_to_string(&k.config).unwrap();
    config.push_str("\n[[act.rules]]\nname = \"pets\"\nquery = \"cat OR dog\"\nmin-confidence = 20\ntopic = \"images.matched.v1\"\n");
    std::fs::write(&k.config, config).unwrap();
    let out = k.run(&["act", "--until-end"]);
    let expected = k.world.json(&["search", "cat OR dog", "--min-confidence", "20", "--json", "--limit", "1000"]);
    let mut want: Vec<String> =
        expected["hits"].as_array().unwrap().iter().map(|h| format!("photos/{}", h["key"].as_str().unwrap())).collect();
    want.sort();
    assert!(!want.is_empty(), "{out}");

    let log = k.kafka_log().await;
    let mut reader = log.subscribe("test-matched-reader", "images.matched.v1").await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want.len() && Instant::now() < deadline {
        got.extend(reader.poll(100, Duration::from_millis(500)).await.unwrap());
    }
    let mut keys: Vec<String> = Vec::new();
    for record in &got {
        let matched = ImageMatched::from_bytes(&record.value).unwrap();
        assert_eq!((matched.kind, matched.rule.as_str()), (MatchKind::Matched, "pets"));
        assert_eq!(record.key, format!("{}/{}", matched.bucket, matched.key));
        keys.push(record.key.clone());
    }
    keys.sort();
    assert_eq!(keys, want, "{out}");
    let status = k.status(&[]).unwrap();
    let act = status["groups"].as_array().unwrap().iter().find(|g| g["group"] == "bucketlens-act").cloned().unwrap();
    assert_eq!(act["lag"], 0, "{status}");
    assert_eq!(status["act"]["matches"]["pets"], want.len(), "{status}");

    let out = k.run(&["act", "--from", "earliest", "--until-end"]);
    assert!(out.contains("pets: 0 matched"), "{out}");
    let more = reader.poll(100, Duration::from_secs(3)).await.unwrap();
    assert!(more.is_empty(), "a replay published again: {} records", more.len());
}

/// The guide's `sh tansu` block (the roles, status, and both replays of the Kafka
/// page), run as a user runs it against a broker: the configuration in
/// `BUCKETLENS_CONFIG`, the photos in `~/Pictures`. The replay from the earliest
/// offset comes once the roles have indexed every photo and been stopped, as its
/// comment says; the index holds every photo at the end.
#[test]
fn the_guides_kafka_commands_run_against_a_broker() {
    let k = KafkaWorld::new(0, 2);
    let home = k.world.tmp.path().join("home");
    std::fs::create_dir_all(home.join("Pictures")).unwrap();
    for name in common::example_names() {
        std::fs::copy(common::examples_dir().join(&name), home.join("Pictures").join(&name)).unwrap();
    }
    let mut shell = common::docs::Shell::new(home, k.world.tmp.path().to_path_buf(), k.world.tmp.path().join("logs"));
    shell.env.push(("BUCKETLENS_DATA_DIR".into(), k.world.data.display().to_string()));
    shell.env.push(("BUCKETLENS_CONFIG".into(), k.config.display().to_string()));
    let blocks = common::docs::sh_blocks("tansu");
    let mut ran = 0;
    for block in &blocks {
        ran += shell.run_block(
            block,
            true,
            |line, running| {
                if line.contains("replay") && line.contains("--from") {
                    k.wait_caught_up(Duration::from_secs(180));
                    for started in running.drain(..) {
                        started.stop();
                    }
                }
            },
            |printed| printed.contains("metrics on http://"),
        );
    }
    assert!(!blocks.is_empty() && ran >= 6, "{} blocks, {ran} commands", blocks.len());
    let hits = k.world.json(&["search", "*", "--json", "--limit", "100"]);
    assert_eq!(hits["total"], common::example_names().len(), "{hits}");
}

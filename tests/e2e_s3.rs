//! End to end against a real S3 + SQS server (moto): an S3 prefix, an S3 Inventory
//! report and S3 event notifications, each indexed by the real binary; odd keys
//! survive exactly from bucket to search result.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::s3::{py_str, Moto};
use common::{docs, examples_dir, World};

fn example(name: &str) -> Vec<u8> {
    std::fs::read(examples_dir().join(name)).unwrap()
}

fn command(world: &World, moto: &Moto, args: &[&str]) -> Command {
    let mut cmd = world.command(args);
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd
}

fn run(world: &World, moto: &Moto, args: &[&str]) -> std::process::Output {
    command(world, moto, args).output().unwrap()
}

fn ok(world: &World, moto: &Moto, args: &[&str]) -> String {
    let out = run(world, moto, args);
    common::assert_success(&out, args);
    String::from_utf8(out.stdout).unwrap()
}

fn keys_in_index(world: &World) -> BTreeSet<String> {
    world.all_documents().into_iter().map(|(k, _)| k).collect()
}

/// Keys a user can really have: spaces, `+`, unicode, `%2F` as text, commas and
/// quotes, and one of the maximum length (1024 bytes).
fn odd_keys() -> Vec<String> {
    let mut long = "long/".to_string();
    long.push_str(&"é".repeat(300));
    long.push_str(&"x".repeat(1024 - long.len() - 4));
    long.push_str(".png");
    assert_eq!(long.len(), 1024);
    vec![
        "a b/chelsea + cat.png".into(),
        "unicode/café ☕ 猫.png".into(),
        "pct/%2F not a slash.png".into(),
        "csv/comma, \"quoted\" name.png".into(),
        "plain.png".into(),
        long,
    ]
}

#[test]
fn an_s3_prefix_is_indexed_with_odd_keys_exact_and_deletes_follow() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("photos");
    for key in odd_keys() {
        moto.put("photos", &key, &example("chelsea.png"));
    }
    moto.put("photos", "albums/", b"");
    moto.put("photos", "notes.txt", b"not an image");
    moto.put("photos", "broken.jpg", b"\xFF\xD8\xFF truncated");

    let out = ok(&world, &moto, &["index", "s3://photos/"]);
    assert!(out.contains("found 7 images in s3://photos/"), "{out}");
    let mut expected: BTreeSet<String> = odd_keys().into_iter().collect();
    assert_eq!(keys_in_index(&world), expected);
    for (key, labels) in world.all_documents() {
        assert!(labels.iter().any(|(name, _)| name == "Cat"), "{key} is not a cat: {labels:?}");
    }
    let failed = world.json(&["search", "--failed", "--json"]);
    assert_eq!(failed["hits"][0]["key"], "broken.jpg", "{failed}");

    // Gone from the bucket → gone from the index on the next run; the rest is not redone.
    moto.delete("photos", "plain.png");
    let out = ok(&world, &moto, &["index", "s3://photos/"]);
    assert!(out.contains("0 new or changed, 1 deleted"), "{out}");
    expected.remove("plain.png");
    assert_eq!(keys_in_index(&world), expected);

    // --force sends every image to the labeler again (the failed one fails again).
    let out = ok(&world, &moto, &["index", "s3://photos/", "--force"]);
    assert!(out.contains("labeled 5 · unchanged 0 · failed 1"), "{out}");
    // A key the listing now passes over leaves the index, though it stays in the
    // bucket (its delete names the version there, which the labeler's HEAD finds).
    let config = world.tmp.path().join("exclude.toml");
    std::fs::write(&config, "[listing]\nexclude = [\"unicode\"]\n").unwrap();
    let out = ok(&world, &moto, &["--config", config.to_str().unwrap(), "index", "s3://photos/"]);
    assert!(out.contains("0 new or changed, 1 deleted"), "{out}");
    expected.retain(|k| !k.starts_with("unicode/"));
    assert_eq!(keys_in_index(&world), expected);
}

/// The labeler checks each delete with a HEAD (a new upload may have overtaken it).
/// When S3 cannot answer, the delete is trusted: the document leaves the index, and
/// a warning names the object and why.
#[test]
fn a_delete_whose_head_fails_is_trusted_and_said() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("photos");
    moto.put("photos", "cat.png", &example("chelsea.png"));
    ok(&world, &moto, &["index", "s3://photos/"]);
    assert_eq!(keys_in_index(&world), BTreeSet::from(["cat.png".to_string()]));
    let env = moto.env();
    drop(moto); // S3 is down from here on (the object is still in it)
    let delete = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-24T10:00:00.000Z", "eventName": "ObjectRemoved:Delete",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
               "object": {"key": "cat.png", "sequencer": "FFFFFFFFFFFFFFFF"}}
    }]});
    let file = world.tmp.path().join("delete.json");
    std::fs::write(&file, delete.to_string()).unwrap();
    let produce = ["produce", "events", "--from-file", file.to_str().unwrap()];
    common::assert_success(&world.command(&produce).envs(env.clone()).output().unwrap(), &produce);
    let replay = ["replay", "--group", "bucketlens-labeler", "--until-end"];
    let out = world.command(&replay).envs(env).output().unwrap();
    common::assert_success(&out, &replay);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot tell whether the deleted object is back; removing it as the change says")
            && stderr.contains("photos/cat.png"),
        "{stderr}"
    );
    assert!(keys_in_index(&world).is_empty(), "the delete was applied");
}

#[test]
fn a_missing_bucket_or_a_bad_endpoint_is_a_clear_error() {
    let moto = Moto::start();
    let world = World::new(1);
    let out = run(&world, &moto, &["produce", "listing", "s3://no-such-bucket/", "--print"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://no-such-bucket/") && err.contains("NoSuchBucket"), "{err}");
    // An endpoint where nothing listens (port 1 of loopback): the bucket and the cause.
    let args = ["produce", "listing", "s3://photos/", "--print"];
    let out = command(&world, &moto, &args).env("AWS_ENDPOINT_URL", "http://127.0.0.1:1").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://photos/") && err.contains("Connection refused"), "{err}");
}

/// Writes an inventory report the way S3 does: gzipped CSV data files (the first in
/// two gzip members), manifest.json with their MD5s, and manifest.checksum.
fn write_inventory(dir: &std::path::Path, files: &[&[&str]], schema: &str) -> std::path::PathBuf {
    write_daily_inventory(dir, ("2026-11-24T01-00Z", 1_732_410_000_000), files, schema)
}

/// The report of one day (its folder, and its creation time in ms).
fn write_daily_inventory(
    dir: &std::path::Path,
    (day, created): (&str, i64),
    files: &[&[&str]],
    schema: &str,
) -> std::path::PathBuf {
    let report = dir.join(format!("inventory/photos/daily/{day}"));
    std::fs::create_dir_all(&report).unwrap();
    std::fs::create_dir_all(dir.join("inventory/photos/daily/data")).unwrap();
    let mut entries = Vec::new();
    for (i, rows) in files.iter().enumerate() {
        let key = format!("inventory/photos/daily/data/{day}-part-{i}.csv.gz");
        let mut bytes = Vec::new();
        let (first, rest) = rows.split_at(rows.len() / 2);
        for member in [first, rest] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            for row in member {
                writeln!(gz, "{row}").unwrap();
            }
            bytes.extend(gz.finish().unwrap());
        }
        std::fs::write(dir.join(&key), &bytes).unwrap();
        let md5 = md5_hex(&bytes);
        entries.push(serde_json::json!({ "key": key, "size": bytes.len(), "MD5checksum": md5 }));
    }
    let manifest = serde_json::json!({
        "sourceBucket": "photos",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "creationTimestamp": created.to_string(),
        "fileFormat": "CSV",
        "fileSchema": schema,
        "files": entries,
    });
    let text = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(report.join("manifest.json"), &text).unwrap();
    std::fs::write(report.join("manifest.checksum"), format!("{}\n", md5_hex(&text))).unwrap();
    report.join("manifest.json")
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const ALL_VERSIONS: &str =
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass";

#[test]
fn an_inventory_report_prints_and_indexes_exactly_what_aws_documents() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("photos");
    moto.put("photos", "a b/chelsea + cat.png", &example("chelsea.png"));
    moto.put("photos", "csv/comma, \"quoted\".png", &example("chelsea.png"));
    moto.put("photos", "listed but gone.png", &example("chelsea.png"));
    moto.delete("photos", "listed but gone.png");
    let rows: &[&str] = &[
        r#""photos","a+b%2Fchelsea+%2B+cat.png","","true","false","1000","2026-11-20T10:00:00.000Z","9b2cf535f27731c974343645a3985328","STANDARD""#,
        r#""photos","a+b%2Fchelsea+%2B+cat.png","v1","false","false","900","2026-11-19T10:00:00.000Z","0b2cf535f27731c974343645a3985328","STANDARD""#,
        r#""photos","csv%2Fcomma%2C+%22quoted%22.png","","true","false","1000","2026-11-20T10:00:00.000Z","1b2cf535f27731c974343645a3985328","STANDARD""#,
        r#""photos","deleted.png","v9","true","true","","2026-11-21T10:00:00.000Z","","""#,
        r#""photos","albums%2F","","true","false","0","2026-11-20T10:00:00.000Z","d41d8cd98f00b204e9800998ecf8427e","STANDARD""#,
        r#""photos","notes.txt","","true","false","5","2026-11-20T10:00:00.000Z","d41d8cd98f00b204e9800998ecf8427e","STANDARD""#,
        r#""photos","listed+but+gone.png","","true","false","1000","2026-11-20T10:00:00.000Z","2b2cf535f27731c974343645a3985328","STANDARD""#,
    ];
    let manifest = write_inventory(world.tmp.path(), &[rows], ALL_VERSIONS);
    let manifest = manifest.to_str().unwrap();

    let printed = ok(&world, &moto, &["produce", "inventory", manifest, "--print"]);
    let records: Vec<serde_json::Value> = printed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["kind"].as_str().unwrap(), r["version_id"].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("a b/chelsea + cat.png", "upsert", None),
            ("csv/comma, \"quoted\".png", "upsert", None),
            ("deleted.png", "delete", Some("v9")),
            ("listed but gone.png", "upsert", None),
        ]
    );
    assert_eq!(records[0]["etag"], "9b2cf535f27731c974343645a3985328");
    assert_eq!(records[0]["size"], 1000);

    // Embedded: index the report. The row whose object is gone since becomes a removal.
    let out = ok(&world, &moto, &["index", manifest]);
    assert!(out.contains("labeled 2"), "{out}");
    let expected: BTreeSet<String> = ["a b/chelsea + cat.png", "csv/comma, \"quoted\".png"].map(String::from).into();
    assert_eq!(keys_in_index(&world), expected);

    // A report is produced once.
    let out = run(&world, &moto, &["produce", "inventory", manifest]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("produced by an earlier run"));
}

/// Daily reports of a bucket that hardly changes: an unchanged object is neither read
/// nor labeled again (the labeler's ledger knows its version), a changed one is, and
/// a key the next report no longer lists is deleted.
#[test]
fn daily_inventory_reports_label_only_what_changed_and_delete_what_vanished() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("photos");
    let cat = example("chelsea.png");
    for key in ["a.png", "b.png", "c.png", "d.png"] {
        moto.put("photos", key, &cat);
    }
    let etag = md5_hex(&cat);
    let row = |key: &str, etag: &str| format!(r#""photos","{key}","1000","2026-11-20T10:00:00.000Z","{etag}""#);
    let schema = "Bucket, Key, Size, LastModifiedDate, ETag";
    let report = |day: (&str, i64), rows: &[String]| {
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        write_daily_inventory(world.tmp.path(), day, &[&rows], schema).to_str().unwrap().to_string()
    };
    let all: Vec<String> = ["a.png", "b.png", "c.png", "d.png"].iter().map(|k| row(k, &etag)).collect();
    let keys = |names: &[&str]| names.iter().map(|k| k.to_string()).collect::<BTreeSet<String>>();

    let first = report(("2026-11-24T01-00Z", 1_732_410_000_000), &all);
    let out = ok(&world, &moto, &["index", &first]);
    assert!(out.contains("labeled 4 · unchanged 0 · failed 0"), "{out}");

    // Had the second report read anything, a.png and b.png (gone from the bucket
    // since) would have become removals.
    moto.delete("photos", "a.png");
    moto.delete("photos", "b.png");
    let second = report(("2026-11-25T01-00Z", 1_732_496_400_000), &all);
    let out = ok(&world, &moto, &["index", &second]);
    assert!(out.contains("labeled 0 · unchanged 4 · failed 0 · removed 0"), "nothing read, nothing labeled: {out}");
    assert_eq!(keys_in_index(&world), keys(&["a.png", "b.png", "c.png", "d.png"]), "one document per object");

    // c.png changed, d.png is gone: one label, one delete. (The labeler checks a
    // delete with a HEAD: d.png is really deleted, as a report that no longer lists
    // it says. a.png and b.png, gone too, are listed by the report: those rows are
    // skipped unread, as above.)
    let coffee = example("coffee.png");
    moto.put("photos", "c.png", &coffee);
    moto.delete("photos", "d.png");
    let third = report(
        ("2026-11-26T01-00Z", 1_732_582_800_000),
        &[row("a.png", &etag), row("b.png", &etag), row("c.png", &md5_hex(&coffee))],
    );
    let out = ok(&world, &moto, &["index", &third]);
    assert!(out.contains("labeled 1 · unchanged 2 · failed 0 · removed 1"), "{out}");
    assert_eq!(keys_in_index(&world), keys(&["a.png", "b.png", "c.png"]));
    let status = world.status();
    assert_eq!(status["ledger"]["skipped_unchanged"], 6, "{status}");

    // A report older than the last one produced deletes nothing it does not list.
    let late = report(("2026-11-23T01-00Z", 1_732_323_600_000), &[row("a.png", &etag)]);
    let out = run(&world, &moto, &["index", &late]);
    common::assert_success(&out, &["index", &late]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is older than a report of the same configuration"));
    assert_eq!(keys_in_index(&world), keys(&["a.png", "b.png", "c.png"]));
}

#[test]
fn a_damaged_inventory_file_produces_nothing_and_says_which() {
    let world = World::new(1);
    let moto = Moto::start();
    let good: &[&str] = &[r#""photos","good.png","1000","2026-11-20T10:00:00.000Z""#; 2];
    let manifest = write_inventory(world.tmp.path(), &[good, good], "Bucket, Key, Size, LastModifiedDate");
    let part1 = world.tmp.path().join("inventory/photos/daily/data/2026-11-24T01-00Z-part-1.csv.gz");
    let bytes = std::fs::read(&part1).unwrap();
    std::fs::write(&part1, &bytes[..bytes.len() - 10]).unwrap(); // truncated after the MD5 was taken
    let out = run(&world, &moto, &["produce", "inventory", manifest.to_str().unwrap(), "--print"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("part-1.csv.gz") && stderr.contains("MD5") && stderr.contains("nothing was produced from it"),
        "{stderr}"
    );
    // The first file was fine and printed; nothing of the second.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    // A malformed row names its file and line; the rest is still produced.
    let rows: &[&str] = &[
        r#""photos","ok.png","1","2026-11-20T10:00:00.000Z""#,
        r#""photos","bad.png","many","2026-11-20T10:00:00.000Z""#,
    ];
    let manifest = write_inventory(world.tmp.path(), &[rows], "Bucket, Key, Size, LastModifiedDate");
    let out = run(&world, &moto, &["produce", "inventory", manifest.to_str().unwrap(), "--print"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("part-0.csv.gz, line 2: Size \"many\""), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every consumer group of the embedded log has read everything (lag 0).
fn all_caught_up(world: &World) -> bool {
    let status = world.status();
    status["groups"].as_array().unwrap().iter().all(|g| g["lag"] == 0)
}

/// The most confident label of `key`, for polls: none while the index is not made
/// yet (each test's first wait is for keys to be there, so a "gone" after it is one).
fn top_label(world: &World, key: &str) -> Option<String> {
    let docs = world.documents_so_far();
    let (_, labels) = docs.into_iter().find(|(k, _)| k == key)?;
    labels.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(name, _)| name)
}

/// An S3 record as S3 sends it to SQS, with our own sequencer.
fn event(name: &str, key: &str, sequencer: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-24T10:00:00.000Z", "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "quiet", "arn": "arn:aws:s3:::quiet"},
               "object": {"key": key, "size": 1, "eTag": "x", "sequencer": sequencer}}
    }]})
    .to_string()
}

#[test]
fn s3_events_through_sqs_keep_the_index_current() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("live");
    let queue = moto.notify_queue("live", "live-events");
    let mut index = command(&world, &moto, &["index", "s3://live/", "--watch", "--sqs", &queue]);
    let _index = Running(index.stderr(std::process::Stdio::null()).spawn().unwrap());

    // Upload → searchable (the key needs decoding: moto encodes it as S3 does).
    moto.put("live", "new folder/cat + friend.png", &example("chelsea.png"));
    wait_for("the upload is searchable", || top_label(&world, "new folder/cat + friend.png").is_some());
    let before = top_label(&world, "new folder/cat + friend.png").unwrap();

    // Overwrite → relabelled.
    moto.put("live", "new folder/cat + friend.png", &example("coffee.png"));
    wait_for("the overwrite is relabelled", || {
        top_label(&world, "new folder/cat + friend.png").is_some_and(|l| l != before)
    });

    // Delete → gone.
    moto.delete("live", "new folder/cat + friend.png");
    wait_for("the deleted image is gone", || top_label(&world, "new folder/cat + friend.png").is_none());

    // A late create after a delete changes nothing: its labeler finds the object gone.
    // These events are sent by hand, with sequencers, for a bucket without
    // notifications of its own; `World::new(1)` has one partition, so the marker's
    // event is consumed after the late one.
    moto.create_bucket("quiet");
    moto.put("quiet", "late.png", &example("chelsea.png"));
    let send = |body: String| moto.py(&format!("sqs.send_message(QueueUrl={queue:?}, MessageBody={})", py_str(&body)));
    send(event("ObjectCreated:Put", "late.png", "00000000000000B0"));
    wait_for("late.png is searchable", || top_label(&world, "late.png").is_some());
    moto.delete("quiet", "late.png");
    send(event("ObjectRemoved:Delete", "late.png", "00000000000000C0"));
    wait_for("late.png is deleted", || top_label(&world, "late.png").is_none());
    send(event("ObjectCreated:Put", "late.png", "00000000000000A0"));
    moto.put("quiet", "marker.png", &example("chelsea.png"));
    send(event("ObjectCreated:Put", "marker.png", "00000000000000D0"));
    wait_for("the event after the late one is applied", || top_label(&world, "marker.png").is_some());
    // The marker is another key: the late event itself must be consumed and labeled
    // (queue empty, every group caught up) before its absence proves anything.
    let settled = || moto.queue_depth(&queue) == 0 && all_caught_up(&world);
    wait_for("the queue drained and every group caught up", settled);
    assert_eq!(top_label(&world, "late.png"), None, "a late event resurrected a deleted image");

    // A delete overtaken by a new upload (its event arrives after the new upload's):
    // the labeler finds the new object there and the index keeps it, labeled.
    let cat = top_label(&world, "marker.png").unwrap();
    moto.put("quiet", "back.png", &example("chelsea.png"));
    send(event("ObjectCreated:Put", "back.png", "00000000000000A0"));
    wait_for("back.png is searchable", || top_label(&world, "back.png").as_ref() == Some(&cat));
    moto.delete("quiet", "back.png");
    moto.put("quiet", "back.png", &example("coffee.png"));
    send(event("ObjectCreated:Put", "back.png", "00000000000000C0"));
    wait_for("back.png is the coffee", || top_label(&world, "back.png").is_some_and(|l| l != cat));
    let coffee = top_label(&world, "back.png");
    send(event("ObjectRemoved:Delete", "back.png", "00000000000000B0"));
    moto.put("quiet", "marker2.png", &example("chelsea.png"));
    send(event("ObjectCreated:Put", "marker2.png", "00000000000000D0"));
    wait_for("the event after the late delete is applied", || top_label(&world, "marker2.png").is_some());
    wait_for("the queue drained and every group caught up", settled);
    assert_eq!(top_label(&world, "back.png"), coffee, "a late delete removed an object that is in the bucket");

    // A message that is not a notification is kept on notifications.dlq.v1, not on
    // the labeler's DLQ, and deleted from the queue.
    send(r#"{"hello": "not an S3 event"}"#.to_string());
    wait_for("the malformed message is dead-lettered", || world.status()["dlq"]["notifications.dlq.v1"] == 1);
    assert_eq!(world.status()["dlq"]["objects.changed.dlq.v1"], 0);
    wait_for("the queue is drained", || moto.queue_depth(&queue) == 0);
}

/// An S3 record for one version of an object in bucket `versions`.
fn version_event(name: &str, key: &str, version: &str, sequencer: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-24T10:00:00.000Z", "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "versions", "arn": "arn:aws:s3:::versions"},
               "object": {"key": key, "versionId": version, "sequencer": sequencer}}
    }]})
    .to_string()
}

/// In a versioned bucket, deleting one version leaves the previous one current: the
/// index then holds the labels of that version, not nothing. A delete marker, or
/// deleting the last version, removes the key. (moto notifies no version deletes,
/// so the events are sent by hand in S3's documented shape, after the real deletes.)
#[test]
fn deleting_one_version_of_a_versioned_object_labels_the_version_now_current() {
    let moto = Moto::start();
    let world = World::new(1);
    let queue = moto.py("print(sqs.create_queue(QueueName='versions')['QueueUrl'])").trim().to_string();
    let mut index = command(&world, &moto, &["index", "s3://versions/", "--watch", "--sqs", &queue]);
    moto.create_bucket("versions");
    moto.py("s3.put_bucket_versioning(Bucket='versions', VersioningConfiguration={'Status': 'Enabled'})");
    let put = |key: &str, image: &str| -> String {
        let path = examples_dir().join(image);
        moto.py(&format!(
            "print(s3.put_object(Bucket='versions', Key={}, Body=open({:?}, 'rb').read())['VersionId'])",
            py_str(key),
            path.to_str().unwrap()
        ))
        .trim()
        .to_string()
    };
    let send = |body: String| moto.py(&format!("sqs.send_message(QueueUrl={queue:?}, MessageBody={})", py_str(&body)));

    // What the cat and the coffee are labelled, on keys of their own; and photo.png:
    // the cat, then the coffee over it. All are there before the run starts, so the
    // backfill's listing indexes them, with S3's LastModified (whole seconds).
    let cat_version = put("cat.png", "chelsea.png");
    put("coffee.png", "coffee.png");
    let v1 = put("photo.png", "chelsea.png");
    // In another second: the older version's LastModified is older.
    std::thread::sleep(Duration::from_millis(1100));
    let v2 = put("photo.png", "coffee.png");
    assert_ne!(v1, v2);
    let _index = Running(index.stderr(std::process::Stdio::null()).spawn().unwrap());
    wait_for("the listing indexed the three keys", || {
        ["cat.png", "coffee.png", "photo.png"].iter().all(|k| top_label(&world, k).is_some())
    });
    let (cat, coffee) = (top_label(&world, "cat.png").unwrap(), top_label(&world, "coffee.png").unwrap());
    assert_ne!(cat, coffee);
    assert_eq!(top_label(&world, "photo.png"), Some(coffee.clone()), "the listing indexed the current version");

    // The coffee version is deleted: the cat is current again, and indexed, though its
    // LastModified is older than the coffee's (issue 39: it was dropped as stale).
    moto.py(&format!("s3.delete_object(Bucket='versions', Key='photo.png', VersionId={v2:?})"));
    send(version_event("ObjectRemoved:Delete", "photo.png", &v2, "00000000000000D0"));
    wait_for("photo.png is the cat again", || top_label(&world, "photo.png").as_ref() == Some(&cat));

    // A delete marker hides the object: gone from the index.
    let marker = moto.py("print(s3.delete_object(Bucket='versions', Key='photo.png')['VersionId'])").trim().to_string();
    send(version_event("ObjectRemoved:DeleteMarkerCreated", "photo.png", &marker, "00000000000000E0"));
    wait_for("photo.png is gone behind its delete marker", || top_label(&world, "photo.png").is_none());

    // The cat's only version is deleted for good: its key is removed.
    moto.py(&format!("s3.delete_object(Bucket='versions', Key='cat.png', VersionId={cat_version:?})"));
    send(version_event("ObjectRemoved:Delete", "cat.png", &cat_version, "00000000000000F0"));
    wait_for("cat.png is gone", || top_label(&world, "cat.png").is_none());
    assert_eq!(top_label(&world, "coffee.png"), Some(coffee));
    wait_for("the queue is drained", || moto.queue_depth(&queue) == 0);
}

#[test]
fn the_webhook_takes_s3_eventbridge_and_minio_bodies_with_a_token() {
    let moto = Moto::start(); // for its Python client only
    let world = World::new(1);
    // Port 0: the webhook binds a free port itself and says which.
    let mut webhook = command(&world, &moto, &["produce", "events", "--webhook", "127.0.0.1:0", "--print"]);
    webhook.env("BUCKETLENS_EVENTS__WEBHOOK_TOKEN", "s3cret").env("BUCKETLENS_EVENTS__WEBHOOK_MAX_BODY", "20000");
    let mut child = webhook.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let _webhook = Running(child);
    let addr = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "the webhook ended");
        if let Some(rest) = line.split("webhook on http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../producers/events/tests/fixtures");
    let post = |body: &str, token: &str| -> u16 {
        let script = format!(
            "import urllib.request, urllib.error
req = urllib.request.Request('http://{addr}/minio/events', data={}.encode(), headers={{'Authorization': 'Bearer ' + {token:?}}})
try:
    print(urllib.request.urlopen(req).status)
except urllib.error.HTTPError as e:
    print(e.code)",
            py_str(body)
        );
        moto.py(&script).trim().parse().unwrap()
    };
    let fixture = |name: &str| std::fs::read_to_string(fixtures.join(name)).unwrap();
    // The liveness check a RustFS webhook target makes before delivering (no token).
    let check = |method: &str| -> String {
        moto.py(&format!(
            "import urllib.request\nr = urllib.request.urlopen(urllib.request.Request('http://{addr}/', method='{method}'))\nprint(r.status, len(r.read()))"
        ))
        .trim()
        .to_string()
    };
    assert_eq!(check("HEAD"), "200 0");
    assert!(check("GET").starts_with("200 "), "GET / answers");
    assert_eq!(post(&fixture("s3-object-created.json"), "wrong"), 401);
    assert_eq!(post("{\"hello\": 1}", "s3cret"), 400);
    assert_eq!(post(&"x".repeat(30_000), "s3cret"), 413);
    for name in
        ["s3-object-created.json", "eventbridge-object-created.json", "minio-webhook.json", "s3-test-event.json"]
    {
        assert_eq!(post(&fixture(name), "s3cret"), 200, "{name}");
    }
    // Each 200 came after its records were written: all three are printed already.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let keys: Vec<String> = (0..3)
        .map(|_| {
            let line = lines.next().unwrap().unwrap();
            serde_json::from_str::<serde_json::Value>(&line).unwrap()["key"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(keys, ["HappyFace.jpg", "example-key.jpg", "holiday photos/beach 1.jpg"]);
}

#[test]
fn a_listing_pages_through_more_than_a_thousand_keys() {
    let moto = Moto::start();
    let world = World::new(1);
    moto.create_bucket("many");
    moto.py("for i in range(1203):\n    s3.put_object(Bucket='many', Key=f'p/{i:05}.png', Body=b'x')\ns3.put_object(Bucket='many', Key='q/other.png', Body=b'x')");
    let printed = ok(&world, &moto, &["produce", "listing", "s3://many/p/", "--print"]);
    let keys: BTreeSet<String> = printed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 1203);
    assert!(keys.iter().all(|k| k.starts_with("p/")));
}

/// Records in objects.changed.v1 (nothing consumes it here, so the labeler group's
/// lag is every record the log holds).
fn records_in_log(world: &World) -> u64 {
    world.status()["groups"][0]["lag"].as_u64().unwrap()
}

#[test]
fn an_inventory_killed_mid_file_resumes_where_it_stopped() {
    let world = World::new(0);
    const ROWS: usize = 400_000;
    let rows: Vec<String> = (0..ROWS)
        .map(|i| format!(r#""photos","crash%2FIMG_{i:07}.jpg","{}","2026-11-20T10:00:00.000Z""#, 1000 + i))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (first, second) = rows.split_at(ROWS / 2);
    let manifest = write_inventory(world.tmp.path(), &[first, second], "Bucket, Key, Size, LastModifiedDate");
    let manifest = manifest.to_str().unwrap();
    let args = ["produce", "inventory", manifest];

    // Kill it (SIGKILL) once some batches are in the log and before it is done.
    let mut child = world.command(&args).env("BUCKETLENS_INVENTORY__BATCH_SIZE", "1000").spawn().unwrap();
    let mut before_kill = 0;
    while child.try_wait().unwrap().is_none() {
        if world.data.join("log.sqlite").exists() {
            before_kill = records_in_log(&world);
            if before_kill >= 5_000 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed: the test proves nothing");
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = records_in_log(&world);
    assert!((before_kill..ROWS as u64).contains(&at_kill), "{before_kill} then {at_kill} records at the kill");

    // The rerun reads only what was not checkpointed: at most one batch again.
    let out = world.command(&args).env("BUCKETLENS_INVENTORY__BATCH_SIZE", "1000").output().unwrap();
    common::assert_success(&out, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stderr.lines().find(|l| l.contains(" rows, produced ")).unwrap_or_else(|| panic!("{stderr}"));
    let reread: u64 = summary.rsplit(": ").next().and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert!(
        reread <= ROWS as u64 - at_kill + 1000,
        "the rerun read {reread} rows after {at_kill} were produced: {stderr}"
    );
    let total = records_in_log(&world);
    assert!(
        (ROWS as u64..=ROWS as u64 + 1000).contains(&total),
        "{total} records for {ROWS} rows: rows lost, or more than one batch produced twice"
    );
    assert_eq!(at_kill + reread, total, "the rerun produced exactly what it read");
}

#[test]
fn an_object_the_credentials_may_not_read_is_failed_with_the_missing_permission() {
    // Six unauthenticated requests for the set-up below, then IAM is enforced.
    let moto = Moto::start_enforcing_iam_after(6);
    let world = World::new(0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cat.png"), example("chelsea.png")).unwrap();
    let cat = py_str(dir.path().join("cat.png").to_str().unwrap());
    let keys = moto.py(&format!(
        "iam = boto3.client('iam', **kw)
s3.create_bucket(Bucket='locked')
s3.upload_file({cat}, 'locked', 'open/cat.png')
s3.upload_file({cat}, 'locked', 'private/cat.png')
iam.create_user(UserName='reader')
iam.put_user_policy(UserName='reader', PolicyName='read-open', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [
    {{'Effect': 'Allow', 'Action': ['s3:ListBucket'], 'Resource': 'arn:aws:s3:::locked'}},
    {{'Effect': 'Allow', 'Action': ['s3:GetObject'], 'Resource': 'arn:aws:s3:::locked/open/*'}}]}}))
k = iam.create_access_key(UserName='reader')['AccessKey']
print(k['AccessKeyId'], k['SecretAccessKey'])"
    ));
    let (id, secret) = keys.trim().split_once(' ').unwrap();
    let args = ["index", "s3://locked/"];
    let out = command(&world, &moto, &args)
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .unwrap();
    common::assert_success(&out, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("found 2 images") && stdout.contains("failed 1"), "{stdout}");
    assert_eq!(keys_in_index(&world), BTreeSet::from(["open/cat.png".to_string()]));
    let failed = world.json(&["search", "--failed", "--json"]);
    let hit = &failed["hits"][0];
    assert_eq!(hit["key"], "private/cat.png", "{failed}");
    let reason = hit.to_string();
    assert!(reason.contains("s3:GetObject") && reason.contains("locked/private/cat.png"), "{failed}");
}

/// A moto that records every request in `file`, and the cat photo as a file for
/// boto3 to upload (`cat`, a Python string).
struct Recording {
    moto: Moto,
    file: std::path::PathBuf,
    cat: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Recording {
    fn start() -> Self {
        let recording = tempfile::tempdir().unwrap();
        let file = recording.path().join("requests.jsonl");
        let moto = Moto::start_recording(&file);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cat.png"), example("chelsea.png")).unwrap();
        let cat = py_str(dir.path().join("cat.png").to_str().unwrap());
        Self { moto, file, cat, _dirs: (recording, dir) }
    }
}

/// Objects in Glacier and Deep Archive: S3 answers their GET with InvalidObjectState,
/// so the labeler makes none. It skips and counts them, labels the restored one and
/// the Glacier Instant Retrieval one (read like any other), and a later listing offers
/// the archived ones again: restored in between, one is labeled.
#[test]
fn archived_objects_are_skipped_and_counted_without_a_get_and_labeled_once_restored() {
    let Recording { moto, file, cat, _dirs } = Recording::start();
    let world = World::new(0);
    moto.py(&format!(
        "s3.create_bucket(Bucket='cold')
for key, cls in [('cat.png', 'STANDARD'), ('frozen.png', 'GLACIER'), ('deep/cat.png', 'DEEP_ARCHIVE'),
                 ('thawed.png', 'GLACIER'), ('instant.png', 'GLACIER_IR')]:
    s3.upload_file({cat}, 'cold', key, ExtraArgs={{'StorageClass': cls}})
s3.restore_object(Bucket='cold', Key='thawed.png', RestoreRequest={{'Days': 1}})"
    ));
    let gets = |key: &str| {
        let path = format!("/cold/{key}");
        Moto::requests(&file).iter().filter(|(method, p)| method == "GET" && *p == path).count()
    };
    let out = ok(&world, &moto, &["index", "s3://cold/"]);
    assert!(out.contains("found 5 images"), "{out}");
    assert!(out.contains("labeled 3 · unchanged 0 · archived 2 · failed 0"), "{out}");
    assert!(out.contains("2 archived (Glacier, Deep Archive or an archive tier) and not read"), "{out}");
    let indexed = BTreeSet::from(["cat.png", "instant.png", "thawed.png"].map(String::from));
    assert_eq!(keys_in_index(&world), indexed);
    assert_eq!((gets("frozen.png"), gets("deep/cat.png")), (0, 0), "an archived object was read");
    assert!(gets("thawed.png") >= 1, "the restored object was not read");
    let status = world.json(&["status", "--json"]);
    assert_eq!(status["ledger"]["skipped_archived"], 2, "{status}");

    // Restored now: the next listing offers the archived ones again (the thawed one
    // too, still in GLACIER: the ledger knows it is labeled), and labels it.
    moto.py("s3.restore_object(Bucket='cold', Key='frozen.png', RestoreRequest={'Days': 1})");
    let out = ok(&world, &moto, &["index", "s3://cold/"]);
    assert!(out.contains("3 new or changed"), "{out}");
    assert!(out.contains("labeled 1 · unchanged 1 · archived 1 · failed 0"), "{out}");
    assert!(keys_in_index(&world).contains("frozen.png"));
    assert_eq!(gets("deep/cat.png"), 0);

    // `archived = "fail"`: tried like any object, FAILED with the reason named.
    let world = World::new(0);
    let out =
        command(&world, &moto, &["index", "s3://cold/"]).env("BUCKETLENS_LABELER__ARCHIVED", "fail").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("labeled 4 · unchanged 0 · failed 1"), "{stdout}");
    let failed = world.json(&["search", "--failed", "--json"]);
    let hit = failed["hits"][0].to_string();
    assert!(
        hit.contains("ObjectArchived") && hit.contains("s3://cold/deep/cat.png") && hit.contains("restore"),
        "{failed}"
    );
}

/// `plan` on an S3 prefix: every object counted by storage class and prefix, the
/// archived images apart, nothing read (no GET of any object); after a backfill, the
/// same plan has nothing left to label.
#[test]
fn plan_counts_a_prefix_by_class_reads_nothing_and_has_nothing_left_after_a_backfill() {
    let Recording { moto, file, cat, _dirs } = Recording::start();
    let world = World::new(0);
    let size = example("chelsea.png").len() as u64;
    moto.py(&format!(
        "s3.create_bucket(Bucket='plans')
for key, cls in [('a/cat.png', 'STANDARD'), ('a/b/café + cat.PNG', 'STANDARD_IA'), ('cat.png', 'GLACIER_IR'),
                 ('old/frozen.png', 'GLACIER'), ('old/deep.png', 'DEEP_ARCHIVE')]:
    s3.upload_file({cat}, 'plans', key, ExtraArgs={{'StorageClass': cls}})
s3.put_object(Bucket='plans', Key='a/notes.txt', Body=b'12345')
s3.put_object(Bucket='plans', Key='old/', Body=b'')"
    ));
    let before = Moto::requests(&file).len();
    let plan = |world: &World| {
        let out = ok(world, &moto, &["plan", "s3://plans/", "--rate", "10", "--labelers", "2", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let p = plan(&world);
    assert_eq!(
        (p["objects"].as_u64(), p["images"].as_u64(), p["other_objects"].as_u64()),
        (Some(7), Some(5), Some(2)),
        "{p}"
    );
    assert_eq!(p["bytes"].as_u64(), Some(5 * size + 5), "{p}");
    assert_eq!(
        (p["already_labeled"].as_u64(), p["to_label"].as_u64(), p["archived"].as_u64()),
        (Some(0), Some(3), Some(2)),
        "{p}"
    );
    assert_eq!(p["archived_bytes"].as_u64(), Some(2 * size));
    let classes = &p["by_storage_class"];
    for (class, n) in [("STANDARD", 3), ("STANDARD_IA", 1), ("GLACIER_IR", 1), ("GLACIER", 1), ("DEEP_ARCHIVE", 1)] {
        assert_eq!(classes[class]["objects"].as_u64(), Some(n), "{class}: {classes}");
    }
    let prefixes: Vec<(&str, u64)> = p["by_prefix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["prefix"].as_str().unwrap(), e["objects"].as_u64().unwrap()))
        .collect();
    assert_eq!(prefixes, [("a/", 3), ("old/", 3), ("(top level)", 1)]);
    let local = &p["estimates"]["local"];
    assert_eq!((local["images_per_second"].as_f64(), local["seconds"].as_f64()), (Some(10.0), Some(0.15)), "{p}");
    let rekognition = &p["estimates"]["rekognition"];
    assert_eq!(rekognition["calls"].as_u64(), Some(3));
    assert!((rekognition["usd"].as_f64().unwrap() - 0.003).abs() < 1e-9, "{p}");
    let requests = &p["estimates"]["s3"]["requests"];
    assert_eq!(
        (requests["get"].as_u64(), requests["head"].as_u64(), requests["list"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    let made: Vec<(String, String)> = Moto::requests(&file)[before..].to_vec();
    assert!(made.iter().all(|(method, path)| method == "GET" && path == "/plans/"), "plan read an object: {made:?}");

    let out = ok(&world, &moto, &["index", "s3://plans/"]);
    assert!(out.contains("labeled 3 · unchanged 0 · archived 2 · failed 0"), "{out}");
    let p = plan(&world);
    assert_eq!(
        (p["already_labeled"].as_u64(), p["to_label"].as_u64(), p["archived"].as_u64()),
        (Some(3), Some(0), Some(2)),
        "{p}"
    );
    let text = ok(&world, &moto, &["plan", "s3://plans/", "--rate", "10"]);
    assert!(text.contains("images: 3 already labeled · 0 to label (0 B) · 2 archived, skipped"), "{text}");
}

/// `plan` on an inventory report in AWS's layout: every storage class and access
/// tier, images and not, odd keys, noncurrent versions and delete markers, counted
/// exactly; a storage class S3 does not document is named with its file, line and
/// column; a report of another format is refused naming the manifest.
#[test]
fn plan_counts_an_inventory_report_exactly_and_names_what_it_cannot_read() {
    let moto = Moto::start();
    let world = World::new(0);
    let rows: &[&str] = &[
        r#""photos","a+b%2Fchelsea+%2B+cat.png","","true","false","1000","2026-11-20T10:00:00.000Z","9b2cf535f27731c974343645a3985328","STANDARD","""#,
        r#""photos","a+b%2Fchelsea+%2B+cat.png","v1","false","false","900","2026-11-19T10:00:00.000Z","0b2cf535f27731c974343645a3985328","STANDARD","""#,
        r#""photos","deleted.png","v9","true","true","","2026-11-21T10:00:00.000Z","","","""#,
        r#""photos","cold%2Fglacier.jpg","","true","false","2000","2026-11-20T10:00:00.000Z","1b2cf535f27731c974343645a3985328","GLACIER","""#,
        r#""photos","cold%2Fdeep.heic","","true","false","3000","2026-11-20T10:00:00.000Z","2b2cf535f27731c974343645a3985328","DEEP_ARCHIVE","""#,
        r#""photos","it%2Ffrequent.webp","","true","false","400","2026-11-20T10:00:00.000Z","3b2cf535f27731c974343645a3985328","INTELLIGENT_TIERING","FREQUENT_ACCESS""#,
        r#""photos","it%2Farchive.png","","true","false","500","2026-11-20T10:00:00.000Z","4b2cf535f27731c974343645a3985328","INTELLIGENT_TIERING","ARCHIVE_ACCESS""#,
        r#""photos","it%2Fdeep+archive.png","","true","false","600","2026-11-20T10:00:00.000Z","5b2cf535f27731c974343645a3985328","INTELLIGENT_TIERING","DEEP_ARCHIVE_ACCESS""#,
        r#""photos","it%2Finstant.png","","true","false","700","2026-11-20T10:00:00.000Z","6b2cf535f27731c974343645a3985328","INTELLIGENT_TIERING","ARCHIVE_INSTANT_ACCESS""#,
        r#""photos","notes.txt","","true","false","5","2026-11-20T10:00:00.000Z","d41d8cd98f00b204e9800998ecf8427e","STANDARD_IA","""#,
        r#""photos","albums%2F","","true","false","0","2026-11-20T10:00:00.000Z","d41d8cd98f00b204e9800998ecf8427e","STANDARD","""#,
        r#""photos","odd%2Fcaf%C3%A9+%E2%98%95.jpg","","true","false","800","2026-11-20T10:00:00.000Z","7b2cf535f27731c974343645a3985328","FOO","""#,
    ];
    let schema = format!("{ALL_VERSIONS}, IntelligentTieringAccessTier");
    let manifest = write_inventory(world.tmp.path(), &[rows], &schema);
    let out = ok(&world, &moto, &["plan", manifest.to_str().unwrap(), "--rate", "10", "--json"]);
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Current objects: 9 (the noncurrent version and the delete marker are not);
    // images: 7 (not notes.txt, not the folder marker).
    assert_eq!(
        (p["objects"].as_u64(), p["images"].as_u64(), p["other_objects"].as_u64()),
        (Some(10), Some(8), Some(2)),
        "{p}"
    );
    assert_eq!(p["bytes"].as_u64(), Some(1000 + 2000 + 3000 + 400 + 500 + 600 + 700 + 5 + 800), "{p}");
    assert_eq!((p["to_label"].as_u64(), p["archived"].as_u64()), (Some(4), Some(4)), "{p}");
    assert_eq!(p["archived_bytes"].as_u64(), Some(2000 + 3000 + 500 + 600), "{p}");
    assert_eq!(p["by_storage_class"]["INTELLIGENT_TIERING"]["objects"].as_u64(), Some(4), "{p}");
    assert_eq!(p["by_storage_class"]["FOO"]["objects"].as_u64(), Some(1), "{p}");
    let problems: Vec<&str> = p["problems"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .ends_with("part-0.csv.gz, line 12: column StorageClass: \"FOO\" is not a storage class S3 documents"),
        "{problems:?}"
    );
    // Inventory: every image row to label is checked with a HEAD, then read.
    let requests = &p["estimates"]["s3"]["requests"];
    assert_eq!(
        (requests["get"].as_u64(), requests["head"].as_u64(), requests["list"].as_u64()),
        (Some(4 + 2), Some(4 + 4), Some(0)),
        "{p}"
    );

    // A report without a StorageClass column: said, since archived objects cannot be told.
    let bare = tempfile::tempdir().unwrap();
    let plain: &[&str] = &[r#""photos","cat.png""#];
    let manifest = write_inventory(bare.path(), &[plain], "Bucket, Key");
    let out = ok(&world, &moto, &["plan", manifest.to_str().unwrap(), "--rate", "10"]);
    assert!(out.contains("the report has no StorageClass column"), "{out}");

    // A Parquet report: refused, naming the manifest and the format.
    let text = std::fs::read_to_string(&manifest).unwrap().replace("\"CSV\"", "\"Parquet\"");
    std::fs::write(&manifest, text).unwrap();
    std::fs::remove_file(manifest.with_file_name("manifest.checksum")).unwrap();
    let out = run(&world, &moto, &["plan", manifest.to_str().unwrap(), "--rate", "10"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("manifest.json") && stderr.contains("fileFormat Parquet"), "{stderr}");
}

/// The AWS settings of `moto` except its endpoint: credentials and region only.
fn credentials_only(cmd: &mut Command, moto: &Moto) {
    for (k, v) in moto.env() {
        if k != "AWS_ENDPOINT_URL" {
            cmd.env(k, v);
        }
    }
}

#[test]
fn produce_events_reads_a_local_queue_at_its_own_url_and_names_an_unreachable_endpoint() {
    let moto = Moto::start();
    let world = World::new(0);
    let queue = moto.py("print(sqs.create_queue(QueueName='plain')['QueueUrl'])").trim().to_string();
    moto.py(&format!(
        "sqs.send_message(QueueUrl={queue:?}, MessageBody={})",
        py_str(&event("ObjectCreated:Put", "cat.png", "00000000000000A0"))
    ));
    // No endpoint configured anywhere: the queue URL's host is the endpoint.
    let mut cmd = world.command(&["produce", "events", "--sqs", &queue]);
    credentials_only(&mut cmd, &moto);
    let _producer = Running(cmd.stderr(std::process::Stdio::null()).spawn().unwrap());
    wait_for("the notification is produced", || records_in_log(&world) == 1);
    wait_for("the message is deleted", || moto.queue_depth(&queue) == 0);

    // An endpoint that does not answer: the error names it and what to set.
    let dead = "http://127.0.0.1:9/123456789012/gone";
    let mut cmd = world.command(&["produce", "events", "--sqs", dead]);
    credentials_only(&mut cmd, &moto);
    let mut child = Running(cmd.stderr(std::process::Stdio::piped()).spawn().unwrap());
    let mut stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let mut said = String::new();
    // A refused connection is retried (a warning) or ends the run (an error): either
    // names the endpoint.
    while !said.contains("sqs-endpoint-url") {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "exited saying: {said}");
        said.push_str(&line);
    }
    assert!(said.contains("http://127.0.0.1:9 (the queue URL's host)"), "{said}");
}

/// An inventory report of `photos` in S3 as S3 writes it: under `inv`'s
/// `photos/daily/DAY/`, with its data file under `photos/daily/data/`.
fn upload_report(moto: &Moto, day: &str, created: i64, keys: &[&str], etag: &str) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for key in keys {
        writeln!(gz, r#""photos","{}","1000","2026-11-20T10:00:00.000Z","{etag}""#, key.replace('/', "%2F")).unwrap();
    }
    let data = gz.finish().unwrap();
    let data_key = format!("photos/daily/data/{day}.csv.gz");
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "sourceBucket": "photos",
        "destinationBucket": "arn:aws:s3:::inv",
        "version": "2016-11-30",
        "creationTimestamp": created.to_string(),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{ "key": data_key, "size": data.len(), "MD5checksum": md5_hex(&data) }],
    }))
    .unwrap();
    moto.put("inv", &data_key, &data);
    moto.put("inv", &format!("photos/daily/{day}/manifest.json"), &manifest);
    moto.put("inv", &format!("photos/daily/{day}/manifest.checksum"), format!("{}\n", md5_hex(&manifest)).as_bytes());
}

/// The `sh moto` blocks of the guide (S3 prefixes, inventory reports in S3, S3 → SQS
/// notifications, the webhook, a saved event file), run as a user runs them against a
/// bucket `photos`, an inventory bucket `inv` and a queue at the page's `QUEUE_URL`.
/// The webhook's `0.0.0.0:8080` is bound in a network namespace of its own.
#[test]
fn the_guides_s3_commands_run_against_an_s3_server() {
    let moto = Moto::start();
    let world = World::new(0);
    moto.create_bucket("photos");
    moto.create_bucket("inv");
    let cat = example("chelsea.png");
    for key in ["2024/cat.png", "2024/coffee.png", "prefix/cat.png"] {
        let name = key.rsplit('/').next().unwrap().replace("cat", "chelsea");
        moto.put("photos", key, &example(&name));
    }
    let etag = md5_hex(&cat);
    upload_report(&moto, "2026-11-24T01-00Z", 1_732_410_000_000, &["2024/cat.png"], &etag);
    upload_report(&moto, "2026-12-01T01-00Z", 1_733_014_800_000, &["2024/cat.png", "prefix/cat.png"], &etag);
    let queue = moto.notify_queue("photos", "photos-events");
    let work = world.tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("saved.json"), event("ObjectCreated:Put", "2024/cat.png", "00000000000000A0")).unwrap();

    let mut shell = docs::Shell::new(world.tmp.path().join("home"), work, world.tmp.path().join("logs"));
    shell.env.push(("BUCKETLENS_DATA_DIR".into(), world.data.display().to_string()));
    shell.env.extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    shell.placeholders.push(("QUEUE_URL".into(), queue.clone()));
    let blocks = docs::sh_blocks("moto");
    let mut ran = 0;
    for block in &blocks {
        ran += shell.run_block(block, false, |_, _| {}, |_| false);
    }
    assert!(blocks.len() >= 2 && ran >= 9, "{} blocks, {ran} commands", blocks.len());
    // What they did: the prefix, the reports and the saved event are indexed.
    let keys = keys_in_index(&world);
    for key in ["2024/cat.png", "2024/coffee.png", "prefix/cat.png"] {
        assert!(keys.contains(key), "{key} is not searchable after the page's commands: {keys:?}");
    }
}

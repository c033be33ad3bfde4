//! `bucketlens act` end to end, with the real binary: standing queries that post
//! signed webhooks to a receiver the test runs, publish on the label log's side
//! topic, and tag objects on a real S3 server (moto), once per match, through
//! outages, replays and a kill.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketlens_schemas::{AvroRecord, ImageMatched, MatchKind};
use common::s3::Moto;
use common::{examples_dir, World};
use hmac::{Hmac, Mac};
use serde_json::Value;

const SECRET: &str = "a-secret-the-receiver-shares";

/// A post as received: its headers (lowercased names) and body.
type Post = (BTreeMap<String, String>, Vec<u8>);
/// A record on the embedded log: key, value, headers.
type LogEntry = (String, Vec<u8>, Vec<(String, String)>);

/// A webhook receiver: keeps every post, and can answer 503 (down) or slowly.
#[derive(Clone, Default)]
struct Receiver {
    port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
    /// Requests still to refuse with 503 (u32::MAX: refuse until told otherwise).
    refuse: Arc<AtomicU32>,
    /// Milliseconds to wait before answering.
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> Self {
        let mut receiver = Self::default();
        let me = receiver.clone();
        receiver.port = common::http::serve(move |request| {
            std::thread::sleep(Duration::from_millis(me.delay_ms.load(Ordering::SeqCst)));
            let refused = me.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            });
            if refused.is_ok() {
                return (503, "text/plain", "down".into());
            }
            let headers = request.headers.iter().cloned().collect();
            me.posts.lock().unwrap().push((headers, request.body.clone()));
            (200, "text/plain", "ok".into())
        });
        receiver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/cats", self.port)
    }

    fn posts(&self) -> Vec<(BTreeMap<String, String>, Value)> {
        let posts = self.posts.lock().unwrap().clone();
        posts.into_iter().map(|(h, body)| (h, serde_json::from_slice(&body).unwrap())).collect()
    }

    /// Posts per delivery id.
    fn deliveries(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (headers, _) in self.posts() {
            *out.entry(headers["x-bucketlens-delivery"].clone()).or_insert(0) += 1;
        }
        out
    }

    /// Every post's signature checks against its body, and nothing else does.
    fn assert_signed(&self) {
        for (headers, body) in self.posts.lock().unwrap().iter() {
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body);
            let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(headers["x-bucketlens-signature"], format!("sha256={want}"));
            let mut forged = body.clone();
            forged[1] ^= 1;
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(&forged);
            assert!(mac.verify_slice(&hex(&headers["x-bucketlens-signature"][7..])).is_err());
        }
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn write_config(dir: &Path, rule: &str) -> PathBuf {
    let path = dir.join("act.toml");
    let text = format!(
        "[act]\nwebhook-secret = \"{SECRET}\"\nwebhook-attempts = 6\nwebhook-backoff = \"100ms\"\n\n[[act.rules]]\n{rule}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Keys the index finds for `query`.
fn found(w: &World, config: &Path, query: &str) -> Vec<String> {
    let v = w.json(&["--config", config.to_str().unwrap(), "search", query, "--json", "--limit", "1000"]);
    let mut keys: Vec<String> =
        v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap().into()).collect();
    keys.sort();
    keys
}

/// The records of `topic` on the embedded log: (key, value, headers).
fn on_log(w: &World, topic: &str) -> Vec<LogEntry> {
    let log = rusqlite::Connection::open(w.data.join("log.sqlite")).unwrap();
    let mut query =
        log.prepare("SELECT key, value, headers FROM records WHERE topic = ?1 ORDER BY timestamp_ms").unwrap();
    let rows = query
        .query_map([topic], |r| {
            let headers: String = r.get(2)?;
            Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&headers).unwrap()))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn webhooks_are_signed_posted_once_per_match_and_survive_an_outage() {
    let w = World::new(1);
    let hook = Receiver::start();
    let rule = format!(
        "name = \"cats\"\nquery = \"cat\"\nmin-confidence = 30\nwebhook = \"{}\"\ntopic = \"images.matched.v1\"",
        hook.url()
    );
    let config = write_config(w.tmp.path(), &rule);
    let cfg = config.to_str().unwrap();
    // The receiver is down when the first matches come: they are retried, not lost.
    hook.refuse.store(3, Ordering::SeqCst);
    let summary = w.run(&["--config", cfg, "index", w.photos.to_str().unwrap()]);

    let cats = found(&w, &config, "cat AND NOT dog");
    let cats_at_30: Vec<String> = {
        let v = w.json(&["--config", cfg, "search", "cat", "--min-confidence", "30", "--json"]);
        let mut keys: Vec<String> =
            v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap().into()).collect();
        keys.sort();
        keys
    };
    assert!(!cats_at_30.is_empty() && !cats.is_empty(), "the examples have a cat");
    let mut posted: Vec<String> = hook.posts().iter().map(|(_, b)| b["key"].as_str().unwrap().to_string()).collect();
    posted.sort();
    assert_eq!(posted, cats_at_30, "one post per object the same query finds in the index");
    let said =
        format!("cats: {} matched, 0 no longer · actions: tags 0, untag 0, webhook {0}, topic {0}", posted.len());
    assert!(summary.contains(&said), "{summary}");
    hook.assert_signed();
    for (headers, body) in hook.posts() {
        assert_eq!(headers["x-bucketlens-rule"], "cats");
        assert_eq!(body["rule"], "cats");
        assert_eq!(body["bucket"], "photos");
        assert!(body["version_id"].is_null(), "a folder has no versions: {body}");
        assert!(
            body["labels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["name"] == "Cat" && l["confidence"].as_f64() >= Some(30.0)),
            "{body}"
        );
        let at = body["matched_at"].as_str().unwrap();
        assert!(at.len() == 24 && at.ends_with('Z'), "RFC 3339 with milliseconds: {at}");
    }

    // The topic: one Avro record per match, keyed bucket/key.
    let matched = on_log(&w, "images.matched.v1");
    assert_eq!(matched.len(), cats_at_30.len());
    for (key, value, _) in &matched {
        let m = ImageMatched::from_bytes(value).unwrap();
        assert_eq!(
            (m.kind, m.rule.as_str(), key.as_str()),
            (MatchKind::Matched, "cats", format!("photos/{}", m.key).as_str())
        );
    }
    let status = w.json(&["--config", cfg, "status", "--json"]);
    assert_eq!(status["act"]["matches"]["cats"], cats_at_30.len(), "{status}");
    let group = status["groups"].as_array().unwrap().iter().find(|g| g["group"] == "bucketlens-act").cloned();
    assert_eq!(group.map(|g| g["lag"].clone()), Some(0.into()), "{status}");

    // A replay of the whole label log posts and publishes nothing new.
    let out = w.run(&["--config", cfg, "act", "--from", "earliest", "--until-end"]);
    assert!(out.contains("cats: 0 matched"), "{out}");
    assert_eq!(hook.posts().len(), cats_at_30.len(), "{out}");
    assert_eq!(on_log(&w, "images.matched.v1").len(), cats_at_30.len());

    // Down for longer than the retry budget: the match goes to the dead-letter topic
    // with the reason and the rule, and nothing else waits on it.
    hook.refuse.store(u32::MAX, Ordering::SeqCst);
    std::fs::copy(examples_dir().join("chelsea.png"), w.photos.join("another-cat.png")).unwrap();
    let mut index = w.command(&["--config", cfg, "index", w.photos.to_str().unwrap()]);
    let out = index.env("BUCKETLENS_ACT__WEBHOOK_ATTEMPTS", "2").output().unwrap();
    common::assert_success(&out, &["index"]);
    let dead: Vec<_> = on_log(&w, "images.labeled.dlq.v1");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let header = |name: &str| dead[0].2.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(dead[0].0, "photos/another-cat.png");
    assert_eq!(header("error.code"), "WebhookFailed");
    assert_eq!(header("act.rule"), "cats");
    assert!(
        header("error.message").contains("503") && header("error.message").contains("after 2 attempts"),
        "{}",
        header("error.message")
    );
    assert_eq!(on_log(&w, "images.matched.v1").len(), cats_at_30.len() + 1, "the topic action did not wait on it");

    // Up again: `act --from earliest` does what was dead-lettered, and only that.
    hook.refuse.store(0, Ordering::SeqCst);
    w.run(&["--config", cfg, "act", "--from", "earliest", "--until-end"]);
    let deliveries = hook.deliveries();
    assert_eq!(deliveries.len(), cats_at_30.len() + 1);
    assert!(deliveries.values().all(|n| *n == 1), "no match posted twice: {deliveries:?}");
    assert!(hook.posts().iter().any(|(_, b)| b["key"] == "another-cat.png"));
}

#[test]
fn act_killed_mid_run_resumes_without_posting_a_finished_match_again() {
    let w = World::new(3);
    let hook = Receiver::start();
    let rule = format!("name = \"cats\"\nquery = \"cat\"\nwebhook = \"{}\"", hook.url());
    let labels_only = w.tmp.path().join("none.toml");
    std::fs::write(&labels_only, "").unwrap();
    w.run(&["--config", labels_only.to_str().unwrap(), "index", w.photos.to_str().unwrap()]);
    let config = write_config(w.tmp.path(), &rule);
    let cfg = config.to_str().unwrap();
    let cats = found(&w, &config, "cat");
    assert!(cats.len() >= 3, "a cat in each copy: {cats:?}");

    hook.delay_ms.store(400, Ordering::SeqCst);
    let mut act = w.command(&["--config", cfg, "act"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    common::wait_until("two posts", Duration::from_secs(60), || hook.posts().len() >= 2);
    act.kill().unwrap(); // SIGKILL: no drain, no commit
    act.wait().unwrap();
    let before = hook.deliveries();
    assert!(before.len() < cats.len(), "killed mid-run: {before:?}");

    hook.delay_ms.store(0, Ordering::SeqCst);
    w.run(&["--config", cfg, "act", "--until-end"]);
    let after = hook.deliveries();
    assert_eq!(after.len(), cats.len(), "every match posted: {after:?}");
    // At least once: only a post in flight when the process died (sent, its answer
    // not read) may come again, under the same delivery id for the receiver to drop.
    let again: Vec<_> = after.iter().filter(|(_, n)| **n > 1).collect();
    assert!(again.len() <= 1 && again.iter().all(|(_, n)| **n == 2), "{after:?}");
}

fn tags(moto: &Moto, key: &str) -> BTreeMap<String, String> {
    let out = moto.py(&format!(
        "print(json.dumps({{t['Key']: t['Value'] for t in s3.get_object_tagging(Bucket='pics', Key={key:?})['TagSet']}}))"
    ));
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn s3_tags_are_written_beside_the_objects_own_and_removed_when_it_no_longer_matches() {
    let moto = Moto::start();
    let w = World::new(1);
    moto.create_bucket("pics");
    for name in ["chelsea.png", "rocket.jpg", "coffee.png"] {
        moto.put("pics", name, &std::fs::read(examples_dir().join(name)).unwrap());
    }
    let full: String = (0..10).map(|i| format!("{{'Key': 'k{i}', 'Value': 'v'}}")).collect::<Vec<_>>().join(", ");
    moto.py(&format!(
        "s3.put_object_tagging(Bucket='pics', Key='chelsea.png', Tagging={{'TagSet': [{{'Key': 'owner', 'Value': 'alice'}}]}})\n\
         s3.put_object(Bucket='pics', Key='full.png', Body=open({:?}, 'rb').read())\n\
         s3.put_object_tagging(Bucket='pics', Key='full.png', Tagging={{'TagSet': [{full}]}})",
        examples_dir().join("chelsea.png").to_str().unwrap()
    ));
    let config = write_config(w.tmp.path(), "name = \"cats\"\nquery = \"cat\"\nmin-confidence = 30\ns3-tags = true");
    let cfg = config.to_str().unwrap();
    let index = |w: &World| {
        let mut cmd = w.command(&["--config", cfg, "index", "s3://pics/"]);
        cmd.envs(moto.env());
        let out = cmd.output().unwrap();
        common::assert_success(&out, &["index", "s3://pics/"]);
    };
    index(&w);

    let chelsea = tags(&moto, "chelsea.png");
    assert_eq!(chelsea.get("owner").map(String::as_str), Some("alice"), "the object's own tag is kept: {chelsea:?}");
    assert!(chelsea.get("bucketlens:cats").is_some_and(|v| v.split(" / ").any(|l| l == "Cat")), "{chelsea:?}");
    assert!(tags(&moto, "rocket.jpg").is_empty(), "no cat, no tag");
    // Ten tags already: none of them is lost, ours is not added, and the DLQ says why.
    let full = tags(&moto, "full.png");
    assert_eq!(full.len(), 10);
    assert!(!full.contains_key("bucketlens:cats"));
    let dead = on_log(&w, "images.labeled.dlq.v1");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let message = dead[0].2.iter().find(|(k, _)| k == "error.message").map(|(_, v)| v.clone()).unwrap();
    assert!(dead[0].2.iter().any(|(k, v)| k == "error.code" && v == "TaggingFailed"));
    assert!(message.contains("pics/full.png") && message.contains("S3's limit of 10 per object"), "{message}");

    // chelsea.png replaced by a photo of no cat, carrying our tag as a copy would:
    // once labeled, the tag is removed and the owner's stays.
    moto.py(&format!(
        "s3.put_object(Bucket='pics', Key='chelsea.png', Body=open({:?}, 'rb').read(), Tagging='owner=alice&bucketlens%3Acats=Cat')",
        examples_dir().join("rocket.jpg").to_str().unwrap()
    ));
    assert!(tags(&moto, "chelsea.png").contains_key("bucketlens:cats"));
    // And full.png deleted: its tags went with it; act only stops counting it.
    moto.delete("pics", "full.png");
    index(&w);
    let chelsea = tags(&moto, "chelsea.png");
    assert_eq!(chelsea, BTreeMap::from([("owner".to_string(), "alice".to_string())]));
    let status = w.json(&["--config", cfg, "status", "--json"]);
    assert_eq!(status["act"]["matches"]["cats"], 0, "nothing matches now: {status}");
    assert_eq!(on_log(&w, "images.labeled.dlq.v1").len(), 1, "a deleted object is no tagging failure");
}

#[test]
fn config_check_names_the_rule_whose_query_or_key_is_wrong() {
    let w = World::new(0);
    let config = w.tmp.path().join("rules.toml");
    std::fs::write(
        &config,
        "[[act.rules]]\nname = \"weapons\"\nquery = \"weapon AND (toy\"\ntopic = \"images.matched.v1\"\n\n\
         [[act.rules]]\nname = \"receipts\"\nquery = \"receipt\"\nwebhok = \"https://hooks.example/x\"\n",
    )
    .unwrap();
    let out = w.command(&["--config", config.to_str().unwrap(), "config", "check"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("act.rules[weapons]") && stderr.contains("invalid query"), "{stderr}");
    assert!(stderr.contains("act.rules[receipts] unknown key \"webhok\""), "{stderr}");
    assert!(stderr.contains("act.rules[receipts] does nothing"), "{stderr}");
    // act refuses to start on it, and without rules says what to add.
    let out = w.command(&["--config", config.to_str().unwrap(), "act", "--until-end"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("act.rules[weapons]"));
    let out = w.command(&["act", "--until-end"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("act has no rules: add [[act.rules]]"));
}

#[test]
fn index_watch_runs_the_rules_in_process_on_new_photos() {
    let w = World::new(1);
    let hook = Receiver::start();
    let rule = format!("name = \"cats\"\nquery = \"cat\"\nmin-confidence = 30\nwebhook = \"{}\"", hook.url());
    let config = write_config(w.tmp.path(), &rule);
    let watch = w
        .command(&["--config", config.to_str().unwrap(), "index", w.photos.to_str().unwrap(), "--watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _watch = common::Killed(watch); // killed (by its PID) when the test ends
    common::wait_until("the backfill's cat posted", Duration::from_secs(120), || !hook.posts().is_empty());
    let before = hook.posts().len();
    std::fs::copy(examples_dir().join("chelsea.png"), w.photos.join("new-cat.png")).unwrap();
    common::wait_until("the new cat posted", Duration::from_secs(60), || {
        hook.posts().iter().any(|(_, body)| body["key"] == "new-cat.png")
    });
    assert_eq!(hook.posts().len(), before + 1, "only the new photo is posted");
    hook.assert_signed();
}

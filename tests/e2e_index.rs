//! `bucketlens index` end to end on the embedded pipeline: the real binary, a real
//! folder, the real model.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{docs, example_names, World, BIN};

#[test]
fn indexing_labels_every_image_and_search_finds_the_cat() {
    let w = World::new(1);
    let summary = w.index();
    assert!(summary.contains("found 12 images"), "{summary}");
    assert!(summary.contains("labeled 12 · unchanged 0 · failed 0"), "{summary}");

    let v = w.json(&["search", "cat", "--json"]);
    assert_eq!(v["total"], 1, "{v}");
    let hit = &v["hits"][0];
    assert_eq!(hit["bucket"], "photos");
    assert_eq!(hit["key"], "chelsea.png");
    let labels = hit["labels"].as_array().unwrap();
    let cat = labels.iter().find(|l| l["name"] == "Cat").unwrap();
    assert!(cat["confidence"].as_f64().unwrap() > 80.0, "{cat}");
    for parent in ["Feline", "Mammal", "Animal"] {
        assert!(labels.iter().any(|l| l["name"] == parent), "{parent} missing: {labels:?}");
    }

    let human = w.run(&["search", "cat"]);
    assert!(human.contains("photos/chelsea.png") && human.contains("Cat 9"), "{human}");
}

#[test]
fn indexing_the_same_folder_twice_leaves_one_document_per_image() {
    let w = World::new(1);
    w.index();
    let first = w.all_documents();
    let again = w.index();
    assert!(again.contains("0 new or changed"), "{again}");
    let second = w.all_documents();
    assert_eq!(first, second);
    let keys: Vec<&String> = second.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, example_names().iter().collect::<Vec<_>>());
    assert_eq!(w.status()["documents"], 12);
}

#[test]
fn a_bad_image_among_good_ones_is_listed_with_its_reason_and_the_rest_are_indexed() {
    let w = World::new(1);
    let cat = std::fs::read(w.photos.join("chelsea.png")).unwrap();
    std::fs::write(w.photos.join("truncated.png"), &cat[..cat.len() / 3]).unwrap();
    std::fs::write(w.photos.join("empty.jpg"), b"").unwrap();
    std::fs::write(w.photos.join("notes.jpg"), b"this is a text file named like a photo").unwrap();
    std::fs::write(w.photos.join("readme.txt"), b"not an image at all: skipped").unwrap();

    let summary = w.index();
    assert!(summary.contains("found 15 images"), "{summary}");
    assert!(summary.contains("labeled 12 · unchanged 0 · failed 3"), "{summary}");
    assert!(summary.contains("photos/truncated.png  CorruptImage"), "{summary}");

    let status = w.status();
    assert_eq!(status["documents"], 15, "{status}");
    assert_eq!(status["failed"], 3, "{status}");
    assert_eq!(status["dlq"]["objects.changed.dlq.v1"], 3, "each failure also reaches the dead-letter topic: {status}");

    let failed = w.json(&["search", "--failed", "--json"]);
    assert_eq!(failed["total"], 3);
    let mut reasons: Vec<(String, String)> = failed["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["key"].as_str().unwrap().to_string(), h["error"]["code"].as_str().unwrap().to_string()))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            ("empty.jpg".to_string(), "EmptyObject".to_string()),
            ("notes.jpg".to_string(), "UnsupportedFormat".to_string()),
            ("truncated.png".to_string(), "CorruptImage".to_string()),
        ]
    );
    // The good ones are all searchable.
    assert_eq!(w.json(&["search", "--json", "--limit", "100"])["total"], 12);

    // Fixing the bad file re-labels it.
    std::fs::write(w.photos.join("truncated.png"), &cat).unwrap();
    w.index();
    let v = w.json(&["search", "cat", "--json"]);
    let keys: Vec<&str> = v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"truncated.png") && keys.contains(&"chelsea.png"), "{keys:?}");
    assert_eq!(w.status()["failed"], 2);
}

#[test]
fn search_json_filters_and_boolean_queries() {
    let w = World::new(1);
    w.index();
    let v = w.json(&["search", "dog AND grass", "--min-confidence", "60", "--json"]);
    assert_eq!(v["total"], 0, "no dogs in the examples: {v}");
    assert!(v["hits"].as_array().unwrap().is_empty());

    let v = w.json(&["search", "espresso OR tripod", "--min-confidence", "60", "--json"]);
    let mut keys: Vec<&str> = v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, vec!["camera.png", "coffee.png"]);

    let v = w.json(&["search", "cat", "--min-confidence", "99.9", "--json"]);
    assert_eq!(v["total"], 0, "the bar applies to the cat label itself");
    let v = w.json(&["search", "cat", "--bucket", "elsewhere", "--json"]);
    assert_eq!(v["total"], 0);
    let v = w.json(&["search", "cat", "--prefix", "chel", "--json"]);
    assert_eq!(v["total"], 1);

    let counts = w.json(&["labels", "--json"]);
    assert_eq!(counts["documents"], 12);
    let labels = counts["labels"].as_array().unwrap();
    assert!(labels.iter().any(|l| l["name"] == "Cat" && l["documents"] == 1), "{counts}");

    let out = w.command(&["search", "(cat"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid query"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn replaying_the_label_log_rebuilds_the_same_index_without_the_model() {
    let w = World::new(1);
    w.index();
    let before = w.all_documents();
    let labeler_before = w.status()["groups"][0].clone();

    std::fs::remove_dir_all(w.data.join("index")).unwrap();
    let status = w.status();
    assert_eq!(status["index"]["state"], "missing", "{status}");
    assert_eq!(status["documents"], serde_json::Value::Null, "{status}");
    let out = w.run(&["replay", "--group", "bucketlens-index", "--from", "earliest"]);
    assert!(out.starts_with("indexed 12 label records (12 applied, 0 older than the index held)"), "{out}");
    assert!(!out.contains("changes: labeled"), "an index replay runs no labeler: {out}");

    assert_eq!(w.all_documents(), before, "same documents, same labels");
    assert_eq!(w.status()["groups"][0], labeler_before, "the labeler group did not move: the model did not run");

    // Replaying twice changes nothing.
    w.run(&["replay", "--group", "bucketlens-index", "--from", "earliest"]);
    assert_eq!(w.all_documents(), before);
}

#[test]
fn config_check_names_every_wrong_setting_at_once() {
    let w = World::new(0);
    let out = w.command(&["config", "check"]).output().unwrap();
    common::assert_success(&out, &["config", "check"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration ok"));

    let config = w.tmp.path().join("wrong.toml");
    std::fs::write(&config, "[labeler]\nmax-labels = 0\n\n[listing]\nbatch-size = 0\n").unwrap();
    let out = w
        .command(&["--config", config.to_str().unwrap(), "config", "check"])
        .env("BUCKETLENS_EVENTS__SQS_BATCH", "11")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for wrong in [
        "labeler.max-labels must be at least 1, got 0",
        "listing.batch-size must be at least 1, got 0",
        "events.sqs-batch must be 1 to 10",
    ] {
        assert!(stderr.contains(wrong), "{wrong:?} not named: {stderr}");
    }
    assert!(stderr.contains("3 wrong settings"), "{stderr}");
    // Every other command refuses the same configuration at start-up.
    let out = w.command(&["--config", config.to_str().unwrap(), "status"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("labeler.max-labels must be at least 1"));
}

#[test]
fn a_replay_that_cannot_open_its_index_leaves_the_group_where_it_was() {
    let w = World::new(1);
    w.index();
    let groups_before = w.status()["groups"].clone();
    // An index that cannot be opened: its folder is a file.
    std::fs::remove_dir_all(w.data.join("index")).unwrap();
    std::fs::write(w.data.join("index"), b"not an index").unwrap();
    let out = w.command(&["replay", "--group", "bucketlens-index", "--from", "earliest"]).output().unwrap();
    assert!(!out.status.success(), "the replay ran without an index");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = format!("the index at {} cannot be opened", w.data.join("index").display());
    assert!(stderr.contains(&named), "the error names the index: {stderr}");
    std::fs::remove_file(w.data.join("index")).unwrap();
    assert_eq!(w.status()["groups"], groups_before, "the failed replay moved the group");
}

/// A replay of the labeler group with the same model and settings costs lookups,
/// not labels; changed settings, a new group or `--force` label everything again;
/// a failed image is tried again each time, never counted as unchanged.
#[test]
fn replaying_the_labeler_group_relabels_only_what_its_settings_would_label_differently() {
    let w = World::new(1);
    let cat = std::fs::read(w.photos.join("chelsea.png")).unwrap();
    std::fs::write(w.photos.join("truncated.png"), &cat[..cat.len() / 3]).unwrap();
    let summary = w.index();
    assert!(summary.contains("labeled 12 · unchanged 0 · failed 1"), "{summary}");
    let before = w.all_documents();
    let replay = ["replay", "--group", "bucketlens-labeler", "--from", "earliest"];
    let replay_with = |env: &[(&str, &str)], extra: &[&str]| {
        let args: Vec<&str> = replay.iter().chain(extra).copied().collect();
        let out = w.command(&args).envs(env.iter().copied()).output().unwrap();
        common::assert_success(&out, &args);
        String::from_utf8(out.stdout).unwrap()
    };

    let out = w.run(&replay);
    assert!(out.contains("labeled 0 · unchanged 12 · failed 1"), "{out}");
    assert_eq!(w.all_documents(), before, "nothing changed, nothing lost");
    assert_eq!(w.status()["ledger"]["skipped_unchanged"], 12);

    let out = replay_with(&[], &["--force"]);
    assert!(out.contains("labeled 12 · unchanged 0 · failed 1"), "--force relabels: {out}");

    let stricter = [("BUCKETLENS_LABELER__MIN_CONFIDENCE", "60")];
    let out = replay_with(&stricter, &[]);
    assert!(out.contains("labeled 12 · unchanged 0 · failed 1"), "a changed min-confidence relabels: {out}");
    let out = replay_with(&stricter, &[]);
    assert!(out.contains("labeled 0 · unchanged 12"), "and then those labels are current: {out}");

    // A new labeler group (the model-change recipe) starts from the first record.
    let v2 = [("BUCKETLENS_LABELER__GROUP", "bucketlens-labeler-v2")];
    let out = w.command(&["index", w.photos.to_str().unwrap()]).envs(v2).output().unwrap();
    common::assert_success(&out, &["index", "(group v2)"]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("labeled 12 · unchanged 0 · failed 1"), "a new group relabels everything: {out}");
    let keys = |docs: Vec<(String, Vec<(String, f64)>)>| docs.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys(w.all_documents()), keys(before), "still one document per image");
}

/// A labeler killed mid-run redoes the records it had not committed: those it had
/// labeled are skipped (they are on the label log), so each image is labeled once.
#[test]
fn a_labeler_killed_mid_run_does_not_label_again_what_it_had_labeled() {
    let w = World::new(2);
    let images = 2 * example_names().len();
    w.run(&["produce", "listing", w.photos.to_str().unwrap()]);
    // Nothing is committed before the kill: every record comes back after it.
    let slow = [("BUCKETLENS_LABELER__COMMIT_INTERVAL", "1h"), ("BUCKETLENS_LABELER__CONCURRENCY", "1")];
    let mut label = w.command(&["label"]);
    label.envs(slow).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = common::Killed(label.spawn().unwrap());
    common::wait_until("a few images labeled", std::time::Duration::from_secs(120), || {
        w.status()["ledger"]["labeled"].as_u64().unwrap_or(0) >= 3
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // No sink ran: the index group's lag is every outcome on images.labeled.v1.
    let status = w.status();
    let on_log = status["groups"][1]["lag"].as_u64().unwrap();
    assert!(on_log >= 3 && (on_log as usize) < images, "killed mid-run: {status}");
    assert_eq!(status["groups"][0]["lag"], images, "nothing was committed: {status}");

    let out = w.run(&["replay", "--group", "bucketlens-labeler", "--until-end"]);
    let labeled = images as u64 - on_log;
    assert!(out.contains(&format!("labeled {labeled} · unchanged {on_log} · failed 0")), "{out}");
    let ends: i64 =
        w.status()["groups"][1]["partitions"].as_array().unwrap().iter().map(|p| p["end"].as_i64().unwrap()).sum();
    assert_eq!(ends as usize, images, "one outcome per image on the label log, none twice");
    assert_eq!(w.all_documents().len(), images);
}

#[test]
fn bad_arguments_fail_clearly() {
    let w = World::new(1);
    let refused = |args: &[&str], said: &str| {
        let out = w.command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {said:?} not said: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    };
    refused(&["index", "/definitely/not/here"], "/definitely/not/here is not a folder");
    refused(&["index", "s3://bucket/prefix", "--watch"], "needs --sqs QUEUE_URL");
    refused(&["replay", "--group", "nope", "--from", "earliest"], "unknown group \"nope\"");
    refused(&["replay", "--group", "bucketlens-index", "--from", "yesterday"], "RFC 3339");
}

#[test]
fn the_config_file_and_the_environment_reach_the_stages() {
    let w = World::new(1);
    let config = w.tmp.path().join("bucketlens.toml");
    std::fs::write(&config, "[labeler]\nmin-confidence = 90.0\nmax-labels = 3\n").unwrap();
    let out = w.command(&["--config", config.to_str().unwrap(), "index", w.photos.to_str().unwrap()]).output().unwrap();
    common::assert_success(&out, &["index with --config"]);
    let docs = w.all_documents();
    let cat = &docs.iter().find(|(k, _)| k == "chelsea.png").unwrap().1;
    assert!(!cat.is_empty() && cat.len() <= 3, "{cat:?}");
    assert!(cat.iter().all(|(_, c)| *c >= 90.0), "{cat:?}");

    let out = w.command(&["status"]).env("BUCKETLENS_LABELER__MIN_CONFIDENCE", "500").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("labeler.min-confidence must be between 0 and 100"));
    let out = w.command(&["status"]).env("BUCKETLENS_LOG", "info").env("BUCKETLENS_CONFIG", &config).output().unwrap();
    common::assert_success(&out, &["status with BUCKETLENS_LOG and BUCKETLENS_CONFIG set"]);
    let out = w.command(&["status"]).env("BUCKETLENS_LOG__PARTITIONZ", "3").output().unwrap();
    assert!(!out.status.success(), "unknown settings are refused, not ignored");
}

#[test]
fn searching_an_index_that_does_not_exist_says_so_and_fails() {
    let w = World::new(1);
    let status = w.status();
    assert_eq!(status["index"]["state"], "missing", "{status}");
    for args in [&["search", "cat"][..], &["labels"][..]] {
        let out = w.command(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded on no index");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let location = w.data.join("index");
        assert!(stderr.contains("does not exist") && stderr.contains(location.to_str().unwrap()), "{stderr}");
    }
    let human = w.run(&["status"]);
    assert!(human.contains("does not exist yet"), "{human}");
    assert_eq!(w.status()["index"]["state"], "missing", "status created nothing");
    w.index();
    assert_eq!(w.status()["index"]["state"], "present");
}

/// `bucketlens status | head -1`: a reader that goes away ends the output quietly.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let w = World::new(1);
    w.index();
    for args in [&["status"][..], &["search", "*", "--json"], &["search", "*"]] {
        // The reading end is closed before the process starts: nothing it writes can land.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let child = w.command(args).stdout(writer).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

/// A Lambda SQS event document saved from an existing set-up, with one record that
/// is not an S3 notification: the good records are produced, the document goes to
/// the DLQ naming the bad record, and the summary counts it.
#[test]
fn a_saved_lambda_event_document_produces_its_good_records_and_dead_letters_the_bad_one() {
    let w = World::new(0);
    let s3 = |key: &str| {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-24T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
                   "object": {"key": key, "size": 1, "eTag": "x", "sequencer": "0A"}}
        }]})
        .to_string()
    };
    let sns = serde_json::json!({"Type": "Notification", "Message": s3("via-sns.jpg")}).to_string();
    let document = serde_json::json!({"Records": [
        {"messageId": "1", "eventSource": "aws:sqs", "body": s3("direct.jpg")},
        {"messageId": "2", "eventSource": "aws:sqs", "body": "{\"hello\": \"not an S3 event\"}"},
        {"messageId": "3", "eventSource": "aws:sqs", "body": sns}
    ]});
    let file = w.tmp.path().join("lambda-event.json");
    std::fs::write(&file, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let args = ["produce", "events", "--from-file", file.to_str().unwrap()];
    let out = w.command(&args).output().unwrap();
    common::assert_success(&out, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("produced 2 upserts and 0 deletes; skipped 0; 1 malformed"), "{stderr}");
    assert!(stderr.contains("record 1: not an S3 event notification"), "the bad record is named: {stderr}");
    let status = w.status();
    assert_eq!(status["dlq"]["notifications.dlq.v1"], 1, "{status}");
    assert_eq!(status["groups"][0]["lag"], 2, "two changes on objects.changed.v1: {status}");
}

/// `command`, run without root's power to read what its permissions forbid (as the
/// non-root user the permission cases are about): root keeps its uid but loses
/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
fn unprivileged(command: std::process::Command) -> std::process::Command {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return command;
    }
    let mut wrapped = std::process::Command::new("setpriv");
    wrapped.arg("--bounding-set=-dac_override,-dac_read_search").arg("--").arg(command.get_program());
    wrapped.args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// A folder that cannot be listed is unknown, not empty: its documents stay, the
/// summary says so, and once it is readable again nothing was lost or redone.
#[test]
fn an_unreadable_folder_keeps_its_documents() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(1);
    let sub = w.photos.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for name in ["chelsea.png", "coffee.png"] {
        std::fs::copy(w.photos.join(name), sub.join(name)).unwrap();
    }
    let index = || {
        let args = ["index", w.photos.to_str().unwrap()];
        let out = unprivileged(w.command(&args)).output().unwrap();
        common::assert_success(&out, &args);
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (out, _) = index();
    assert!(out.contains("labeled 14"), "{out}");

    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (out, err) = index();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(out.contains("0 deleted"), "{out}");
    assert!(out.contains("1 file or folder could not be read"), "{out}");
    assert!(err.contains("sub") && err.contains("cannot list folder"), "the folder is named: {err}");
    assert_eq!(w.status()["documents"], 14, "the unreadable folder's documents are kept");

    let (out, _) = index();
    assert!(out.contains("0 new or changed, 0 deleted"), "{out}");
    assert_eq!(w.all_documents().len(), 14);
}

/// A file whose name is not valid UTF-8 cannot be an object key: it is named (lossily)
/// and counted, never dropped without a word.
#[test]
fn a_file_name_that_is_not_utf8_is_reported_as_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let w = World::new(1);
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9 latin-1.jpg");
    std::fs::copy(w.photos.join("chelsea.png"), w.photos.join(name)).unwrap();
    let args = ["index", w.photos.to_str().unwrap()];
    let out = w.command(&args).output().unwrap();
    common::assert_success(&out, &args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("found 12 images"), "{stdout}");
    assert!(stdout.contains("1 file skipped: its name is not valid UTF-8"), "{stdout}");
    assert!(stderr.contains("caf\u{FFFD} latin-1.jpg"), "the file is named: {stderr}");
}

/// A symbolic link in the folder is not followed (the object source never reads
/// through one), but it is named and counted: a folder of linked photos does not just
/// look empty.
#[test]
fn symbolic_links_are_reported_as_skipped() {
    let w = World::new(1);
    let elsewhere = w.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(w.photos.join("chelsea.png"), elsewhere.join("cat.png")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("cat.png"), w.photos.join("linked cat.png")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, w.photos.join("linked album")).unwrap();
    let args = ["index", w.photos.to_str().unwrap()];
    let out = w.command(&args).output().unwrap();
    common::assert_success(&out, &args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("found 12 images") && stdout.contains("failed 0"), "{stdout}");
    assert!(stdout.contains("2 symbolic links skipped: bucketlens reads only the files in the folder"), "{stdout}");
    assert!(stderr.contains("linked cat.png") && stderr.contains("linked album"), "each is named: {stderr}");
}

/// What `full_disk_then_freed` runs in a mount namespace of its own: the data dir is a
/// small tmpfs for a first `index`, then the same tmpfs made larger for a second one,
/// then `status --json`; the outputs go beside the data dir.
const FULL_DISK_SCRIPT: &str = r#"
data=$1; out=$2; bin=$3; photos=$4
mount -t tmpfs -o size=3m bucketlens-full "$data" || exit 90
"$bin" --data-dir "$data" index "$photos" >"$out/full.out" 2>"$out/full.err"; echo $? >"$out/full.rc"
mount -o remount,size=512m "$data" || exit 91
"$bin" --data-dir "$data" index "$photos" >"$out/freed.out" 2>"$out/freed.err"; echo $? >"$out/freed.rc"
"$bin" --data-dir "$data" status --json >"$out/status.json" 2>"$out/status.err"
"#;

/// A disk that fills up mid-run stops the run with an error that says so and what to
/// do; once there is room, the same command finishes the job and nothing is lost or
/// failed. The full disk is a 3 MiB tmpfs in a user and mount namespace of the test's
/// own (`unshare`, util-linux), so no root and no real disk is needed.
#[test]
fn a_full_disk_stops_the_run_with_a_clear_error_and_a_rerun_with_room_loses_nothing() {
    let w = World::new(20);
    std::fs::create_dir_all(&w.data).unwrap();
    let out = w.tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    w.in_mount_namespace(FULL_DISK_SCRIPT, &[w.data.as_os_str(), out.as_os_str(), BIN.as_ref(), w.photos.as_os_str()]);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    assert_ne!(read("full.rc").trim(), "0", "the 3 MiB data dir did not fill up: {}", read("full.out"));
    let err = read("full.err");
    println!("on the full disk: {}", err.lines().last().unwrap_or_default());
    println!("with room: {}", read("freed.out").lines().last().unwrap_or_default());
    assert!(
        err.contains("the disk is full: free space where the data dir is, then run again"),
        "the error says the disk is full and what to do: {err}"
    );
    assert_eq!(read("freed.rc").trim(), "0", "{}\n{}", read("freed.out"), read("freed.err"));
    let status: serde_json::Value = serde_json::from_str(&read("status.json")).unwrap();
    assert_eq!(status["documents"], 240, "every image is indexed: {status}");
    assert_eq!(status["failed"], 0, "none failed for the full disk: {status}");
    let lag: Vec<&serde_json::Value> = status["groups"].as_array().unwrap().iter().map(|g| &g["lag"]).collect();
    assert!(lag.iter().all(|l| **l == 0), "nothing is left behind: {status}");
}

/// A permission failure is cured outside bucketlens: `relabel --failed` then labels
/// what failed, and only that.
#[test]
fn relabel_failed_labels_what_failed_once_the_cause_is_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(1);
    let cat = w.photos.join("chelsea.png");
    std::fs::set_permissions(&cat, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = |args: &[&str]| {
        let out = unprivileged(w.command(args)).output().unwrap();
        common::assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&["index", w.photos.to_str().unwrap()]);
    assert!(out.contains("labeled 11 · unchanged 0 · failed 1"), "{out}");
    let failed = w.json(&["search", "--failed", "--json"]);
    assert_eq!(failed["hits"][0]["error"]["code"], "AccessDenied", "{failed}");
    let message = failed["hits"][0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("then run `bucketlens relabel --failed`"), "the failure says what retries it: {message}");

    std::fs::set_permissions(&cat, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["relabel", "--failed", "--code", "CorruptImage"]);
    assert!(out.contains("relabeled 0 failed objects"), "another code selects nothing: {out}");
    let out = run(&["relabel", "--failed"]);
    assert!(out.contains("relabeled 1 failed object: labeled 1 · failed 0"), "{out}");
    let status = w.status();
    assert_eq!((status["labeled"].as_u64(), status["failed"].as_u64()), (Some(12), Some(0)), "{status}");
    let hits = w.json(&["search", "cat", "--json"]);
    assert_eq!(hits["hits"][0]["key"], "chelsea.png", "{hits}");
}

/// `--force` labels every image again, and so does the next run after a setting that
/// changes labels, on a folder where nothing changed; the run after that labels
/// nothing.
#[test]
fn force_and_changed_labeler_settings_relabel_an_unchanged_folder() {
    let w = World::new(1);
    let folder = w.photos.to_str().unwrap();
    assert!(w.run(&["index", folder]).contains("labeled 12 ·"));
    let forced = w.run(&["index", folder, "--force"]);
    assert!(forced.contains("labeled 12 · unchanged 0"), "{forced}");
    let mut changed = w.command(&["index", folder]);
    let out = changed.env("BUCKETLENS_LABELER__MIN_CONFIDENCE", "20").output().unwrap();
    common::assert_success(&out, &["index", folder]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("labeled 12 · unchanged 0"), "{stdout}");
    assert!(stderr.contains("the labeler's model or settings changed"), "{stderr}");
    let hits = w.json(&["search", "*", "--json", "--limit", "100"]);
    let confidences = hits["hits"].as_array().unwrap().iter().flat_map(|h| h["labels"].as_array().unwrap().clone());
    assert!(
        confidences.map(|l| l["confidence"].as_f64().unwrap()).any(|c| c < 50.0),
        "labels between 20 and 50 are in the index now: {hits}"
    );
    let mut again = w.command(&["index", folder]);
    let out = again.env("BUCKETLENS_LABELER__MIN_CONFIDENCE", "20").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("labeled 0 ·"), "{out:?}");
}

/// Two folders with the same name (`~/Pictures`, `/media/usb/Pictures`) are two
/// buckets or none: the second is refused with what to do, and never deletes the
/// first one's documents; named with `--bucket`, both are indexed.
#[test]
fn two_folders_of_one_name_never_share_a_bucket() {
    let w = World::new(1);
    let other = w.tmp.path().join("usb/photos");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(w.photos.join("camera.png"), other.join("chelsea.png")).unwrap();
    w.run(&["index", w.photos.to_str().unwrap()]);
    let out = w.command(&["index", other.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("which is already the folder") && stderr.contains("--bucket NAME"), "{stderr}");
    assert_eq!(w.status()["documents"], 12, "nothing deleted");
    let out = w.run(&["index", other.to_str().unwrap(), "--bucket", "usb-photos"]);
    assert!(out.contains("(bucket usb-photos): 1 new or changed, 0 deleted"), "{out}");
    assert_eq!(w.status()["documents"], 13);
    let cats = w.json(&["search", "cat", "--json"]);
    assert_eq!(cats["hits"].as_array().unwrap().len(), 1, "{cats}");
    assert_eq!(
        (cats["hits"][0]["bucket"].as_str(), cats["hits"][0]["key"].as_str()),
        (Some("photos"), Some("chelsea.png"))
    );
    // Each run leaves the other alone.
    assert!(w.run(&["index", w.photos.to_str().unwrap()]).contains("0 new or changed, 0 deleted"));
    assert!(w
        .run(&["index", other.to_str().unwrap(), "--bucket", "usb-photos"])
        .contains("0 new or changed, 0 deleted"));
}

/// A folder found empty, as an unmounted drive's mount point looks, keeps its
/// documents and says how to remove them; `--allow-empty` removes them. A folder
/// that is not there keeps them too.
#[test]
fn an_emptied_folder_keeps_its_documents_unless_told() {
    let w = World::new(1);
    let folder = w.photos.to_str().unwrap();
    w.run(&["index", folder]);
    for name in example_names() {
        std::fs::remove_file(w.photos.join(name)).unwrap();
    }
    let out = w.command(&["index", folder]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the folder is empty, though 12 images were indexed from it"), "{stderr}");
    assert!(stderr.contains("--allow-empty"), "{stderr}");
    assert_eq!(w.status()["documents"], 12);
    let out = w.run(&["index", folder, "--allow-empty"]);
    assert!(out.contains("0 new or changed, 12 deleted"), "{out}");
    assert_eq!(w.status()["documents"], 0);
}

/// NAS system folders and partial downloads are not indexed, by default and as
/// configured.
#[test]
fn excluded_folders_and_files_are_not_indexed() {
    let w = World::new(1);
    let thumbs = w.photos.join("@eaDir/chelsea.png");
    std::fs::create_dir_all(&thumbs).unwrap();
    for size in ["S", "M", "B", "XL"] {
        std::fs::copy(w.photos.join("chelsea.png"), thumbs.join(format!("SYNOPHOTO_THUMB_{size}.jpg"))).unwrap();
    }
    std::fs::create_dir_all(w.photos.join("#recycle")).unwrap();
    std::fs::copy(w.photos.join("chelsea.png"), w.photos.join("#recycle/old.png")).unwrap();
    std::fs::copy(w.photos.join("chelsea.png"), w.photos.join("new.jpg.crdownload")).unwrap();
    std::fs::create_dir_all(w.photos.join("raw/2024")).unwrap();
    std::fs::copy(w.photos.join("chelsea.png"), w.photos.join("raw/2024/a.png")).unwrap();
    let out = w.run(&["index", w.photos.to_str().unwrap()]);
    assert!(out.contains("found 13 images"), "only raw/2024/a.png is added: {out}");
    let config = w.tmp.path().join("exclude.toml");
    std::fs::write(&config, "[listing]\nexclude = [\"@eaDir\", \"raw/*\"]\n").unwrap();
    let mut configured = w.command(&["--config", config.to_str().unwrap(), "index", w.photos.to_str().unwrap()]);
    let out = configured.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("found 14 images") && stdout.contains("2 new or changed, 1 deleted"), "{stdout}");
    let cats = w.json(&["search", "cat", "--json"]);
    let mut keys: Vec<&str> = cats["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["#recycle/old.png", "chelsea.png", "new.jpg.crdownload"], "{cats}");
}

/// A file name with a line break and an ESC sequence in it cannot print a line of
/// its own or reach the terminal raw: text output escapes control characters.
#[test]
fn control_characters_in_names_are_escaped_in_text_output() {
    let w = World::new(1);
    let spoof = "spoof.jpg\n    Dog 99.0 · Fake Label 99.0";
    std::fs::copy(w.photos.join("chelsea.png"), w.photos.join(spoof)).unwrap();
    std::fs::write(w.photos.join("bad\x1b[2J.jpg"), b"not a jpeg").unwrap();
    let out = w.command(&["index", w.photos.to_str().unwrap()]).output().unwrap();
    common::assert_success(&out, &["index"]);
    let search = w.command(&["search", "cat"]).output().unwrap();
    let labels = w.command(&["labels"]).output().unwrap();
    for (what, bytes) in
        [("index", &out.stdout), ("index's log", &out.stderr), ("search", &search.stdout), ("labels", &labels.stdout)]
    {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains('\x1b'), "{what} prints an ESC: {text:?}");
        assert!(!text.lines().any(|l| l.starts_with("    Dog 99.0")), "{what} prints the spoofed line: {text}");
    }
    let search = String::from_utf8_lossy(&search.stdout);
    assert!(search.contains("photos/spoof.jpg\\n    Dog 99.0 · Fake Label 99.0"), "{search}");
    let index = String::from_utf8_lossy(&out.stdout);
    assert!(index.contains("photos/bad\\x1b[2J.jpg"), "{index}");
    let json = w.json(&["search", "cat", "--json"]);
    assert!(json["hits"].as_array().unwrap().iter().any(|h| h["key"] == spoof), "JSON keeps the key as it is: {json}");
}

/// A closed stderr (a log pipe whose reader is gone) ends nothing: the run finishes
/// and prints its summary.
#[test]
fn a_closed_stderr_does_not_stop_the_run() {
    let w = World::new(1);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = w.command(&["index", w.photos.to_str().unwrap()]).stderr(writer).output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("labeled 12 ·"), "{out:?}");
}

/// `plan` on a folder: every file counted, the images to label, the local rate
/// measured on a sample of them; after `index`, nothing is left to label. Nothing is
/// labeled by the plan itself.
#[test]
fn plan_on_a_folder_counts_what_index_would_label_and_nothing_after_it() {
    let w = World::new(1);
    std::fs::write(w.photos.join("notes.txt"), "not a photo").unwrap();
    std::fs::create_dir_all(w.photos.join("trip")).unwrap();
    std::fs::copy(w.photos.join("chelsea.png"), w.photos.join("trip/cat again.png")).unwrap();
    let photos = w.photos.to_str().unwrap();
    let p = w.json(&["plan", photos, "--json"]);
    let images = example_names().len() as u64 + 1;
    assert_eq!((p["objects"].as_u64(), p["images"].as_u64()), (Some(images + 1), Some(images)), "{p}");
    assert_eq!(
        (p["already_labeled"].as_u64(), p["to_label"].as_u64(), p["archived"].as_u64()),
        (Some(0), Some(images), Some(0))
    );
    let local = &p["estimates"]["local"];
    assert!(local["images_per_second"].as_f64().unwrap() > 0.0, "{p}");
    assert!(local["rate"].as_str().unwrap().contains("measured here on 8 of the images to label"), "{p}");
    // A folder costs no S3 request.
    assert_eq!(p["estimates"]["s3"]["usd"].as_f64(), Some(0.0), "{p}");
    assert!(!w.data.join("index").exists() && !w.data.join("log.sqlite").exists(), "the plan labeled something");

    let summary = w.index();
    assert!(summary.contains(&format!("labeled {images} · unchanged 0 · failed 0")), "{summary}");
    let p = w.json(&["plan", photos, "--json"]);
    assert_eq!((p["already_labeled"].as_u64(), p["to_label"].as_u64()), (Some(images), Some(0)), "{p}");
    assert!(p["estimates"]["local"]["rate"].as_str().unwrap().contains("nothing to label"), "{p}");
}

/// A budget: `--max-images 5` labels five images and stops, saying so; what it left
/// stays on the log, and the next run goes on with it, relabeling nothing, until all
/// are labeled. `status` says whether the last run stopped at its budget.
#[test]
fn a_budget_stops_labeling_and_the_next_run_goes_on_without_relabeling() {
    let w = World::new(1);
    let photos = w.photos.to_str().unwrap();
    let images = example_names().len();
    let labeled = |out: &str| -> usize {
        let rest = out.split("labeled ").nth(1).unwrap_or_else(|| panic!("{out}"));
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    let out = w.run(&["index", photos, "--max-images", "5"]);
    assert_eq!(labeled(&out), 5, "{out}");
    assert!(out.contains("budget of 5 images spent: the rest stay on the log"), "{out}");
    assert_eq!(w.json(&["search", "--json"])["total"], 5);
    let status = w.json(&["status", "--json"]);
    assert_eq!(status["ledger"]["budget_spent"], 5, "{status}");
    let text = w.run(&["status"]);
    assert!(text.contains("stopped at its budget of 5 images"), "{text}");

    let out = w.run(&["index", photos, "--max-images", "5"]);
    assert_eq!(labeled(&out), 5, "{out}");
    assert_eq!(w.json(&["search", "--json"])["total"], 10);
    // No budget: the rest, and nothing labeled twice.
    let out = w.run(&["index", photos]);
    assert_eq!(labeled(&out), images - 10, "{out}");
    assert!(!out.contains("budget"), "{out}");
    assert_eq!(w.json(&["search", "--json"])["total"].as_u64(), Some(images as u64));
    assert_eq!(w.json(&["status", "--json"])["ledger"]["budget_spent"], serde_json::Value::Null);
    let config = w.tmp.path().join("zero.toml");
    std::fs::write(&config, "[labeler]\nbudget = 0\n").unwrap();
    let out = w.command(&["config", "check"]).arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("labeler.budget must be at least 1 image"));
}

/// What bash completes for `words` (the last one being typed), with the script
/// `bucketlens completions bash` prints loaded as a user's shell loads it.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
    let program = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE=\"{}\"; COMP_POINT=${{#COMP_LINE}}; \
         _bucketlens bucketlens '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash").arg("-c").arg(program).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn the_completions_and_the_man_pages_come_from_the_commands_themselves() {
    let w = World::new(0);
    for shell in ["bash", "zsh", "fish"] {
        let script = w.tmp.path().join(format!("bucketlens.{shell}"));
        std::fs::write(&script, w.run(&["completions", shell])).unwrap();
        // Each shell reads its script without a syntax error.
        let check = match shell {
            "fish" => Command::new("fish").arg("--no-execute").arg(&script).output().unwrap(),
            other => Command::new(other).arg("-n").arg(&script).output().unwrap(),
        };
        assert!(check.status.success(), "{shell}: {}", String::from_utf8_lossy(&check.stderr));
    }
    let bash = w.tmp.path().join("bucketlens.bash");
    assert_eq!(bash_completes(&bash, &["bucketlens", "ac"]), ["act"]);
    assert!(bash_completes(&bash, &["bucketlens", "search", "--min"]).contains(&"--min-confidence".to_string()));
    assert!(bash_completes(&bash, &["bucketlens", "act", "--"]).contains(&"--until-end".to_string()));
    let out = w.command(&["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("possible values"));

    // The man page renders without a warning from groff, and names every command;
    // --dir writes one page per command too.
    let page = w.tmp.path().join("bucketlens.1");
    std::fs::write(&page, w.run(&["man"])).unwrap();
    let rendered = Command::new("groff").args(["-k", "-man", "-Tutf8", "-ww", "-z"]).arg(&page).output().unwrap();
    assert!(rendered.status.success() && rendered.stderr.is_empty(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let text = Command::new("groff").args(["-k", "-man", "-Tutf8"]).arg(&page).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).replace("\u{8}", "");
    for command in ["index", "search", "act", "plan", "serve", "status", "completions", "man"] {
        assert!(text.contains(&format!("bucketlens-{command}(1)")), "{command} not in the page");
    }
    let dir = w.tmp.path().join("man");
    w.run(&["man", "--dir", dir.to_str().unwrap()]);
    let act = std::fs::read_to_string(dir.join("bucketlens-act.1")).unwrap();
    assert!(act.contains("until\\-end") && act.contains("Standing queries"), "{act}");
}

/// The `Examples:` lines of `bucketlens COMMAND --help`.
fn help_examples(w: &World, command: &str) -> Vec<String> {
    let help = w.run(&[command, "--help"]);
    let at = help.find("\nExamples:\n").unwrap_or_else(|| panic!("`{command} --help` shows no example:\n{help}"));
    let examples: Vec<String> =
        help[at..].lines().skip(2).take_while(|l| l.starts_with("  ")).map(|l| l.trim().to_string()).collect();
    assert!(!examples.is_empty(), "`{command} --help` shows no example");
    examples
}

#[test]
fn every_command_shows_examples_in_its_help_and_each_one_parses() {
    let w = World::new(0);
    let top = w.run(&["--help"]);
    let commands: Vec<String> = top
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 16 && commands.contains(&"act".to_string()), "{commands:?}");
    let mut checked = 0;
    for command in &commands {
        for example in help_examples(&w, command) {
            // The bucketlens command of the shell line: inside `<( )`, before a pipe or
            // a redirection; `NAME=value` words in front are its environment.
            let inner = example.split_once("<(").map_or(example.as_str(), |(_, rest)| rest.trim_end_matches(')'));
            let line = inner.split(['|', '>']).next().unwrap().trim();
            let words = Command::new("bash")
                .args(["-c", "eval \"set -- $1\"; printf '%s\\0' \"$@\"", "_", line])
                .output()
                .unwrap();
            let words: Vec<String> = String::from_utf8(words.stdout)
                .unwrap()
                .split('\0')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            let at = words.iter().position(|w| w == "bucketlens").unwrap_or_else(|| panic!("{example}"));
            let mut check = w.command(&["config", "check", "--"]);
            check.args(&words[at + 1..]);
            for assignment in &words[..at] {
                let (name, value) = assignment.split_once('=').unwrap();
                check.env(name, value);
            }
            let out = check.output().unwrap();
            assert!(
                out.status.success(),
                "`{command} --help` shows `{example}`, which does not parse: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                words[at + 1..].iter().find(|w| !w.starts_with('-') && !w.ends_with(".toml")),
                Some(command),
                "{example}"
            );
            checked += 1;
        }
    }
    assert!(checked >= commands.len() + 20, "{checked} examples");
}

#[test]
fn every_command_and_configuration_the_readme_and_the_guide_show_parses() {
    let w = World::new(0);
    let mut parsed = 0;
    let mut wrong: Vec<String> = Vec::new();
    for page in docs::pages() {
        for block in docs::fenced(&page) {
            if block.lang == "sh" && !docs::TAGS.contains(&block.tag.as_str()) {
                wrong.push(format!(
                    "{}: a sh block tagged {:?}, which no test runs (tags: {:?})",
                    block.page,
                    block.tag,
                    docs::TAGS
                ));
            }
            // (A console block's commands are run and what they print compared, below.)
            if block.lang != "sh" {
                continue;
            }
            for (env, args) in block.body.lines().filter_map(docs::documented_command) {
                let mut check = w.command(&["config", "check", "--"]);
                check.args(&args).envs(env.iter().map(|(k, v)| (k, v)));
                let out = check.output().unwrap();
                if !out.status.success() {
                    let why = String::from_utf8_lossy(&out.stderr).lines().nth(1).unwrap_or_default().to_string();
                    wrong.push(format!("{}: `bucketlens {}`: {why}", block.page, args.join(" ")));
                }
                parsed += 1;
            }
        }
    }
    // Every configuration the pages show is one the binary accepts as it is.
    for (i, block) in docs::pages().iter().flat_map(|p| docs::fenced(p)).filter(|b| b.lang == "toml").enumerate() {
        let file = w.tmp.path().join(format!("shown-{i}.toml"));
        std::fs::write(&file, &block.body).unwrap();
        let out = w.command(&["--config", file.to_str().unwrap(), "config", "check"]).output().unwrap();
        if !out.status.success() {
            wrong.push(format!(
                "{}: the configuration\n{}is refused: {}",
                block.page,
                block.body,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        parsed += 1;
    }
    assert!(wrong.is_empty(), "documented commands or configurations the binary refuses:\n{}", wrong.join("\n"));
    assert!(parsed >= 40, "{parsed} documented commands and configurations");
}

/// A data dir with the example photos indexed, as the README's first command leaves
/// it and the pages assume.
fn indexed_examples(w: &World, name: &str) -> std::path::PathBuf {
    let data = w.tmp.path().join(name);
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .arg("index")
        .arg(common::examples_dir())
        .env_remove("BUCKETLENS_CONFIG")
        .env_remove("BUCKETLENS_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    data
}

/// Runs each `$ ` line of a console block and compares what it prints (stdout and
/// stderr, as a terminal shows them) with what the block shows under it.
fn console_shows(shell: &docs::Shell, block: &docs::Block) -> usize {
    let mut shown = 0;
    for session in block.body.split("$ ").filter(|s| !s.is_empty()) {
        let (line, expected) = session.split_once('\n').unwrap();
        let out = shell.output(&format!("{{ {line}; }} 2>&1"));
        docs::assert_shows(&String::from_utf8_lossy(&out.stdout), expected, &format!("{}: `{line}`", block.page));
        shown += 1;
    }
    shown
}

/// The README's tour and every `sh` and `console` block of the README and the guide
/// that needs no server, run as a user runs them: in a shell, from the repository,
/// with the binary on `PATH` and a `$HOME` whose `Pictures/` (and `usb/Pictures/`)
/// hold the example photos. What a console block shows is compared with what its
/// commands print. Commands that run until stopped (`--watch`, `serve`) must say they
/// are ready, then stop cleanly on SIGTERM.
#[test]
fn every_command_the_readme_and_the_guide_show_runs_and_prints_what_they_show() {
    let w = World::new(0);
    let home = w.tmp.path().join("home");
    for folder in ["Pictures", "usb/Pictures"] {
        let to = home.join(folder);
        std::fs::create_dir_all(&to).unwrap();
        for name in example_names() {
            std::fs::copy(common::examples_dir().join(&name), to.join(&name)).unwrap();
        }
    }
    let listen = format!("127.0.0.1:{}", common::free_port());
    let shell_for = |data: &std::path::Path| {
        let mut shell = docs::Shell::new(home.clone(), docs::root(), w.tmp.path().join("logs"));
        shell.env.push(("BUCKETLENS_DATA_DIR".into(), data.display().to_string()));
        shell.env.push(("BUCKETLENS_SERVE__LISTEN".into(), listen.clone()));
        // ONNX Runtime where scripts/test installed it (under the real $HOME).
        if let Some(library) = std::env::var_os("ONNXRUNTIME_LIBRARY") {
            shell.env.push(("BUCKETLENS_LABELER__ONNXRUNTIME".into(), library.to_string_lossy().into_owned()));
        }
        shell
    };
    let (mut ran, mut compared) = (0, 0);
    for page in docs::pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        for (i, block) in docs::fenced(&page).into_iter().enumerate() {
            let tour = name == "README.md" && block.lang == "console";
            if block.lang == "console" {
                // A console block starts from nothing, but the README's tour, which
                // starts where the README's first command left off.
                let data = if tour {
                    indexed_examples(&w, &format!("{name}-{i}"))
                } else {
                    w.tmp.path().join(format!("{name}-{i}"))
                };
                compared += console_shows(&shell_for(&data), &block);
            } else if block.lang == "sh" && block.tag.is_empty() {
                let shell = shell_for(&indexed_examples(&w, &format!("{name}-{i}")));
                ran += shell.run_block(&block, false, |_, _| {}, |printed| printed.contains("Ctrl-C"));
            }
        }
    }
    // Every `$ ` line of every console block was run and compared (and the README's
    // tour has three at least).
    let shown: usize = docs::pages()
        .iter()
        .flat_map(|page| docs::fenced(page))
        .filter(|block| block.lang == "console")
        .map(|block| block.body.lines().filter(|line| line.starts_with("$ ")).count())
        .sum();
    assert!(compared == shown && compared >= 3, "{compared} of {shown} console commands compared");
    assert!(ran >= 20, "{ran} commands run");
}

/// The configuration reference of docs/configuration.md is what
/// `scripts/config-reference` writes from the example file (which another test holds
/// equal to the defaults), and every environment variable it names sets a key the
/// binary knows: an unknown one is refused (`deny_unknown_fields`).
#[test]
fn the_configuration_reference_is_the_example_files_and_every_variable_it_names_is_known() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3").arg(root.join("scripts/config-reference")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let page = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let start = "<!-- the table below is scripts/config-reference's output -->\n";
    let end = "<!-- end of scripts/config-reference's output -->";
    let shown = page.split(start).nth(1).and_then(|rest| rest.split(end).next()).expect("the page's generated table");
    assert_eq!(shown, table, "docs/configuration.md is stale: run scripts/config-reference and paste its output");
    let w = World::new(0);
    let mut set = 0;
    for row in table.lines().skip(2) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let (default, variable) = (cells[1].trim_matches('`'), cells[2].trim_matches('`'));
        if default == "see the example file" || default == "[]" || default == "{}" {
            continue;
        }
        let value = default.strip_prefix('"').and_then(|d| d.strip_suffix('"')).unwrap_or(default);
        let out = w.command(&["config", "check"]).env(variable, value).output().unwrap();
        assert!(out.status.success(), "{variable}={value}: {}", String::from_utf8_lossy(&out.stderr));
        set += 1;
    }
    assert!(set >= 60, "{set} variables set");
    // A variable the reference does not name is refused, so the check above checks.
    let out = w.command(&["config", "check"]).env("BUCKETLENS_LABELER__MIN_CONFIDENCY", "50").output().unwrap();
    assert!(!out.status.success(), "an unknown variable was accepted");
}

/// The anchors of a Markdown page's headings, as a code host makes them: lower case,
/// punctuation dropped, spaces as `-`, a repeated one numbered (`-1`, `-2`).
fn anchors(text: &str) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut anchors = std::collections::HashSet::new();
    let mut fence = false;
    for line in text.lines() {
        fence ^= line.starts_with("```");
        let Some(heading) = line.strip_prefix('#').filter(|_| !fence) else { continue };
        let heading = heading.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    anchors
}

/// The link targets of a Markdown page outside code: `[text](target)`, and the `src`
/// and `href` of its HTML.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        fence ^= line.starts_with("```");
        if fence || line.starts_with("```") {
            continue;
        }
        // Inline code is not a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (i, _) in prose.match_indices("](") {
            if let Some(end) = prose[i + 2..].find(')') {
                targets.push(prose[i + 2..i + 2 + end].split_whitespace().next().unwrap_or_default().to_string());
            }
        }
        for attribute in ["src=\"", "href=\""] {
            for (i, _) in prose.match_indices(attribute) {
                let rest = &prose[i + attribute.len()..];
                targets.push(rest[..rest.find('"').unwrap_or(rest.len())].to_string());
            }
        }
    }
    targets
}

/// Every relative link of the README and the guide names a file of the repository,
/// and every anchor (`page.md#section`, `#section`) a heading of its page.
#[test]
fn every_relative_link_and_anchor_of_the_readme_and_the_guide_resolves() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in docs::pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').map_or((target.as_str(), None), |(p, a)| (p, Some(a)));
            let file = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(path) };
            if !file.exists() {
                broken.push(format!("{name}: {target}: no such file"));
            } else if let Some(anchor) = anchor {
                let headings = anchors(&std::fs::read_to_string(&file).unwrap_or_default());
                if !headings.contains(anchor) {
                    broken.push(format!("{name}: {target}: no heading with that anchor"));
                }
            }
            checked += 1;
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 40, "{checked} links");
}

/// Whether a text names a date (`2026-12-04`).
fn has_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(10).any(|w| {
        w.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
            && w[0] == b'2'
    })
}

/// Whether a text gives a measured figure: a rate after a number, a percentile, a peak
/// RSS.
fn has_figure(text: &str) -> bool {
    ["images/s", "records/s", "rows/s", "objects/s", "calls/s"].iter().any(|unit| {
        text.match_indices(&format!(" {unit}")).any(|(i, _)| text[..i].ends_with(|c: char| c.is_ascii_digit()))
    }) || ["p50", "p99", "peak RSS"].iter().any(|w| text.contains(w))
}

/// The prose of a page in units a figure and its source share: its paragraphs, a
/// table joined to the paragraph before it, each with the `## ` heading it is under.
fn prose_units(text: &str) -> Vec<(String, String)> {
    let (mut units, mut current, mut heading, mut fence) =
        (Vec::<(String, String)>::new(), String::new(), String::new(), false);
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            if !current.is_empty() {
                units.push((heading.clone(), std::mem::take(&mut current)));
            }
            if let Some(h) = line.strip_prefix("## ") {
                heading = h.to_string();
            }
            continue;
        }
        if line.starts_with('|') && current.is_empty() && units.last().is_some_and(|(h, _)| *h == heading) {
            current = units.pop().unwrap().1;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.is_empty() {
        units.push((heading, current));
    }
    units
}

/// Every figure the README and the guide give names the benchmark that measured it
/// and the date: on docs/benchmarks.md each section names its benchmark, each of its
/// paragraphs its date, and each row of the latest figures both; elsewhere the
/// paragraph names both.
#[test]
fn every_figure_names_its_benchmark_and_its_date() {
    let mut unsourced = Vec::new();
    let mut figures = 0;
    for page in docs::pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&page).unwrap();
        for (heading, unit) in prose_units(&text).into_iter().filter(|(_, u)| has_figure(u)) {
            figures += 1;
            let names_bench = |t: &str| t.contains("bucketlens-bench") || t.contains("bench/");
            let sourced = if name != "benchmarks.md" {
                names_bench(&unit) && has_date(&unit)
            } else if heading == "The latest figures" {
                unit.lines()
                    .filter(|l| l.starts_with('|') && !l.starts_with("| ---") && !l.starts_with("| what"))
                    .all(|row| names_bench(row) && has_date(row))
            } else {
                names_bench(&heading) && has_date(&unit)
            };
            if !sourced {
                unsourced.push(format!("{name} ({heading}): {}", unit.lines().next().unwrap_or_default()));
            }
        }
    }
    assert!(unsourced.is_empty(), "figures without their benchmark or date:\n{}", unsourced.join("\n"));
    assert!(figures >= 30, "{figures} paragraphs with figures");
}

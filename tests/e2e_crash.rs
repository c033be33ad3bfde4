//! SIGKILL `bucketlens index` at random moments, then rerun: the index ends with
//! exactly one document per image, none missing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use common::{example_names, World};

#[test]
fn sigkill_at_random_moments_then_a_rerun_indexes_every_image_exactly_once() {
    let w = World::new(8); // 96 images in 8 folders, and 12 more before each run
    let mut rng = fastrand::Rng::with_seed(std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7));
    let mut kills = Vec::new();
    for round in 0..6 {
        // Fresh work for every round, so each kill can land mid-run.
        let extra = w.photos.join(format!("extra-{round}"));
        std::fs::create_dir_all(&extra).unwrap();
        for name in example_names() {
            std::fs::copy(common::examples_dir().join(&name), extra.join(&name)).unwrap();
        }
        let mut child = w
            .command(&["index", w.photos.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let after = Duration::from_millis(rng.u64(50..1500));
        std::thread::sleep(after);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
        kills.push((after, finished));
    }
    eprintln!("kills (delay, whether the run had already finished): {kills:?}");
    assert!(kills.iter().any(|(_, finished)| !finished), "no run was interrupted: the test proves nothing");
    let summary = w.index();
    assert!(summary.contains("found 168 images"), "{summary}");

    let folders: Vec<String> = (0..8).map(|i| format!("set-{i}")).chain((0..6).map(|i| format!("extra-{i}"))).collect();
    let expected: BTreeSet<String> =
        folders.iter().flat_map(|f| example_names().into_iter().map(move |n| format!("{f}/{n}"))).collect();
    let docs = w.all_documents();
    let keys: Vec<String> = docs.iter().map(|(k, _)| k.clone()).collect();
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), unique.len(), "a document appears twice (kills: {kills:?})");
    assert_eq!(unique, expected, "documents missing or extra (kills: {kills:?})");
    let status = w.status();
    assert_eq!(status["documents"], 168, "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    for group in status["groups"].as_array().unwrap() {
        assert_eq!(group["lag"], 0, "{group}");
    }
    // Every copy of the cat is a cat: nothing was half-written.
    assert_eq!(w.json(&["search", "cat", "--json", "--limit", "100"])["total"], 14);
}

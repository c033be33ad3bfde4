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

/// The address-space cap the memory tests run `bucketlens` under: several times what
/// a run over the examples needs, far below what the cases below would take unbounded.
const MEMORY_CAP: &str = "--as=3000000000";

/// `bucketlens ARGS` under [`MEMORY_CAP`] (`prlimit`, util-linux).
fn capped(w: &World, args: &[&str]) -> std::process::Output {
    let direct = w.command(args);
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(MEMORY_CAP).arg("--").arg(direct.get_program()).args(direct.get_args());
    cmd.envs(direct.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    for (k, v) in direct.get_envs() {
        if v.is_none() {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn images_of_extreme_aspect_ratios_are_labeled_within_a_memory_cap() {
    let w = World::new(1);
    // 60000x1 is a 256-byte PNG; resizing its short side to 256 first took 11.8 GB.
    image::RgbImage::from_pixel(60_000, 1, image::Rgb([200, 40, 40])).save(w.photos.join("wide.png")).unwrap();
    image::RgbImage::from_pixel(1, 60_000, image::Rgb([40, 200, 40])).save(w.photos.join("tall.jpg")).unwrap();
    image::RgbImage::from_pixel(5_000, 3, image::Rgb([40, 40, 200])).save(w.photos.join("strip.png")).unwrap();
    let out = capped(&w, &["index", w.photos.to_str().unwrap()]);
    assert!(out.status.success(), "index under {MEMORY_CAP} ({}):\n{}", out.status, text(&out));
    let status = w.status();
    let images = example_names().len() + 3;
    assert_eq!(status["documents"], images, "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    let keys: Vec<String> = w.all_documents().into_iter().map(|(key, _)| key).collect();
    for odd in ["wide.png", "tall.jpg", "strip.png"] {
        assert!(keys.iter().any(|k| k == odd), "{odd} is not indexed: {keys:?}");
    }
}

#[test]
fn an_object_that_kills_the_labeler_costs_one_restart_and_fails_after_three_deaths() {
    let mut w = World::new(1);
    // A real crash (SIGABRT) while this object is in flight: every decode a header
    // could drive past memory is bounded now, so the labeler aborts on a marked
    // object when BUCKETLENS_TEST_ABORT is set.
    std::fs::write(w.photos.join("bomb.png"), bucketlens_labeler::local::TEST_ABORT_MARKER).unwrap();
    w.env.push(("BUCKETLENS_TEST_ABORT".into(), "1".into()));
    let index = ["index", w.photos.to_str().unwrap()];
    let out = capped(&w, &index);
    let printed = text(&out);
    assert!(!out.status.success(), "the first run should have died on the bomb:\n{printed}");
    assert!(printed.contains("aborting on the test object"), "it did not die on it:\n{printed}");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(6), "SIGABRT");

    // The next run labels what was in flight in separate processes: the bomb kills
    // two of them, not the run.
    let out = capped(&w, &index);
    let printed = text(&out);
    assert!(out.status.success(), "the second run goes past the bomb ({}):\n{printed}", out.status);
    assert!(printed.contains("labeling it alone in a separate process"), "no isolation:\n{printed}");
    assert_eq!(printed.matches("the separate labeler process died on this object").count(), 2, "{printed}");
    assert!(printed.contains("failed 1"), "{printed}");

    let status = w.status();
    // Every example is labeled once its neighbours' crashes are over: none is failed
    // for having been in flight beside the bomb.
    assert_eq!(status["labeled"], example_names().len(), "every other image is labeled: {status}");
    assert_eq!(status["failed"], 1, "{status}");
    assert_eq!(status["dlq"]["objects.changed.dlq.v1"], 1, "the bomb is dead-lettered: {status}");
    let failed = w.json(&["search", "--failed", "--json"]);
    let hits = failed["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{failed}");
    assert_eq!(hits[0]["key"], "bomb.png");
    assert_eq!(hits[0]["error"]["code"], "LabelerCrashed", "{failed}");
    let message = hits[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("died 3 times") && message.contains("SIGABRT"), "{failed}");
}

//! `bucketlens index DIR --watch`: deletions leave search,
//! replacements are re-labeled, new images appear, SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::World;

struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keys_for(w: &World, query: &str) -> Vec<String> {
    let v = w.json(&["search", query, "--json", "--limit", "100"]);
    let mut keys: Vec<String> =
        v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap().to_string()).collect();
    keys.sort();
    keys
}

/// Polls `check` until it holds; fails after `limit` (a hang, not a speed check).
fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn watch_follows_deletes_replacements_and_new_files() {
    let w = World::new(1);
    let child = w
        .command(&["index", w.photos.to_str().unwrap(), "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watcher = Watcher(child);
    wait_for("the backfill", Duration::from_secs(120), || w.status()["documents"] == 12);

    // A deletion leaves search (how fast is measured by bench/src/bin/freshness.rs).
    std::fs::remove_file(w.photos.join("chelsea.png")).unwrap();
    wait_for("the deleted cat to leave search", Duration::from_secs(30), || keys_for(&w, "cat").is_empty());

    // Replacing a file re-labels it: the rocket becomes a cup of coffee.
    std::fs::copy(w.photos.join("coffee.png"), w.photos.join("rocket.jpg")).unwrap();
    wait_for("the replaced file to be re-labeled", Duration::from_secs(10), || {
        keys_for(&w, "espresso") == vec!["coffee.png", "rocket.jpg"]
    });
    assert!(keys_for(&w, "missile").is_empty());

    // A new image in a new folder appears.
    std::fs::create_dir_all(w.photos.join("new/deeper")).unwrap();
    std::fs::copy(w.photos.join("camera.png"), w.photos.join("new/deeper/cam.png")).unwrap();
    wait_for("the new image to be indexed", Duration::from_secs(10), || {
        keys_for(&w, "tripod") == vec!["camera.png", "new/deeper/cam.png"]
    });

    // Removing a whole folder removes what was in it.
    std::fs::remove_dir_all(w.photos.join("new")).unwrap();
    wait_for("the removed folder to leave search", Duration::from_secs(10), || {
        keys_for(&w, "tripod") == vec!["camera.png"]
    });

    // A change made while something reads the folder (a backup, `ls`, a sync tool)
    // is not lost: reading the watched root used to make its sync swallow the change.
    let listed = std::fs::read_dir(&w.photos).unwrap().count();
    std::fs::copy(w.photos.join("coffee.png"), w.photos.join("camera.png")).unwrap();
    assert!(listed > 0);
    wait_for("the file replaced while the folder was read to be re-labeled", Duration::from_secs(10), || {
        keys_for(&w, "espresso") == vec!["camera.png", "coffee.png", "rocket.jpg"]
    });
    assert!(keys_for(&w, "tripod").is_empty());

    // SIGTERM: drains, commits and exits 0.
    let pid = watcher.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    loop {
        if let Some(status) = watcher.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(w.status()["documents"], 11);
    for group in w.status()["groups"].as_array().unwrap() {
        assert_eq!(group["lag"], 0, "everything committed before exit: {group}");
    }
}

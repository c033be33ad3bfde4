//! `bucketlens index DIR --watch`: deletions leave search,
//! replacements are re-labeled, new images appear, SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::ffi::OsStrExt;
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

/// A running `index DIR --watch` with its stderr gathered.
struct Watching {
    _watcher: Watcher,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Watching {
    fn start(w: &World, args: &[&str]) -> Self {
        let mut command = w.command(&["index", w.photos.to_str().unwrap(), "--watch"]);
        let mut child = command.args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (pipe, gathered) = (child.stderr.take().unwrap(), std::sync::Arc::clone(&stderr));
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                gathered.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Self { _watcher: Watcher(child), stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

fn no_failure_and_no_dead_letter(w: &World) {
    let status = w.status();
    assert_eq!(status["failed"], 0, "{status}");
    for (topic, count) in status["dlq"].as_object().unwrap() {
        assert_eq!(count, 0, "dead letters on {topic}: {status}");
    }
}

/// The watched folder renamed away and back: its documents are kept meanwhile (it
/// is not a folder whose photos were deleted), and the watch follows it again.
#[test]
fn a_watched_folder_that_goes_away_keeps_its_documents_and_is_followed_when_back() {
    let w = World::new(1);
    let watching = Watching::start(&w, &[]);
    wait_for("the backfill", Duration::from_secs(120), || w.status()["documents"] == 12);
    let away = w.tmp.path().join("photos-away");
    std::fs::rename(&w.photos, &away).unwrap();
    wait_for("the watch to say the folder is gone", Duration::from_secs(10), || {
        watching.stderr().contains("watching for it to come back")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(w.status()["documents"], 12, "the documents are kept: {}", watching.stderr());
    std::fs::rename(&away, &w.photos).unwrap();
    std::fs::copy(w.photos.join("camera.png"), w.photos.join("back.png")).unwrap();
    wait_for("a photo added once the folder is back to be indexed", Duration::from_secs(20), || {
        keys_for(&w, "tripod") == vec!["back.png", "camera.png"]
    });
    // Followed again, by events: a delete leaves search.
    std::fs::remove_file(w.photos.join("back.png")).unwrap();
    wait_for("the delete to be followed", Duration::from_secs(10), || keys_for(&w, "tripod") == vec!["camera.png"]);
    assert!(watching.stderr().contains("photos is back: syncing it"), "{}", watching.stderr());
}

/// A slow copy (a JPEG written over 3 s, as a network copy writes) and rsync (which
/// writes a hidden temporary file, then renames it into place) leave no failure and
/// no dead letter: a file is read once its writer closed it. Hidden files, NAS
/// folders and names that are not UTF-8 are treated as the one-shot run treats them.
#[test]
fn files_being_written_hidden_files_and_excluded_folders_are_not_read() {
    let w = World::new(1);
    let watching = Watching::start(&w, &[]);
    wait_for("the backfill", Duration::from_secs(120), || w.status()["documents"] == 12);
    let rocket = std::fs::read(w.photos.join("rocket.jpg")).unwrap();

    // The slow writer: 60 chunks, 50 ms apart, the file open all along.
    {
        use std::io::Write;
        let mut file = std::fs::File::create(w.photos.join("slow.jpg")).unwrap();
        for chunk in rocket.chunks(rocket.len().div_ceil(60)) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    wait_for("the slowly written photo to be indexed", Duration::from_secs(20), || {
        keys_for(&w, "rocket") == vec!["rocket.jpg", "slow.jpg"]
    });

    // rsync, slowed down to about 2 s for this file.
    let rsync = std::process::Command::new(std::env::var("RSYNC").unwrap_or_else(|_| "rsync".into()))
        .arg(format!("--bwlimit={}", rocket.len() / 2048 + 1))
        .arg(w.photos.join("rocket.jpg"))
        .arg(w.photos.join("synced.jpg"))
        .status()
        .expect("rsync (Debian's; scripts/test-servers installs it)");
    assert!(rsync.success());
    // Hidden files and folders, a NAS thumbnail folder, a partial download, a name
    // that is not UTF-8.
    std::fs::create_dir_all(w.photos.join(".cache")).unwrap();
    std::fs::copy(w.photos.join("rocket.jpg"), w.photos.join(".cache/hidden.jpg")).unwrap();
    std::fs::copy(w.photos.join("rocket.jpg"), w.photos.join(".hidden.jpg")).unwrap();
    std::fs::create_dir_all(w.photos.join("@eaDir/rocket.jpg")).unwrap();
    std::fs::copy(w.photos.join("rocket.jpg"), w.photos.join("@eaDir/rocket.jpg/SYNOPHOTO_THUMB_M.jpg")).unwrap();
    std::fs::copy(w.photos.join("rocket.jpg"), w.photos.join("download.jpg.part")).unwrap();
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::copy(w.photos.join("rocket.jpg"), w.photos.join(latin1)).unwrap();
    // A visible photo after them all: once it is indexed, they were seen.
    std::fs::copy(w.photos.join("camera.png"), w.photos.join("z-last.png")).unwrap();
    wait_for("the photo copied last to be indexed", Duration::from_secs(20), || {
        keys_for(&w, "tripod") == vec!["camera.png", "z-last.png"]
    });
    assert_eq!(keys_for(&w, "rocket"), vec!["rocket.jpg", "slow.jpg", "synced.jpg"], "{}", watching.stderr());
    no_failure_and_no_dead_letter(&w);
    wait_for("the name that is not UTF-8 to be reported", Duration::from_secs(10), || {
        watching.stderr().contains("caf\u{FFFD}.jpg")
    });
    assert!(watching.stderr().contains("not valid UTF-8"), "{}", watching.stderr());

    // A one-shot run afterwards agrees: nothing to add, nothing to delete.
    drop(watching);
    let out = w.run(&["index", w.photos.to_str().unwrap()]);
    assert!(out.contains("found 15 images"), "{out}");
    assert!(out.contains("0 new or changed, 0 deleted"), "{out}");
}

/// An idle watch whose stderr is a pipe (`docker compose logs`) does not print a
/// progress line every 2 s.
#[test]
fn an_idle_watch_is_quiet() {
    let w = World::new(1);
    let watching = Watching::start(&w, &[]);
    wait_for("the backfill", Duration::from_secs(120), || w.status()["documents"] == 12);
    let before = watching.stderr().matches("progress:").count();
    std::thread::sleep(Duration::from_secs(7));
    let idle = watching.stderr().matches("progress:").count() - before;
    assert!(idle <= 1, "{idle} progress lines in 7 idle seconds: {}", watching.stderr());
}

const UNMOUNT_SCRIPT: &str = r#"
data=$1; out=$2; bin=$3; photos=$4; examples=$5
fill() { mount -t tmpfs -o size=64m bucketlens-photos "$photos" && cp "$examples"/*.png "$examples"/*.jpg "$photos"/; }
docs() { "$bin" --data-dir "$data" status --json 2>/dev/null | tr -d ' \n' | grep -o '"documents":[0-9]*' | cut -d: -f2; }
wait_docs() { i=0; while [ "$(docs)" != "$1" ]; do i=$((i+1)); [ $i -gt 600 ] && return 1; sleep 0.2; done; }
fill || exit 90
"$bin" --data-dir "$data" index "$photos" --watch >"$out/watch.out" 2>"$out/watch.err" &
watch=$!
wait_docs 12; echo $? >"$out/backfill.rc"
umount "$photos" || exit 91
sleep 3
docs >"$out/unmounted.docs"
fill || exit 92
cp "$examples/camera.png" "$photos/new.png"
wait_docs 13; echo $? >"$out/remounted.rc"
kill -TERM $watch; wait $watch; echo $? >"$out/watch.rc"
"#;

/// The watched folder is a drive that is unmounted, then mounted again: while it is
/// away (an empty mount point) the documents are kept, and once it is back what was
/// added is indexed. The drive is a tmpfs in a user and mount namespace of the test's
/// own.
#[test]
fn a_watched_drive_unmounted_and_mounted_again_keeps_its_documents_and_is_followed() {
    let w = World::new(0);
    std::fs::create_dir_all(&w.data).unwrap();
    let out = w.tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let examples = common::examples_dir();
    let args = [w.data.as_os_str(), out.as_os_str(), common::BIN.as_ref(), w.photos.as_os_str(), examples.as_os_str()];
    w.in_mount_namespace(UNMOUNT_SCRIPT, &args);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default().trim().to_string();
    let err = read("watch.err");
    assert_eq!(read("backfill.rc"), "0", "{err}");
    assert_eq!(read("unmounted.docs"), "12", "the documents are kept while the drive is away: {err}");
    assert_eq!(read("remounted.rc"), "0", "a photo added once the drive is back is indexed: {err}");
    assert_eq!(read("watch.rc"), "0", "{err}");
    assert!(err.contains("watching for it to come back"), "{err}");
}

//! Helpers shared by the end-to-end tests: run the real `bucketlens` binary against
//! a fresh data dir and a copy of the example photos.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod browser;
pub mod docs;
pub mod faults;
pub mod gate;
pub mod http;
pub mod kafka;
pub mod msk;
pub mod opensearch;
pub mod registry;
pub mod rekognition;
pub mod s3;
pub mod serve;
pub mod sigv4;
pub mod tls;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_bucketlens");

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos")
}

/// The example images' file names.
pub fn example_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg"))
        .collect();
    names.sort();
    names
}

/// A temp dir with `photos/` (a copy of the examples, `copies` times, in
/// subfolders `set-N/` when `copies > 1`) and a data dir.
/// Documents as the tests compare them: (key, labels as name → confidence).
pub type Documents = Vec<(String, Vec<(String, f64)>)>;

pub struct World {
    pub tmp: tempfile::TempDir,
    pub photos: PathBuf,
    pub data: PathBuf,
    /// Environment for every command (e.g. the OpenSearch index settings).
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new(copies: usize) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        for copy in 0..copies {
            let dir = if copies == 1 { photos.clone() } else { photos.join(format!("set-{copy}")) };
            std::fs::create_dir_all(&dir).unwrap();
            for name in example_names() {
                std::fs::copy(examples_dir().join(&name), dir.join(&name)).unwrap();
            }
        }
        let data = tmp.path().join("data");
        Self { tmp, photos, data, env: Vec::new() }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(&self.data).args(args);
        cmd.env_remove("BUCKETLENS_CONFIG").env_remove("BUCKETLENS_DATA_DIR");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `sh -c script sh ARGS…` in a user and mount namespace of its own (`unshare`,
    /// util-linux), where it may mount a tmpfs with no root and no real disk, with
    /// every command's environment. It must start.
    pub fn in_mount_namespace(&self, script: &str, args: &[&std::ffi::OsStr]) -> std::process::ExitStatus {
        let like = self.command(&[]);
        let mut run = Command::new("unshare");
        run.args(["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]).args(args);
        for (name, value) in like.get_envs() {
            match value {
                Some(value) => run.env(name, value),
                None => run.env_remove(name),
            };
        }
        let status = run.status().unwrap();
        assert!(status.success(), "unshare and mount (user namespaces) must work here: {status}");
        status
    }

    /// Runs and requires success.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let stdout = self.run(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed invalid JSON ({e}): {stdout}"))
    }

    pub fn index(&self) -> String {
        self.run(&["index", self.photos.to_str().unwrap()])
    }

    /// Every document: (key, labels as name → confidence), sorted by key. An index
    /// that does not exist fails the test: it is not "no documents" (see
    /// [`World::documents_so_far`] for polls that start before the first write).
    pub fn all_documents(&self) -> Documents {
        self.documents().unwrap_or_else(|| panic!("the index does not exist: no documents can be asserted"))
    }

    /// [`World::all_documents`], or none while the index does not exist yet: for polls
    /// that start before the first write, never for asserting absence.
    pub fn documents_so_far(&self) -> Documents {
        self.documents().unwrap_or_default()
    }

    fn documents(&self) -> Option<Documents> {
        let args = ["search", "*", "--limit", "100000", "--json"];
        let out = self.command(&args).output().unwrap();
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("does not exist") {
            return None;
        }
        assert_success(&out, &args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut docs: Vec<(String, Vec<(String, f64)>)> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let labels = h["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| (l["name"].as_str().unwrap().to_string(), l["confidence"].as_f64().unwrap()))
                    .collect();
                (h["key"].as_str().unwrap().to_string(), labels)
            })
            .collect();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        Some(docs)
    }

    /// `index PHOTOS --watch` in the background, once its backfill of `documents`
    /// images is searchable; killed when the returned guard is dropped.
    pub fn watch(&self, documents: u64) -> Killed {
        let mut watch = self.command(&["index", self.photos.to_str().unwrap(), "--watch"]);
        watch.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let child = Killed(watch.spawn().unwrap());
        wait_until("the backfill", std::time::Duration::from_secs(120), || self.status()["documents"] == documents);
        child
    }

    pub fn status(&self) -> Value {
        self.json(&["status", "--json"])
    }
}

/// How many ports a server that must bind a given port is tried on.
pub const PORT_TRIES: usize = 5;

/// A port of 127.0.0.1 free now, for a server that must be told its port (it cannot
/// take `:0` and say which). Another process may take it before the server binds
/// it: start the server with [`wait_listening`], and on `Err` try another port.
/// The hits of a `--json` answer ranked by similarity (`similar`, `search
/// --semantic`): each key and its similarity, in the answer's order.
pub fn ranked(found: &Value) -> Vec<(String, f64)> {
    found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["key"].as_str().unwrap().to_string(), h["similarity"].as_f64().unwrap()))
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `host:port` answers with `child` still running: `Ok`. `Err` with its
/// exit status when the child ended first (the port was taken before it bound it).
pub fn wait_listening(
    child: &mut std::process::Child,
    host: &str,
    port: u16,
    within: std::time::Duration,
) -> Result<(), std::process::ExitStatus> {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(status);
        }
        if std::net::TcpStream::connect((host, port)).is_ok() {
            // Answered: by the child, unless it is exiting because someone else did.
            std::thread::sleep(std::time::Duration::from_millis(50));
            return match child.try_wait().unwrap() {
                Some(status) => Err(status),
                None => Ok(()),
            };
        }
        assert!(started.elapsed() < within, "nothing listens on {host}:{port} after {within:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "bucketlens {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process the test started, killed (by its PID) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` until it holds; fails after `limit` (a hang, not a speed check).
pub fn wait_until(what: &str, limit: std::time::Duration, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

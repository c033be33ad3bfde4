//! A real Kafka-protocol broker for the tests: tansu with its SQLite storage engine,
//! on a free port of 127.0.0.1, in a temp dir. `scripts/test` installs it and sets
//! `TANSU_BINARY`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    dir: tempfile::TempDir,
    /// The address it listens on (127.0.0.1 unless started with [`Broker::start_at`]).
    host: String,
    pub port: u16,
    /// The port clients are told to use, when not `port` (a front relaying to it).
    advertised: Option<u16>,
    child: Option<Child>,
}

fn tansu_binary() -> PathBuf {
    let path = std::env::var_os("TANSU_BINARY").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/bucketlens/tools/tansu-0.6.0/bin/tansu")
    });
    assert!(
        path.is_file(),
        "the Kafka tests need the tansu broker at {}: run the tests with scripts/test, which installs it",
        path.display()
    );
    path
}

use super::free_port;

impl Broker {
    /// A broker on a free port of 127.0.0.1 (another, if the port found free is taken
    /// before tansu binds it).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Self { dir, host: "127.0.0.1".into(), port: free_port(), advertised: None, child: None };
        let mut tries = Vec::new();
        while let Err(status) = broker.try_spawn() {
            tries.push(format!("port {}: {status}", broker.port));
            assert!(tries.len() < super::PORT_TRIES, "tansu did not start: {tries:?}\n{}", broker.log());
            broker.port = free_port();
        }
        broker
    }

    /// A broker on `host:port` (an address of a network namespace of the test's own).
    pub fn start_at(host: &str, port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Self { dir, host: host.into(), port, advertised: None, child: None };
        broker.spawn();
        broker
    }

    /// A broker that tells clients to connect to 127.0.0.1:`front` (which relays to it).
    pub fn start_behind(front: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut broker =
            Self { dir, host: "127.0.0.1".into(), port: free_port(), advertised: Some(front), child: None };
        broker.spawn();
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn try_spawn(&mut self) -> Result<(), std::process::ExitStatus> {
        let url = format!("tcp://{}:{}", self.host, self.port);
        let advertised = format!("tcp://{}:{}", self.host, self.advertised.unwrap_or(self.port));
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("tansu.log")).unwrap();
        let child = Command::new(tansu_binary())
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let child = self.child.as_mut().unwrap();
        super::wait_listening(child, &self.host, self.port, Duration::from_secs(30))
    }

    /// Starts tansu on this broker's port; it must listen there (a restart keeps it).
    fn spawn(&mut self) {
        if let Err(status) = self.try_spawn() {
            panic!("tansu did not start on {}: {status}\n{}", self.bootstrap(), self.log());
        }
    }

    /// Kills the broker (as a crash would), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

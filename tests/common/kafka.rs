//! A real Kafka-protocol broker for the tests: tansu with its SQLite storage engine,
//! on a free port of 127.0.0.1, in a temp dir. `scripts/test` installs it and sets
//! `TANSU_BINARY`.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Broker {
    pub fn start() -> Self {
        Self::start_at("127.0.0.1", free_port())
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

    fn spawn(&mut self) {
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
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((self.host.as_str(), self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
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

//! An OpenSearch-API server for the tests: osmem-server (PyPI; in memory) on a free
//! port of 127.0.0.1, and a TCP proxy in front of it that can be cut and restored to
//! play an outage without losing the server's data. `scripts/test` installs it and
//! sets `OSMEM_SERVER`.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Osmem {
    child: Child,
    pub url: String,
}

impl Osmem {
    pub fn start() -> Self {
        Self::start_at("127.0.0.1:0")
    }

    /// A server on `addr` (an address of a network namespace of the test's own).
    pub fn start_at(addr: &str) -> Self {
        let binary = std::env::var("OSMEM_SERVER")
            .expect("the OpenSearch tests need osmem-server: run the tests with scripts/test, which installs it");
        let mut child = Command::new(binary)
            .args(["-addr", addr, "-no-ja", "-parent-pid", &std::process::id().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: serde_json::Value = serde_json::from_str(&line).unwrap();
        Self { child, url: info["url"].as_str().unwrap().to_string() }
    }

    /// The settings that point bucketlens at `url` (this server or a proxy), index `index`.
    pub fn env(url: &str, index: &str) -> Vec<(String, String)> {
        vec![
            ("BUCKETLENS_INDEX__BACKEND".into(), "opensearch".into()),
            ("BUCKETLENS_INDEX__OPENSEARCH__URL".into(), url.into()),
            ("BUCKETLENS_INDEX__OPENSEARCH__INDEX".into(), index.into()),
        ]
    }

    /// A plain HTTP/1.0 request with a JSON body; the status code.
    pub fn request(&self, method: &str, path: &str, body: &str) -> u16 {
        self.call(method, path, body).0
    }

    /// A plain HTTP/1.0 request with a JSON body; the status code and the JSON
    /// answer (`Null` when it is not JSON).
    pub fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let addr = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let json = response.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok());
        (status, json.unwrap_or_default())
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to `target` on a port of its own; `cut()` closes the port and every
/// open connection (clients get "connection refused"), `restore()` opens it again.
pub struct Proxy {
    pub port: u16,
    target: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target_url: &str) -> Self {
        // The first listener is bound on port 0 and kept: no port found free and then
        // taken. A restore binds the same port again.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target: target_url.trim_start_matches("http://").to_string(),
            up: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.listen(listener);
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn restore(&self) {
        self.listen(TcpListener::bind(("127.0.0.1", self.port)).unwrap());
    }

    fn listen(&self, listener: TcpListener) {
        self.up.store(true, Ordering::SeqCst);
        listener.set_nonblocking(true).unwrap();
        let (up, connections, target) = (Arc::clone(&self.up), Arc::clone(&self.connections), self.target.clone());
        std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&target) else { continue };
                        let mut open = connections.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: the port refuses connections.
        });
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50)); // the accept loop sees the flag
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

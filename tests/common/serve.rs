//! `bucketlens serve` as a child process on a free port, and plain HTTP requests to it.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// What it printed after the start-up line.
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `command` (a `bucketlens … serve` command) with `--listen 127.0.0.1:0`
    /// and waits for the line that names its URL.
    pub fn start(command: Command) -> Self {
        Self::start_on(command, "127.0.0.1:0")
    }

    /// Starts `command` with `--listen listen` (a restarted server on its old port).
    pub fn start_on(mut command: Command, listen: &str) -> Self {
        command.args(["--listen", listen]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    // The start-up line names the settings (an OpenSearch URL too): the
                    // address is on the line that says it serves.
                    if let Some(at) = line.starts_with("serving the index").then(|| line.rfind("http://")).flatten() {
                        let url = line[at..].split_whitespace().next().unwrap().trim_end_matches('/').to_string();
                        return Self { child, url, stderr: rx };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("serve did not print its URL; it printed:\n{}", seen.join("\n"))
                }
            }
        }
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// A GET of `target` sent exactly as written (no normalisation of `..` or `%2F`):
    /// status, lowercased headers, body.
    pub fn raw_get(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", target, headers, "")
    }

    /// One request, `body` with its length.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut stream = TcpStream::connect(self.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr());
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Response::parse(&raw)
    }

    pub fn get(&self, target: &str) -> Response {
        self.raw_get(target, &[])
    }

    pub fn json(&self, target: &str) -> serde_json::Value {
        let response = self.get(target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        serde_json::from_slice(&response.body).unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (what Ctrl-C and `docker stop` send) and waits up to `within`
    /// for the process to end; whether it did.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Self {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
            body = dechunk(&body);
        }
        Self { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

/// Percent-encodes a whole key as one path segment (its slashes too).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Reads `change` events from `/api/events` into a channel.
pub fn events(server: &Server) -> std::sync::mpsc::Receiver<Value> {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    // The answer's head comes once the server has subscribed this stream: from then on
    // no change is missed (no fixed wait).
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "the event stream answered {status:?}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim_end().is_empty() {
            break;
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in reader.lines().map_while(Result::ok) {
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if event == "change" && tx.send(serde_json::from_str(data).unwrap()).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

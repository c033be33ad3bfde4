//! A real S3 + SQS server for the tests: moto's server on a free port of 127.0.0.1,
//! with its bucket notifications delivered to its own SQS queues (AWS's S3 → SQS
//! topology). Uploads and queue set-up go through boto3 from moto's venv, a client
//! independent of ours. `scripts/test` installs it and sets `MOTO_HOME`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Moto {
    /// The address it listens on (127.0.0.1 unless started with [`Moto::start_at`]).
    host: String,
    pub port: u16,
    child: Child,
    home: PathBuf,
}

fn moto_home() -> PathBuf {
    let home = std::env::var_os("MOTO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/bucketlens/tools/moto-5.2.1")
    });
    assert!(
        home.join("bin/moto_server").is_file(),
        "the S3 tests need moto at {}: run the tests with scripts/test, which installs it",
        home.display()
    );
    home
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server that answers the first `requests` requests without checking who sends
    /// them (the set-up), then enforces IAM: only keys made in its IAM, with their
    /// policies, are let in.
    pub fn start_enforcing_iam_after(requests: u32) -> Self {
        Self::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", requests.to_string())])
    }

    /// A server that records every request it answers in `file` (moto's recorder), for
    /// a test that counts them with [`Moto::requests`].
    pub fn start_recording(file: &std::path::Path) -> Self {
        Self::start_with(&[
            ("MOTO_ENABLE_RECORDING", "True".into()),
            ("MOTO_RECORDER_FILEPATH", file.to_str().unwrap().into()),
        ])
    }

    /// The method and decoded path of each request recorded in `file` so far.
    pub fn requests(file: &std::path::Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                let url = entry["url"].as_str().unwrap_or_default();
                let path = url.split_once("://").map_or(url, |(_, rest)| rest);
                let path = path.find('/').map_or("", |i| &path[i..]);
                let path = path.split('?').next().unwrap_or_default();
                let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned();
                (entry["method"].as_str().unwrap_or_default().to_string(), decoded)
            })
            .collect()
    }

    fn start_with(env: &[(&str, String)]) -> Self {
        let mut tries = Vec::new();
        loop {
            let port = super::free_port();
            match Self::start_on("127.0.0.1", port, env) {
                Ok(moto) => return moto,
                Err(status) => tries.push(format!("port {port}: {status}")),
            }
            assert!(tries.len() < super::PORT_TRIES, "moto did not start: {tries:?}");
        }
    }

    /// A server on `host:port` (an address of a network namespace of the test's own).
    pub fn start_at(host: &str, port: u16) -> Self {
        Self::start_on(host, port, &[]).unwrap_or_else(|status| panic!("moto did not start on {host}:{port}: {status}"))
    }

    /// Err when moto exited before listening (its port was taken).
    fn start_on(host: &str, port: u16, env: &[(&str, String)]) -> Result<Self, std::process::ExitStatus> {
        let home = moto_home();
        let mut child = Command::new(home.join("bin/moto_server"))
            .args(["-H", host, "-p", &port.to_string()])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_listening(&mut child, host, port, Duration::from_secs(30))?;
        Ok(Self { host: host.into(), port, child, home })
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The environment that points bucketlens (aws-config) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Runs a Python snippet with `s3` and `sqs` boto3 clients bound to this server
    /// (and `json`, `sys` imported); returns its stdout.
    pub fn py(&self, script: &str) -> String {
        let prelude = format!(
            "import boto3, json, sys\nkw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\ns3 = boto3.client('s3', **kw)\nsqs = boto3.client('sqs', **kw)\n",
            self.url()
        );
        let out = Command::new(self.home.join("bin/python")).arg("-c").arg(prelude + script).output().unwrap();
        assert!(out.status.success(), "python failed:\n{script}\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.py(&format!("s3.create_bucket(Bucket={bucket:?})"));
    }

    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("body");
        std::fs::write(&file, body).unwrap();
        self.py(&format!("s3.upload_file({:?}, {bucket:?}, {})", file.to_str().unwrap(), py_str(key)));
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        self.py(&format!("s3.delete_object(Bucket={bucket:?}, Key={})", py_str(key)));
    }

    /// A queue receiving `bucket`'s created and removed notifications; its URL.
    pub fn notify_queue(&self, bucket: &str, queue: &str) -> String {
        self.py(&format!(
            "q = sqs.create_queue(QueueName={queue:?})['QueueUrl']
arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
s3.put_bucket_notification_configuration(Bucket={bucket:?}, NotificationConfiguration={{'QueueConfigurations': [{{'QueueArn': arn, 'Events': ['s3:ObjectCreated:*', 's3:ObjectRemoved:*']}}]}})
print(q)"
        ))
        .trim()
        .to_string()
    }

    /// Messages waiting in a queue (visible or in flight).
    pub fn queue_depth(&self, queue_url: &str) -> u64 {
        let out = self.py(&format!(
            "a = sqs.get_queue_attributes(QueueUrl={queue_url:?}, AttributeNames=['All'])['Attributes']
print(int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible']))"
        ));
        out.trim().parse().unwrap()
    }
}

/// A Python string literal holding `text` exactly (JSON strings are Python literals).
pub fn py_str(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

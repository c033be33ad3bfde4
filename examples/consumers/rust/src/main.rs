//! A consumer of bucketlens' label log, `images.labeled.v1`: prints every outcome as
//! it arrives and keeps a count of documents per label.
//!
//! ```sh
//! cargo run -p bucketlens-example-consumer -- --bootstrap localhost:9092 [--group my-consumer]
//!     [--until-end] [--registry URL] [--json]
//! ```
//!
//! - Records are keyed `bucket/key`; delivery is at least once, so state is kept by
//!   key: the last record of a key is that object's state, and a record seen twice
//!   changes nothing.
//! - `bucketlens-schemas` decodes Avro single-object encoding (`C3 01`, the writer
//!   schema's CRC-64-AVRO fingerprint, the body) written with any schema version it
//!   ships, resolved into the current one. A Confluent-framed record (`00`, a 4-byte
//!   schema id, the body) has its writer schema fetched once per id from
//!   `--registry`, and is read the same way.
//! - Offsets are committed after the records they cover are handled: a consumer that
//!   dies handles them again, never loses them.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Context};
use bucketlens_schemas::{AvroRecord, ImageLabeled, LabelKind};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

const TOPIC: &str = bucketlens_schemas::topics::IMAGES_LABELED;

#[derive(Parser)]
#[command(about = "Print every label outcome of images.labeled.v1 and count documents per label")]
struct Args {
    #[arg(long)]
    bootstrap: String,
    #[arg(long, default_value = "example-label-counter")]
    group: String,
    /// The schema registry, for Confluent-framed records (https://KEY:SECRET@host
    /// with credentials).
    #[arg(long)]
    registry: Option<String>,
    /// Stop once the end of every partition is reached.
    #[arg(long)]
    until_end: bool,
    /// Print the counts as one JSON document at the end.
    #[arg(long)]
    json: bool,
}

/// Turns a Confluent-framed record into single-object encoding, fetching each
/// writer schema from the registry once.
struct Registry {
    url: Option<String>,
    http: reqwest::Client,
    fingerprints: HashMap<u32, [u8; 8]>,
}

impl Registry {
    async fn decode(&mut self, value: &[u8]) -> anyhow::Result<ImageLabeled> {
        if value.first() != Some(&0) {
            return Ok(ImageLabeled::from_bytes(value)?);
        }
        let Some(id) = value.get(1..5).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
            bail!("a Confluent-framed record shorter than its header");
        };
        let fingerprint = match self.fingerprints.get(&id) {
            Some(fp) => *fp,
            None => {
                let Some(url) = &self.url else { bail!("Confluent-framed (schema id {id}): give --registry") };
                let mut url = reqwest::Url::parse(&format!("{}/schemas/ids/{id}", url.trim_end_matches('/')))?;
                // Credentials written in the URL (https://KEY:SECRET@host, as Confluent
                // Cloud gives an API key and secret) go in a Basic Authorization header.
                let (user, password) = (url.username().to_string(), url.password().map(str::to_string));
                let _ = (url.set_username(""), url.set_password(None));
                let mut request = self.http.get(url.clone());
                if !user.is_empty() {
                    request = request.basic_auth(user, password);
                }
                let body = request.send().await?.error_for_status()?.bytes().await?;
                let answer: serde_json::Value = serde_json::from_slice(&body)?;
                let text = answer["schema"].as_str().with_context(|| format!("{url} gave no schema"))?;
                let fp = bucketlens_schemas::fingerprint(&apache_avro::Schema::parse_str(text)?);
                self.fingerprints.insert(id, fp);
                fp
            }
        };
        let single = [&[0xC3, 0x01][..], &fingerprint, &value[5..]].concat();
        Ok(ImageLabeled::from_bytes(&single)?)
    }
}

fn describe(record: &ImageLabeled) -> String {
    let name = format!("{}/{}", record.bucket, record.key);
    match record.kind {
        LabelKind::Labeled => {
            let labels: Vec<String> = record.labels.iter().map(|l| format!("{} {:.1}", l.name, l.confidence)).collect();
            format!("labeled {name}: {}", labels.join(" · "))
        }
        LabelKind::Removed => format!("removed {name}"),
        LabelKind::Failed => match &record.error {
            Some(e) => format!("failed {name}: {}: {}", e.code, e.message),
            None => format!("failed {name}"),
        },
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    consumer.subscribe(&[TOPIC])?;
    let mut registry =
        Registry { url: args.registry.clone(), http: reqwest::Client::new(), fingerprints: HashMap::new() };
    // bucket/key -> that object's labels, while it is labeled.
    let mut state: HashMap<String, Vec<String>> = HashMap::new();
    let mut at_end = HashSet::new();
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(partition)) => {
                at_end.insert(partition);
                let assigned = consumer.assignment()?.count();
                if args.until_end && assigned > 0 && at_end.len() >= assigned {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e).context("consuming"),
        };
        at_end.remove(&message.partition());
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        match registry.decode(message.payload().unwrap_or_default()).await {
            Ok(record) => {
                if !args.json {
                    println!("{}", describe(&record));
                }
                match record.kind {
                    LabelKind::Labeled => state.insert(key, record.labels.into_iter().map(|l| l.name).collect()),
                    LabelKind::Removed | LabelKind::Failed => state.remove(&key),
                };
            }
            // A record this consumer cannot read: said, and passed.
            Err(e) => eprintln!("{key}: cannot decode: {e:#}"),
        }
        consumer.commit_message(&message, CommitMode::Sync)?;
    }
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for name in state.values().flatten() {
        *counts.entry(name).or_default() += 1;
    }
    if args.json {
        println!("{}", serde_json::json!({"documents": state.len(), "labels": counts}));
        return Ok(());
    }
    let mut by_count: Vec<(&str, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (name, n) in by_count {
        println!("{n:>8}  {name}");
    }
    println!("{} labeled documents", state.len());
    Ok(())
}

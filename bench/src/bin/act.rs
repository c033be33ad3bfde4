//! `bucketlens act`'s cost: label records/s that act evaluates with 10 and with 100
//! rules, against its baseline in the same run, reading the topic alone (a consumer
//! group that polls, decodes each record and commits, as act does before its rules).
//!
//! The records are RECORDS synthetic `images.labeled.v1` outcomes on the embedded log,
//! each with 4 to 8 labels of a vocabulary of 60, at confidences of 30 to 100. Rule i
//! is `label_a AND NOT label_b` at min-confidence 60 with a topic action, so some
//! records match every rule: a match costs a produce and the ledger's writes, as in
//! use. The same counts of rules that match nothing (labels no record has) give the
//! cost of evaluating alone. Each act run has a fresh group and a fresh ledger.
//!
//! Usage: cargo build --release --workspace && target/release/bucketlens-bench-act [RECORDS=20000]

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bucketlens_act::{Config, Ledger, Metrics, RuleConfig, Stage};
use bucketlens_runtime::log::{EmbeddedLog, Log, OutRecord, Until};
use bucketlens_schemas::{record_key, topics, AvroRecord, ImageLabeled, Label, LabelKind, ModelInfo};
use tokio_util::sync::CancellationToken;

const VOCABULARY: usize = 60;

fn label_name(i: usize) -> String {
    format!("Label{i:02}")
}

fn records(n: usize) -> anyhow::Result<Vec<OutRecord>> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let labels = (0..rng.usize(4..=8))
            .map(|_| Label {
                name: label_name(rng.usize(..VOCABULARY)),
                confidence: 30.0 + rng.f32() * 70.0,
                parents: Vec::new(),
                categories: Vec::new(),
                aliases: Vec::new(),
                instances: Vec::new(),
            })
            .collect();
        let record = ImageLabeled {
            text: None,
            bucket: "photos".into(),
            key: format!("set-{}/img-{i:07}.jpg", i % 100),
            version_id: None,
            etag: Some(format!("{i:032x}")),
            size: Some(250_000),
            last_modified: Some(1_764_000_000_000),
            sequencer: None,
            kind: LabelKind::Labeled,
            labels,
            image: None,
            model: ModelInfo { name: "bench".into(), version: "1".into() },
            labeled_at: 1_764_000_000_000 + i as i64,
            error: None,
            labeler: None,
            metadata: None,
            hashes: None,
            storage_class: None,
            embedding: None,
        };
        out.push(OutRecord::new(record_key(&record.bucket, &record.key), record.to_bytes()?));
    }
    Ok(out)
}

/// The baseline: a group reading the topic to its end, decoding each record, committing each poll.
async fn read_alone(log: &Arc<dyn Log>, total: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut consumer = log.subscribe("bench-read-alone", topics::IMAGES_LABELED).await?;
    let mut read = 0;
    while read < total {
        let polled = consumer.poll(200, std::time::Duration::from_millis(200)).await?;
        let mut next = std::collections::BTreeMap::new();
        for record in &polled {
            std::hint::black_box(ImageLabeled::from_bytes(&record.value)?);
            next.insert(record.partition, record.offset + 1);
        }
        read += polled.len();
        consumer.commit(&next.into_iter().collect::<Vec<_>>()).await?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// act with `rules` rules over the whole topic; with `matching` false, the rules ask
/// for labels no record has (the cost of evaluating alone). Its rate, and matches.
async fn act(
    log: &Arc<dyn Log>,
    dir: &std::path::Path,
    (rules, matching): (usize, bool),
    total: usize,
) -> anyhow::Result<(f64, u64)> {
    let vocabulary = if matching { VOCABULARY } else { 1000 };
    let rules = (0..rules)
        .map(|i| RuleConfig {
            name: format!("rule-{i:03}"),
            query: format!(
                "{} AND NOT {}",
                label_name(i % vocabulary + VOCABULARY * usize::from(!matching)),
                label_name((i * 7 + 3) % VOCABULARY)
            ),
            min_confidence: 60.0,
            topic: Some("bench.matched".into()),
            ..RuleConfig::default()
        })
        .collect();
    let config = Config { group: format!("bench-act-{}", dir.display()), rules, ..Config::default() };
    let settings = config.validate().map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let ledger = Ledger::open(Some(&dir.join("act-ledger.sqlite")))?;
    let metrics = Arc::new(Metrics::default());
    let stage = Stage {
        settings,
        log: Arc::clone(log),
        ledger,
        tagger: None,
        is_folder: Arc::new(|_| true),
        metrics: Arc::clone(&metrics),
    };
    let until = Until::EndOffsets(log.watermarks(topics::IMAGES_LABELED).await?);
    let start = Instant::now();
    bucketlens_act::run(stage, until, CancellationToken::new()).await?;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(metrics.records_in.get() == total as u64, "act read {} of {total}", metrics.records_in.get());
    Ok((rate, metrics.actions.get("topic")))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args().nth(1).map(|a| a.parse()).transpose().context("RECORDS")?.unwrap_or(20_000);
    let tmp = tempfile::tempdir()?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(&tmp.path().join("log.sqlite"))?);
    log.ensure_topic(topics::IMAGES_LABELED, 4, true).await?;
    for chunk in records(total)?.chunks(1000) {
        log.produce(topics::IMAGES_LABELED, chunk.to_vec()).await?;
    }
    println!("{total} label records on the embedded log (4 partitions)");
    let alone = read_alone(&log, total).await?;
    println!("baseline, reading the topic alone (poll, decode, commit): {alone:.0} records/s");
    for (rules, matching) in [(10, false), (100, false), (10, true), (100, true)] {
        let dir = tmp.path().join(format!("act-{rules}-{matching}"));
        std::fs::create_dir_all(&dir)?;
        let (rate, matches) = act(&log, &dir, (rules, matching), total).await?;
        let what = if matching { "rules that match (~5% of records each)" } else { "rules that match nothing" };
        println!(
            "act with {rules:>3} {what}: {rate:.0} records/s ({:.1} µs a record, {matches} matches published) · ratio to reading alone {:.2}",
            1e6 / rate,
            rate / alone
        );
    }
    Ok(())
}

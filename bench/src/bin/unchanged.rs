//! "Never pay twice" benchmark: a second daily S3 Inventory report of IMAGES
//! unchanged objects, against its baseline in the same run — the first report of the
//! same objects, which reads and labels every one.
//!
//! Then the labeler ledger alone at LEDGER objects: its bytes per object on disk,
//! and the cost of one lookup against the labeler's time per image measured above.
//!
//! Last, a labeler's start with FOLLOW outcomes on the embedded label log: the time
//! its ledger follower takes to catch up in a restart (the same ledger), against its
//! baseline in the same run, a new ledger reading the whole log (what every start
//! cost before the ledger kept how far it had read).
//!
//! Usage: cargo build --release --workspace && \
//!   target/release/bucketlens-bench-unchanged [IMAGES=2000] [LEDGER=1000000] [FOLLOW=200000]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bucketlens_bench::{bucketlens, run_sampled, Sampled};
use bucketlens_labeler::{ledger, Ledger};
use bucketlens_runtime::log::{EmbeddedLog, Log, OutRecord};
use bucketlens_schemas::{
    record_key, topics, AvroRecord, ChangeKind, ChangeSource, ImageLabeled, LabelKind, ModelInfo, ObjectChanged,
};
use md5::{Digest, Md5};

fn hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// IMAGES photos (the examples, 320 px wide JPEGs) under `root/photos`, and their
/// inventory rows with the etags the labeler's folder source gives them.
fn corpus(root: &Path, images: usize) -> anyhow::Result<Vec<String>> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "png" || e == "jpg") {
            let image = image::open(&path).with_context(|| path.display().to_string())?.thumbnail(320, 320).to_rgb8();
            let mut jpeg = Vec::new();
            let (w, h) = (image.width() as u16, image.height() as u16);
            jpeg_encoder::Encoder::new(&mut jpeg, 85).encode(image.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)?;
            sources.push(jpeg);
        }
    }
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos)?;
    let mut rows = Vec::with_capacity(images);
    for i in 0..images {
        let key = format!("img-{i:07}.jpg");
        let path = photos.join(&key);
        std::fs::write(&path, &sources[i % sources.len()])?;
        let meta = std::fs::metadata(&path)?;
        let etag = bucketlens_runtime::bucket::etag_of(&meta);
        rows.push(format!("\"photos\",\"{key}\",\"{}\",\"2026-11-20T10:00:00.000Z\",\"{etag}\"", meta.len()));
    }
    Ok(rows)
}

/// Writes the report of one day; returns its manifest.
fn report(root: &Path, day: &str, created: i64, rows: &[String]) -> anyhow::Result<PathBuf> {
    let key = format!("inventory/photos/daily/data/{day}.csv.gz");
    let dir = root.join(format!("inventory/photos/daily/{day}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(root.join("inventory/photos/daily/data"))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for row in rows {
        writeln!(gz, "{row}")?;
    }
    let bytes = gz.finish()?;
    std::fs::write(root.join(&key), &bytes)?;
    let manifest = serde_json::json!({
        "sourceBucket": "photos",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "creationTimestamp": created.to_string(),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{ "key": key, "size": bytes.len(), "MD5checksum": hex(&bytes) }],
    });
    let text = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(dir.join("manifest.json"), &text)?;
    std::fs::write(dir.join("manifest.checksum"), format!("{}\n", hex(&text)))?;
    Ok(dir.join("manifest.json"))
}

/// `bucketlens index MANIFEST` as a user runs it; `(labeled, unchanged)` from its summary.
fn index(root: &Path, manifest: &Path) -> anyhow::Result<(Sampled, u64, u64)> {
    let mut command = Command::new(bucketlens()?);
    command
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("index")
        .arg(manifest)
        .env("BUCKETLENS_BUCKETS__PHOTOS", root.join("photos"));
    let run = run_sampled(command)?;
    let count = |word: &str| -> Option<u64> {
        let line = run.stdout.lines().find(|l| l.starts_with("labeled "))?;
        line.split(" · ").find_map(|part| part.strip_prefix(word)?.trim().parse().ok())
    };
    match (count("labeled "), count("unchanged ")) {
        (Some(labeled), Some(unchanged)) => Ok((run, labeled, unchanged)),
        _ => bail!("no summary from bucketlens index:\n{}\n{}", run.stdout, run.stderr),
    }
}

fn outcome(i: usize) -> ImageLabeled {
    let change = ObjectChanged {
        bucket: "photos".into(),
        key: format!("camera roll/2026/{:02}/IMG_{i:09}.jpg", i % 12 + 1),
        version_id: None,
        kind: ChangeKind::Upsert,
        size: Some(3_000_000),
        etag: Some(hex(&i.to_le_bytes())),
        last_modified: Some(1_732_000_000_000),
        sequencer: None,
        source: ChangeSource::Inventory,
        observed_at: 0,
        storage_class: None,
        access_tier: None,
    };
    let model = ModelInfo { name: "efficientnet-lite0".into(), version: "abcdef012345".into() };
    let mut outcome = ImageLabeled::for_change(&change, LabelKind::Labeled, model, 1_732_000_000_000 + i as i64);
    outcome.labeler = Some("0123456789abcdef".into());
    outcome
}

/// The ledger at `objects` objects: bytes per object, and seconds per lookup.
fn ledger(root: &Path, objects: usize) -> anyhow::Result<(f64, f64)> {
    let path = root.join("ledger.sqlite");
    let ledger = Ledger::open(Some(&path))?;
    for start in (0..objects).step_by(10_000) {
        let batch: Vec<ImageLabeled> = (start..(start + 10_000).min(objects)).map(outcome).collect();
        ledger.record(&batch)?;
    }
    drop(ledger);
    let ledger = Ledger::open(Some(&path))?; // checkpoints the WAL into the file
    let bytes =
        std::fs::metadata(&path)?.len() + std::fs::metadata(path.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    let lookups = 100_000.min(objects);
    let changes: Vec<ObjectChanged> = (0..lookups)
        .map(|n| {
            let o = outcome(n * (objects / lookups));
            ObjectChanged {
                bucket: o.bucket,
                key: o.key,
                version_id: None,
                kind: ChangeKind::Upsert,
                size: o.size,
                etag: o.etag,
                last_modified: o.last_modified,
                sequencer: None,
                source: ChangeSource::Inventory,
                observed_at: 0,
                storage_class: None,
                access_tier: None,
            }
        })
        .collect();
    let start = Instant::now();
    for change in &changes {
        if !ledger.unchanged(change, "0123456789abcdef")? {
            bail!("{} is in the ledger but not found unchanged", change.key);
        }
    }
    let per_lookup = start.elapsed().as_secs_f64() / lookups as f64;
    Ok((bytes as f64 / objects as f64, per_lookup))
}

/// Seconds until a follower of `group` has caught up with the label log into `ledger`.
async fn catch_up(log: &Arc<dyn Log>, ledger: &Ledger, group: &str) -> anyhow::Result<f64> {
    let (caught_up, mut said) = tokio::sync::watch::channel(false);
    let stop = tokio_util::sync::CancellationToken::new();
    let start = Instant::now();
    let follower =
        tokio::spawn(ledger::follow(Arc::clone(log), ledger.clone(), group.to_string(), caught_up, stop.clone()));
    said.wait_for(|c| *c).await?;
    let took = start.elapsed().as_secs_f64();
    stop.cancel();
    follower.await?;
    Ok(took)
}

/// A labeler's start with `outcomes` on the label log: (new ledger, restart) seconds.
fn restart(root: &Path, outcomes: usize) -> anyhow::Result<(f64, f64)> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(&root.join("follow/log.sqlite"))?);
        log.ensure_topic(topics::IMAGES_LABELED, 4, true).await?;
        for start in (0..outcomes).step_by(10_000) {
            let mut records = Vec::new();
            for i in start..(start + 10_000).min(outcomes) {
                let o = outcome(i);
                records.push(OutRecord::new(record_key(&o.bucket, &o.key), o.to_bytes()?));
            }
            log.produce(topics::IMAGES_LABELED, records).await?;
        }
        let ledger = Ledger::open(Some(&root.join("follow/ledger.sqlite")))?;
        let new = catch_up(&log, &ledger, "bench.ledger.1").await?;
        if ledger.totals()?.objects != outcomes as u64 {
            bail!("the new ledger holds {} objects of {outcomes}", ledger.totals()?.objects);
        }
        // A restart is a new process: a follower group of its own, the same ledger.
        let again = catch_up(&log, &ledger, "bench.ledger.2").await?;
        Ok((new, again))
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let images: usize = args.next().map_or(Ok(2000), |s| s.parse())?;
    let objects: usize = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let follow: usize = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let rows = corpus(root, images)?;

    let first = report(root, "2026-11-24T01-00Z", 1_732_410_000_000, &rows)?;
    let (first_run, labeled, _) = index(root, &first)?;
    if labeled != images as u64 {
        bail!("the first report labeled {labeled} of {images}:\n{}", first_run.stdout);
    }
    let second = report(root, "2026-11-25T01-00Z", 1_732_496_400_000, &rows)?;
    let (second_run, relabeled, unchanged) = index(root, &second)?;

    let (a, b) = (first_run.wall.as_secs_f64(), second_run.wall.as_secs_f64());
    println!("corpus: {images} photos (320 px JPEGs), one daily inventory report of them, then the next day's");
    println!("baseline, first report: {a:.1} s, {labeled} labeled, peak RSS {:.0} MiB", first_run.peak_rss_mib);
    println!(
        "second report, nothing changed: {b:.2} s, {relabeled} labeled, {unchanged} unchanged (not read), peak RSS {:.0} MiB",
        second_run.peak_rss_mib
    );
    println!("ratio second / first: {:.3}", b / a);

    let (bytes, lookup) = ledger(root, objects)?;
    let per_image = a / images as f64;
    println!("ledger at {objects} objects: {bytes:.1} bytes per object on disk");
    println!(
        "lookup: {:.1} µs per record, against {:.1} ms per image labeled in the first report (ratio {:.5})",
        lookup * 1e6,
        per_image * 1e3,
        lookup / per_image
    );

    let (new, again) = restart(root, follow)?;
    println!("baseline, a new ledger reads {follow} outcomes from the label log: {new:.2} s");
    println!("a restart with the same ledger catches up in {:.2} ms (ratio {:.5})", again * 1e3, again / new);
    Ok(())
}

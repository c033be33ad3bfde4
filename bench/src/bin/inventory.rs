//! Inventory backfill benchmark: `bucketlens produce inventory manifest.json` of an
//! S3 Inventory report of ROWS rows (gzipped CSV in FILES data files, AWS's layout)
//! into the embedded log, against its baseline in the same run: `zcat FILES | wc -l`,
//! the cost of merely decompressing and counting the same rows.
//!
//! Prints rows/s of both, the ratio, and the peak RSS of the producer at ROWS and at
//! ROWS/10 rows: constant memory means the two are about the same.
//!
//! Usage: cargo build --release --workspace && \
//!   target/release/bucketlens-bench-inventory [ROWS=100000] [FILES=4]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use bucketlens_bench::{bucketlens, run_sampled, Sampled};
use md5::{Digest, Md5};

fn hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a report of `rows` rows in `files` data files under `root` (as S3 writes it to
/// the destination bucket) and returns the manifest's path and the data files.
fn write_report(root: &Path, rows: usize, files: usize) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let data = root.join("inventory/photos/all/data");
    let report = root.join("inventory/photos/all/2026-11-24T01-00Z");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&report)?;
    let per_file = rows.div_ceil(files);
    let (mut entries, mut paths) = (Vec::new(), Vec::new());
    for f in 0..files {
        let key = format!("inventory/photos/all/data/part-{f:05}.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in (f * per_file)..((f + 1) * per_file).min(rows) {
            // Form-encoded keys, as S3 writes them: a space is '+', a slash %2F.
            writeln!(
                gz,
                "\"photos\",\"camera+roll%2F2026%2F{:02}%2FIMG_{i:07}.jpg\",\"{}\",\"2026-11-{:02}T10:00:00.000Z\",\"{}\"",
                i % 12 + 1,
                200_000 + i % 5_000_000,
                i % 28 + 1,
                hex(&i.to_le_bytes()),
            )?;
        }
        let bytes = gz.finish()?;
        let path = root.join(&key);
        std::fs::write(&path, &bytes)?;
        entries.push(serde_json::json!({ "key": key, "size": bytes.len(), "MD5checksum": hex(&bytes) }));
        paths.push(path);
    }
    let manifest = serde_json::json!({
        "sourceBucket": "photos",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "creationTimestamp": "1732410000000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": entries,
    });
    let text = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(report.join("manifest.json"), &text)?;
    std::fs::write(report.join("manifest.checksum"), format!("{}\n", hex(&text)))?;
    Ok((report.join("manifest.json"), paths))
}

/// `bucketlens produce inventory` of a fresh report of `rows` rows into a fresh log.
fn produce(tmp: &Path, name: &str, rows: usize, files: usize) -> anyhow::Result<(Sampled, Vec<PathBuf>)> {
    let (manifest, paths) = write_report(&tmp.join(name), rows, files)?;
    let mut command = Command::new(bucketlens()?);
    command.arg("--data-dir").arg(tmp.join(format!("{name}-data"))).args(["produce", "inventory"]).arg(&manifest);
    let run = run_sampled(command)?;
    let expected = format!("{rows} rows, produced {rows} upserts");
    if !run.stderr.contains(&expected) {
        bail!("expected \"{expected}\" from the producer, got:\n{}", run.stderr);
    }
    Ok((run, paths))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let files: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;

    let (small, _) = produce(tmp.path(), "small", rows / 10, files)?;
    let (full, paths) = produce(tmp.path(), "full", rows, files)?;
    let compressed: u64 = paths.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();

    let mut zcat = Command::new("sh");
    zcat.arg("-c").arg("zcat \"$@\" | wc -l").arg("sh").args(&paths);
    let start = Instant::now();
    let out = zcat.output().context("running zcat | wc -l")?;
    let baseline = start.elapsed();
    let counted: usize = String::from_utf8_lossy(&out.stdout).trim().parse().context("wc -l output")?;
    if counted != rows {
        bail!("zcat | wc -l counted {counted} rows, not {rows}");
    }

    let rate = rows as f64 / full.wall.as_secs_f64();
    let base_rate = rows as f64 / baseline.as_secs_f64();
    println!("report: {rows} rows in {files} gzipped CSV files ({:.1} MiB)", compressed as f64 / 1048576.0);
    println!(
        "bucketlens produce inventory (embedded log, incl. start-up, MD5 and gzip check): {:.2} s = {rate:.0} rows/s, peak RSS {:.0} MiB",
        full.wall.as_secs_f64(),
        full.peak_rss_mib
    );
    println!("baseline, zcat FILES | wc -l: {:.2} s = {base_rate:.0} rows/s", baseline.as_secs_f64());
    println!("ratio bucketlens / baseline: {:.2}", rate / base_rate);
    println!(
        "memory: peak RSS {:.0} MiB at {} rows, {:.0} MiB at {rows} rows (ratio {:.2})",
        small.peak_rss_mib,
        rows / 10,
        full.peak_rss_mib,
        full.peak_rss_mib / small.peak_rss_mib
    );
    Ok(())
}

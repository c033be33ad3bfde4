//! `bucketlens-bench-freshness [CHANGES=20]`: how soon a change is searchable, and
//! how much of a Rekognition quota the labeler uses. Figures the tests no longer
//! assert (a test asserts outcomes, not timings).
//!
//! 1. **Watch freshness.** `bucketlens index DIR --watch` on the 12 example photos;
//!    CHANGES times, a photo is added (time until `search` finds it) and then deleted
//!    (time until `search` no longer finds it). Prints p50 and p99 of each.
//!    **Baseline**: the same change followed by re-running `bucketlens index DIR` (what a
//!    user without `--watch` does, e.g. from cron), timed until it returns.
//!    Prints the ratio watch / re-run (below 1: `--watch` is fresher).
//! 2. **Rekognition quota use.** `bucketlens index` of 36 photos with the Rekognition
//!    labeler at `max-tps` = the quota, against the tests' stand-in for Rekognition
//!    (token bucket at the quota, AWS's documented response). **Baseline**: the quota.
//!    Prints calls/s, the ratio used / quota, and how many calls were throttled.

#[path = "../../../tests/common/http.rs"]
mod http;
#[path = "../../../tests/common/rekognition.rs"]
mod rekognition;
#[path = "../../../tests/common/sigv4.rs"]
mod sigv4;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bucketlens_bench::bucketlens;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos")
}

fn copy_examples(to: &Path, copies: usize) -> anyhow::Result<()> {
    for copy in 0..copies {
        let dir = if copies == 1 { to.to_path_buf() } else { to.join(format!("copy-{copy}")) };
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(examples())? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "png" || x == "jpg") {
                std::fs::copy(&path, dir.join(path.file_name().context("name")?))?;
            }
        }
    }
    Ok(())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(data: &Path, args: &[&str]) -> anyhow::Result<Command> {
    let mut command = Command::new(bucketlens()?);
    command.arg("--data-dir").arg(data).args(args);
    Ok(command)
}

/// Whether `search` finds `key` under `query`.
fn found(data: &Path, query: &str, key: &str) -> anyhow::Result<bool> {
    let out = command(data, &["search", query, "--json", "--limit", "1000"])?.output()?;
    // `index --watch` creates its index once the model is loaded.
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nothing has been indexed there") {
        return Ok(false);
    }
    if !out.status.success() {
        bail!("search failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let hits = v["hits"].as_array().cloned().unwrap_or_default();
    Ok(hits.iter().any(|h| h["key"] == key))
}

/// Polls until `done` (at most a minute); how long it took.
fn time_until(mut done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while !done()? {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("not within a minute");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len().saturating_sub(1))]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn watch_freshness(changes: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let photos = tmp.path().join("photos");
    copy_examples(&photos, 1)?;
    let cat = examples().join("chelsea.png");

    // Baseline: change, then re-run `index` until it returns.
    let rerun_data = tmp.path().join("rerun");
    let index = |data: &Path| -> anyhow::Result<()> {
        let out = command(data, &["index", photos.to_str().context("path")?])?.output()?;
        if !out.status.success() {
            bail!("index failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    index(&rerun_data)?;
    let mut rerun = Vec::new();
    for i in 0..changes.min(5) {
        let key = format!("rerun-{i}.png");
        std::fs::copy(&cat, photos.join(&key))?;
        let start = Instant::now();
        index(&rerun_data)?;
        rerun.push(start.elapsed());
        std::fs::remove_file(photos.join(&key))?;
        index(&rerun_data)?;
    }
    rerun.sort();

    // Measured: `index --watch`.
    let data = tmp.path().join("watch");
    let child = command(&data, &["index", photos.to_str().context("path")?, "--watch"])?
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _watch = Killed(child);
    time_until(|| found(&data, "cat", "chelsea.png"))?;
    let (mut added, mut deleted) = (Vec::new(), Vec::new());
    for i in 0..changes {
        let key = format!("new-{i}.png");
        std::fs::copy(&cat, photos.join(&key))?;
        added.push(time_until(|| found(&data, "cat", &key))?);
        std::fs::remove_file(photos.join(&key))?;
        deleted.push(time_until(|| found(&data, "cat", &key).map(|f| !f))?);
    }
    added.sort();
    deleted.sort();
    let rerun_p50 = percentile(&rerun, 0.5);
    println!(
        "watch freshness ({changes} changes; each figure includes one `search` process, ~{:.0} ms):",
        ms(search_cost(&data)?)
    );
    println!(
        "  add -> searchable:  p50 {:>6.0} ms  p99 {:>6.0} ms",
        ms(percentile(&added, 0.5)),
        ms(percentile(&added, 0.99))
    );
    println!(
        "  delete -> gone:     p50 {:>6.0} ms  p99 {:>6.0} ms",
        ms(percentile(&deleted, 0.5)),
        ms(percentile(&deleted, 0.99))
    );
    println!("  baseline, re-run `index` after the change: p50 {:>6.0} ms ({} runs)", ms(rerun_p50), rerun.len());
    println!("  ratio watch add p50 / re-run p50: {:.2}", ms(percentile(&added, 0.5)) / ms(rerun_p50));
    Ok(())
}

/// What one `search` process costs (it bounds the resolution of the figures above).
fn search_cost(data: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..5 {
        found(data, "cat", "chelsea.png")?;
    }
    Ok(start.elapsed() / 5)
}

fn rekognition_quota() -> anyhow::Result<()> {
    const QUOTA: f64 = 5.0;
    let fake = rekognition::FakeRekognition::start(QUOTA);
    let tmp = tempfile::tempdir()?;
    let photos = tmp.path().join("photos");
    copy_examples(&photos, 3)?;
    let out = command(&tmp.path().join("data"), &["index", photos.to_str().context("path")?])?
        .env("BUCKETLENS_LABELER__BACKEND", "rekognition")
        .env("BUCKETLENS_LABELER__REKOGNITION__MAX_TPS", QUOTA.to_string())
        .env("AWS_ENDPOINT_URL_REKOGNITION", fake.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()?;
    if !out.status.success() {
        bail!("index with Rekognition failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let calls = fake.calls();
    let ok: Vec<_> = calls.iter().filter(|c| c.status == 200).collect();
    if ok.len() < 2 {
        bail!("only {} successful calls", ok.len());
    }
    let span = ok[ok.len() - 1].at.duration_since(ok[0].at).as_secs_f64();
    let rate = (ok.len() - 1) as f64 / span;
    println!("Rekognition quota use ({} images, max-tps = quota = {QUOTA}):", ok.len());
    println!("  {rate:.2} calls/s, {} throttled; ratio used / quota: {:.2}", calls.len() - ok.len(), rate / QUOTA);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let changes: usize = std::env::args().nth(1).map_or(Ok(20), |a| a.parse())?;
    watch_freshness(changes)?;
    rekognition_quota()
}

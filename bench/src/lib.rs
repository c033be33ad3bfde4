//! Helpers shared by the benchmarks: running the real binary while sampling its
//! peak resident memory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The `bucketlens` binary beside the running benchmark (same target folder).
pub fn bucketlens() -> anyhow::Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("bucketlens");
    if !binary.exists() {
        bail!("{} is missing: run `cargo build --release --workspace` first", binary.display());
    }
    Ok(binary)
}

/// Peak resident memory of a running process, in MiB (VmHWM), if still readable.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// What one sampled run took.
pub struct Sampled {
    pub wall: Duration,
    pub peak_rss_mib: f64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to the end, sampling its peak RSS every 20 ms; fails if it fails.
pub fn run_sampled(mut command: Command) -> anyhow::Result<Sampled> {
    let what = format!("{command:?}");
    let start = Instant::now();
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    // Drain the pipes on their own threads, so a chatty child never blocks.
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(rss) = peak_rss_mib(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("{what} failed ({status}):\n{stderr}");
    }
    Ok(Sampled { wall, peak_rss_mib: peak, stdout, stderr })
}

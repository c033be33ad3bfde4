//! `bucketlens-fuzz [TARGET|all] [--seconds N] [--seed S] [--findings DIR]`
//!
//! Fuzzes each target for N seconds (default 600) from seed S (default 1), each in a
//! child process under an address-space limit (`prlimit --as`, 3 GiB), so a hang is
//! timed, a panic caught, and an abort (stack overflow, an allocation past the limit)
//! traced to its input: the child writes each input to a file before running it, and
//! the parent saves that file when the child dies, then starts a new child for the
//! rest of the time. Findings go to DIR (default `target/fuzz-findings`). Prints each
//! target's inputs, inputs/s, corpus and findings; exits 1 if anything was found.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bucketlens_fuzz::{fuzz, quiet_panics, target, targets, Budget, Finding};

const ADDRESS_SPACE: u64 = 3 << 30;
/// A target whose children die this often stops early: the cause is usually one.
const MAX_ABORTS: u32 = 10;

struct Args {
    target: String,
    seconds: u64,
    seed: u64,
    findings: PathBuf,
    child: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        target: "all".into(),
        seconds: 600,
        seed: 1,
        findings: PathBuf::from("target/fuzz-findings"),
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => args.seconds = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--findings" => args.findings = value()?.into(),
            "--child" => args.child = Some(value()?.into()),
            name if !name.starts_with('-') => args.target = name.to_string(),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(args)
}

fn save(dir: &Path, name: &str, input: &[u8], why: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let n = std::fs::read_dir(dir)?.count();
    let path = dir.join(format!("{name}-{n}.bin"));
    std::fs::write(&path, input)?;
    std::fs::write(path.with_extension("txt"), why)?;
    Ok(path)
}

/// The child: fuzz one target, writing each input to `current` first; print the
/// report as `key=value` words, and save its findings.
fn child(args: &Args, current: &Path) -> anyhow::Result<()> {
    let target = target(&args.target).with_context(|| format!("no target {}", args.target))?;
    quiet_panics();
    let file = File::create(current)?;
    let report = fuzz(&target, args.seed, Budget::Time(Duration::from_secs(args.seconds)), |input| {
        let _ = file.set_len(0).and_then(|()| file.write_all_at(input, 0));
    });
    for finding in &report.findings {
        let (kind, why, input) = match finding {
            Finding::Panic { message, input } => ("panic", message.clone(), input),
            Finding::Slow { millis, input } => ("slow", format!("took {millis} ms"), input),
        };
        let path = save(&args.findings.join(target.name), kind, input, &why)?;
        eprintln!("{}: {kind}: {why} ({})", target.name, path.display());
    }
    println!(
        "inputs={} seconds={:.1} corpus={} signatures={} findings={}",
        report.inputs,
        report.elapsed.as_secs_f64(),
        report.corpus,
        report.signatures,
        report.findings.len()
    );
    Ok(())
}

fn word(report: &str, key: &str) -> f64 {
    report.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok()).unwrap_or(0.0)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    if let Some(current) = &args.child {
        return child(&args, current);
    }
    let names: Vec<&str> = match args.target.as_str() {
        "all" => targets().iter().map(|t| t.name).collect(),
        one => vec![target(one).with_context(|| format!("no target {one}"))?.name],
    };
    let me = std::env::current_exe()?;
    let mut found = 0;
    println!("| target | inputs | inputs/s | corpus | outcome signatures | findings |");
    println!("|---|---|---|---|---|---|");
    for name in names {
        let current = std::env::temp_dir().join(format!("bucketlens-fuzz-{}-{name}.current", std::process::id()));
        let start = Instant::now();
        let (mut inputs, mut corpus, mut signatures, mut findings) = (0.0, 0.0, 0.0, 0.0);
        let mut seed = args.seed;
        let mut aborts = 0;
        while start.elapsed().as_secs() < args.seconds && aborts < MAX_ABORTS {
            let left = args.seconds - start.elapsed().as_secs();
            let output = Command::new("prlimit")
                .arg(format!("--as={ADDRESS_SPACE}"))
                .arg("--")
                .arg(&me)
                .arg(name)
                .args(["--seconds", &left.max(1).to_string(), "--seed", &seed.to_string(), "--findings"])
                .arg(&args.findings)
                .arg("--child")
                .arg(&current)
                .output()
                .context("running prlimit (util-linux)")?;
            let report = String::from_utf8_lossy(&output.stdout);
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            if output.status.success() {
                inputs += word(&report, "inputs");
                corpus = word(&report, "corpus");
                signatures = word(&report, "signatures");
                findings += word(&report, "findings");
                break;
            }
            // The child died on the input it was running: keep it, and go on.
            let input = std::fs::read(&current).unwrap_or_default();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = format!("the process died ({}): {}", output.status, stderr.lines().last().unwrap_or(""));
            let path = save(&args.findings.join(name), "abort", &input, &why)?;
            eprintln!("{name}: abort: {why} ({})", path.display());
            findings += 1.0;
            aborts += 1;
            seed += 1;
        }
        let _ = std::fs::remove_file(&current);
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "| {name} | {inputs:.0} | {:.0} | {corpus:.0} | {signatures:.0} | {findings:.0} |",
            inputs / seconds.max(1e-9)
        );
        found += findings as u64;
    }
    if found > 0 {
        bail!("{found} findings under {}", args.findings.display());
    }
    Ok(())
}

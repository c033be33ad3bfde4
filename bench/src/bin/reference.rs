//! bucketlens against the script a user would write instead (`bench/reference/
//! reference.py`: Python, Pillow's draft decode, onnxruntime, two processes), on the
//! same model, the same pre-processing and the same corpora, in one run.
//!
//! The reference's tools (onnxruntime, Pillow, numpy, pinned) are installed by this
//! benchmark into a cached venv, `~/.cache/bucketlens/tools/bench-reference-1`.
//! Printed per corpus: images/s of `bucketlens index` (the default settings, and the
//! classifier alone, `labeler.faces = false` and `labeler.objects = false`, which does
//! what the script does) and of
//! the script, and the ratios.
//!
//! Usage: target/release/bucketlens-bench-reference [COPIES=20] [LARGE=20] [LARGE_ONLY=200]
//!   corpus 1: COPIES copies of the examples + LARGE 12 MP JPEGs; corpus 2: LARGE_ONLY
//!   12 MP JPEGs.

use std::path::Path;
use std::process::Command;

use anyhow::bail;
use bucketlens_bench::{bucketlens, make_corpus, reference_python, repository, run_sampled};

fn rate(images: usize, run: &bucketlens_bench::Sampled) -> f64 {
    images as f64 / run.wall.as_secs_f64()
}

fn compare(name: &str, corpus: &Path, images: usize, python: &Path, tmp: &Path) -> anyhow::Result<()> {
    let model = repository().join("models/efficientnet-lite0/model.onnx");
    let labels = repository().join("models/efficientnet-lite0/labels.json");
    let out = tmp.join(format!("{name}.jsonl"));
    let mut script = Command::new(python);
    script.arg(repository().join("bench/reference/reference.py")).arg(&model).arg(&labels).arg(corpus).arg(&out);
    let reference = run_sampled(script)?;
    let lines = std::fs::read_to_string(&out)?.lines().filter(|l| !l.contains("\"error\"")).count();
    if lines != images {
        bail!("the reference labeled {lines} of {images} images");
    }
    let mut results = Vec::new();
    // The defaults (faces and objects on), the classifier alone (what the script does), and the classifier
    // alone on tract (the engine before ONNX Runtime, and the fallback).
    for (faces, engine) in [(true, "auto"), (false, "auto"), (false, "tract")] {
        let mut index = Command::new(bucketlens()?);
        index.arg("--data-dir").arg(tmp.join(format!("data-{name}-{faces}-{engine}"))).arg("index").arg(corpus);
        index.env("BUCKETLENS_LABELER__FACES", faces.to_string()).env("BUCKETLENS_LABELER__ENGINE", engine);
        index.env("BUCKETLENS_LABELER__OBJECTS", faces.to_string());
        let run = run_sampled(index)?;
        let runs_on = run.stderr.lines().find_map(|l| l.split_once(" on ").filter(|_| l.starts_with("labeling with ")));
        let runs_on = runs_on.map_or("?".to_string(), |(_, e)| e.to_string());
        results.push((faces, runs_on, rate(images, &run), run.peak_rss_mib));
    }
    let reference_rate = rate(images, &reference);
    println!("{name}: {images} images");
    println!("  baseline, the Python reference (2 processes): {reference_rate:.1} images/s");
    for (faces, runs_on, r, rss) in results {
        let what =
            if faces { "bucketlens index (defaults: faces, objects)" } else { "bucketlens index, classifier alone" };
        println!(
            "  {what} on {runs_on}: {r:.1} images/s, peak RSS {rss:.0} MiB; ratio to the reference {:.2}",
            r / reference_rate
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let copies = args.next().unwrap_or(Ok(20))?;
    let large = args.next().unwrap_or(Ok(20))?;
    let large_only = args.next().unwrap_or(Ok(200))?;
    let python = reference_python()?;
    let tmp = tempfile::tempdir()?;
    let bench_corpus = tmp.path().join("bench-corpus");
    let images = make_corpus(&bench_corpus, copies, large)?;
    compare("bench corpus", &bench_corpus, images, &python, tmp.path())?;
    let photos = tmp.path().join("photos-12mp");
    let images = make_corpus(&photos, 0, large_only)?;
    compare("12 MP photos", &photos, images, &python, tmp.path())?;
    Ok(())
}

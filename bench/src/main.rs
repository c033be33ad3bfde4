//! End-to-end benchmark of `bucketlens index` on a corpus made from the example
//! photos, against its baseline measured in the same run: the model-only ceiling
//! (inference on pre-decoded tensors, same number of threads, no IO, no decoding, no
//! log, no index). Prints images/s, wall time, peak RSS and the ratio; and the same
//! run with faces off (`labeler.faces = false`), with the object detector off
//! (`labeler.objects = false`), and with both off (the classifier alone), each with
//! its ratio to the classifier alone: what each detector costs.
//!
//! Usage: cargo build --release --workspace && target/release/bucketlens-bench [COPIES] [LARGE]
//!   COPIES (default 20): copies of the 12 example photos;
//!   LARGE (default 20): extra 12 MP (4000x3000) JPEGs re-encoded from the photos.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bucketlens_bench::{bucketlens, example_files, make_corpus, run_sampled, Sampled};
use bucketlens_labeler::image::prepare;
use bucketlens_labeler::onnx::{OnnxLabeler, OnnxOptions};

fn end_to_end(binary: &Path, corpus: &Path, data: &Path, faces: bool, objects: bool) -> anyhow::Result<Sampled> {
    let mut command = Command::new(binary);
    command.arg("--data-dir").arg(data).arg("index").arg(corpus);
    command.env("BUCKETLENS_LABELER__FACES", faces.to_string());
    command.env("BUCKETLENS_LABELER__OBJECTS", objects.to_string());
    let run = run_sampled(command)?;
    print!("{}", run.stdout);
    Ok(run)
}

/// The ceiling: model inference alone on pre-decoded inputs, `threads` at a time.
fn model_only(images: usize, threads: usize) -> anyhow::Result<Duration> {
    let options = OnnxOptions {
        threads,
        min_confidence: 50.0,
        max_labels: 20,
        max_pixels: 100_000_000,
        faces: None,
        objects: None,
        detector: None,
        ..OnnxOptions::default()
    };
    let labeler = Arc::new(OnnxLabeler::load(None, &options)?);
    let mut tensors = Vec::new();
    for f in example_files()? {
        let bytes = std::fs::read(&f)?;
        tensors.push(prepare(&bytes, 100_000_000).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?.tensor);
    }
    let tensors = Arc::new(tensors);
    let start = Instant::now();
    let mut workers = Vec::new();
    for t in 0..threads {
        let (labeler, tensors) = (Arc::clone(&labeler), Arc::clone(&tensors));
        workers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            for i in (t..images).step_by(threads) {
                labeler.probabilities(tensors[i % tensors.len()].clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        }));
    }
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(start.elapsed())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let copies: usize = args.next().map_or(Ok(20), |s| s.parse())?;
    let large: usize = args.next().map_or(Ok(20), |s| s.parse())?;
    let binary = bucketlens()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tmp = tempfile::tempdir()?;
    let corpus = tmp.path().join("corpus");
    let images = make_corpus(&corpus, copies, large)?;
    println!("corpus: {images} images ({copies} x 12 examples + {large} 12 MP JPEGs), {threads} threads");

    // Each setting in its own data dir: (what, faces, objects).
    let settings = [
        ("defaults (classifier + faces + objects)", true, true),
        ("classifier and objects (labeler.faces = false)", false, true),
        ("classifier and faces (labeler.objects = false)", true, false),
        ("classifier only (labeler.faces = false, labeler.objects = false)", false, false),
    ];
    let mut runs = Vec::new();
    for (i, (what, faces, objects)) in settings.iter().enumerate() {
        let run = end_to_end(&binary, &corpus, &tmp.path().join(format!("data-{i}")), *faces, *objects)?;
        runs.push((what, images as f64 / run.wall.as_secs_f64(), run));
    }
    let ceiling = model_only(images, threads)?;
    let ceiling_rate = images as f64 / ceiling.as_secs_f64();
    let (_, e2e_rate, e2e) = &runs[0];
    let classifier_rate = runs[runs.len() - 1].1;
    println!();
    println!("end to end (bucketlens index, incl. model load): {images} images in {:.2} s = {e2e_rate:.1} images/s, peak RSS {:.0} MiB", e2e.wall.as_secs_f64(), e2e.peak_rss_mib);
    println!(
        "baseline, model-only ceiling (pre-decoded tensors): {images} in {:.2} s = {ceiling_rate:.1} images/s",
        ceiling.as_secs_f64()
    );
    println!("ratio end-to-end / model-only: {:.2}", e2e_rate / ceiling_rate);
    for (what, rate, run) in &runs {
        println!(
            "{what}: {rate:.1} images/s, peak RSS {:.0} MiB, ratio to the classifier only {:.2}",
            run.peak_rss_mib,
            rate / classifier_rate
        );
    }
    Ok(())
}

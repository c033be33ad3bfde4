//! What reading the words in photos costs (`labeler.text`, PP-OCRv4), against the
//! labeler without it and against PP-OCR's own Python runner.
//!
//! 1. **Labeling.** The local labeler at its defaults on 2 threads, text off (the
//!    baseline) and on, in turns, ROUNDS rounds, on two corpora: the example photos
//!    (no words: the cost where it finds nothing), and a corpus where a third of
//!    the photos have words (`models/ppocr/testset.py`'s first 6 beside the 12
//!    example photos). Images/s, the median ratio, and core-ms per image.
//! 2. **The reference.** `rapidocr-onnxruntime` 1.4.4 (the same three models, its
//!    own pre- and post-processing in Python and OpenCV, on ONNX Runtime), on 2
//!    threads, over the same mixed corpus: OCR alone, against bucketlens' whole
//!    labeling with text on and against what text adds to it.
//! 3. Peak RSS of this process (both labelers).
//!
//! Usage: target/release/bucketlens-bench-text [ROUNDS=5]
//! Needs PP-OCR's models (`models/ppocr/fetch`, which scripts/setup runs), a Python
//! with Pillow ($MODEL_PYTHON, or python3) and DejaVu fonts for the test set; the
//! reference's venv (`~/.cache/bucketlens/tools/bench-rapidocr-1`) is made once.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use bucketlens_labeler::local::{LocalLabeler, LocalOptions};

/// The reference's Python script: OCR of each file named on stdin, timed.
const REFERENCE: &str = r#"
import sys, time
from rapidocr_onnxruntime import RapidOCR
ocr = RapidOCR(intra_op_num_threads=2, inter_op_num_threads=1)
files = sys.argv[1:]
ocr(files[0])  # loads and warms
start = time.perf_counter()
for f in files:
    ocr(f)
print(len(files) / (time.perf_counter() - start))
"#;

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(5), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let python = std::env::var("MODEL_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = bucketlens_bench::repository().join("models/ppocr/testset.py");
    let rendered = dir.path().join("testset");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&rendered)
        .arg(bucketlens_bench::examples())
        .arg(dir.path().join("truth.json"))
        .output()
        .with_context(|| format!("running {python}"))?;
    anyhow::ensure!(out.status.success(), "testset.py: {}", String::from_utf8_lossy(&out.stderr));
    let photos = bucketlens_bench::example_files()?;
    let with_words: Vec<PathBuf> = (0..6).map(|i| rendered.join(format!("text-{i:02}.jpg"))).collect();
    let mixed: Vec<PathBuf> = photos.iter().cloned().chain(with_words).collect();
    let read = |files: &[PathBuf]| -> anyhow::Result<Vec<Vec<u8>>> {
        files.iter().map(|f| std::fs::read(f).with_context(|| f.display().to_string())).collect()
    };
    let plain: Vec<Vec<u8>> = read(&photos)?.into_iter().flat_map(|b| [b.clone(), b]).collect();
    let mixed_bytes = read(&mixed)?;

    let runtime = tokio::runtime::Runtime::new()?;
    let options = |text: bool| LocalOptions { threads: 2, text: text.then_some(80.0), ..LocalOptions::default() };
    let off = LocalLabeler::load(None, &options(false))?;
    let on = LocalLabeler::load(None, &options(true)).context("models/ppocr/fetch installs PP-OCR's models")?;
    println!("engine: {}", on.engine().describe());
    let run = |l: &LocalLabeler, corpus: &[Vec<u8>]| bucketlens_bench::images_per_second(&runtime, l, corpus);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut with_text_mixed = 0.0;
    let mut added_mixed = 0.0;
    for (name, corpus) in [("the example photos (no words), twice", &plain), ("a third with words", &mixed_bytes)] {
        println!("\n1. labeling {name}: the defaults on 2 threads, {} images a run", corpus.len());
        let (mut base, mut with) = (Vec::new(), Vec::new());
        bucketlens_bench::in_turns(
            rounds,
            "text",
            || run(&off, corpus).inspect(|r| base.push(*r)),
            || run(&on, corpus).inspect(|r| with.push(*r)),
        )?;
        let (base, with) = bucketlens_bench::print_medians(&mut base, &mut with);
        with_text_mixed = with;
        added_mixed = 2000.0 / with - 2000.0 / base;
    }

    println!("\n2. the reference: rapidocr-onnxruntime 1.4.4 on 2 threads, the corpus a third with words");
    let reference = reference_python()?;
    let mut speeds = Vec::new();
    for _ in 0..rounds.clamp(1, 3) {
        let out = Command::new(&reference).arg("-c").arg(REFERENCE).args(&mixed).output()?;
        anyhow::ensure!(out.status.success(), "the reference: {}", String::from_utf8_lossy(&out.stderr));
        speeds.push(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>()?);
    }
    let reference_speed = median(&mut speeds);
    println!(
        "reference OCR alone: {reference_speed:.1} images/s ({:.1} core-ms an image); bucketlens' whole labeling \
         with text: {with_text_mixed:.1} images/s, ratio {:.2}; what text adds to bucketlens: {added_mixed:.1} \
         core-ms an image, ratio {:.2} of the reference's",
        2000.0 / reference_speed,
        with_text_mixed / reference_speed,
        added_mixed / (2000.0 / reference_speed)
    );
    if let Some(peak) = bucketlens_bench::peak_rss_mib(std::process::id()) {
        println!("\n3. peak RSS of this process (both labelers): {peak:.0} MiB");
    }
    Ok(())
}

/// The Python of a venv with `rapidocr-onnxruntime` 1.4.4 (and what it pulls in:
/// onnxruntime, opencv-python, pyclipper, shapely), made once.
fn reference_python() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = Path::new(&home).join(".cache/bucketlens/tools/bench-rapidocr-1");
    let python = venv.join("bin/python");
    let ready = Command::new(&python).args(["-c", "import rapidocr_onnxruntime"]).status().is_ok_and(|s| s.success());
    if !ready {
        eprintln!("installing rapidocr-onnxruntime 1.4.4 for the reference (a minute, once)");
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?;
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "rapidocr-onnxruntime==1.4.4", "onnxruntime==1.32.0"])
            .status()?;
        anyhow::ensure!(
            made.success() && installed.success(),
            "could not install the reference into {}",
            venv.display()
        );
    }
    Ok(python)
}

//! What search by meaning costs: a CLIP-class embedder (`labeler.embedder`) of
//! ViT-B/32's shape and compute, with random weights (no real weights can be fetched
//! here; `models/clip/synthetic.py vit-b32` builds them: the same layers, widths and
//! token counts, so the same work for the engine).
//!
//! 1. **Labeling.** The local labeler at its defaults on 2 threads, without an
//!    embedder (the baseline: the classifier's own features) and with it, in turns,
//!    ROUNDS rounds over the example photos: images/s, the median ratio, and what the
//!    embedder adds per image in core-milliseconds.
//! 2. **The towers alone**, on one thread: the image tower's run on a prepared input,
//!    and the text tower's encoding of a phrase (what a search by meaning waits for).
//! 3. Peak RSS of this process.
//!
//! Usage: target/release/bucketlens-bench-meaning [ROUNDS=5]
//! Needs a Python with onnx and numpy: $MODEL_PYTHON (scripts/test-servers installs
//! one) or python3.

use std::time::Instant;

use anyhow::Context;
use bucketlens_labeler::analyzers::embedder::{ImageTower, TextTower};
use bucketlens_labeler::engine::{Engine, EngineChoice};
use bucketlens_labeler::local::{LocalLabeler, LocalOptions};
use bucketlens_labeler::models;

const NAME: &str = "clip-vit-b32-synthetic";

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(5), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let python = std::env::var("MODEL_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = bucketlens_bench::repository().join("models/clip/synthetic.py");
    println!("building a ViT-B/32-shaped pair with random weights ({})", script.display());
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args(["vit-b32", NAME, dir.path().to_str().context("path")?])
        .output()
        .with_context(|| format!("running {python}"))?;
    anyhow::ensure!(out.status.success(), "synthetic.py: {}", String::from_utf8_lossy(&out.stderr));
    // Installed as `models fetch` would leave it: the entry beside the files.
    std::fs::write(dir.path().join(NAME).join(models::MANIFEST), &out.stdout)?;
    std::env::set_var("BUCKETLENS_MODELS_DIR", dir.path());
    let model = models::installed(NAME).map_err(anyhow::Error::msg)?;

    let runtime = tokio::runtime::Runtime::new()?;
    let photos = bucketlens_bench::example_files()?;
    let corpus: Vec<Vec<u8>> = photos
        .iter()
        .map(std::fs::read)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flat_map(|b| [b.clone(), b])
        .collect();
    let options = |embedder: Option<&str>| LocalOptions {
        threads: 2,
        embedder: embedder.map(String::from),
        ..LocalOptions::default()
    };
    let off = LocalLabeler::load(None, &options(None))?;
    let on = LocalLabeler::load(None, &options(Some(NAME)))?;
    println!("engine: {}", on.engine().describe());
    let run = |l: &LocalLabeler| bucketlens_bench::images_per_second(&runtime, l, &corpus);
    println!("\n1. labeling: the defaults on 2 threads, {} images a run", corpus.len());
    let (mut base, mut with) = (Vec::new(), Vec::new());
    bucketlens_bench::in_turns(
        rounds,
        "embedder",
        || run(&off).inspect(|r| base.push(*r)),
        || run(&on).inspect(|r| with.push(*r)),
    )?;
    bucketlens_bench::print_medians(&mut base, &mut with);

    println!("\n2. the towers alone, one thread");
    let engine = Engine::resolve(EngineChoice::Auto, None)?;
    let image = ImageTower::load(&engine, &model, 1)?;
    let rgb = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let time = |n: usize, f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        f()?; // the first run prepares what it keeps
        let start = Instant::now();
        for _ in 0..n {
            f()?;
        }
        Ok(start.elapsed().as_secs_f64() * 1000.0 / n as f64)
    };
    let ms = time(10, &mut || image.embed(&rgb).map(drop).map_err(|e| anyhow::anyhow!("{e}")))?;
    println!("image tower: {ms:.1} ms a run (ViT-B/32's shape)");
    let text = TextTower::load(&engine, &model)?;
    let started = Instant::now();
    drop(TextTower::load(&engine, &model)?);
    let load = started.elapsed().as_secs_f64();
    let phrases = ["a rocket launch at night", "a cat on a sofa", "receipts", "the beach at sunset in winter"];
    let mut k = 0;
    let ms = time(20, &mut || {
        k += 1;
        text.embed(phrases[k % phrases.len()]).map(drop).map_err(anyhow::Error::msg)
    })?;
    println!("text tower: {ms:.1} ms a phrase, loaded in {load:.1} s (once per searching process)");
    if let Some(peak) = bucketlens_bench::peak_rss_mib(std::process::id()) {
        println!("\n3. peak RSS of this process (both labelers, both towers): {peak:.0} MiB");
    }
    Ok(())
}

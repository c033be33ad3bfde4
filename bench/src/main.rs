//! End-to-end benchmark of `bucketlens index` on a corpus made from the example
//! photos, against its baselines measured in the same run: the model-only ceilings
//! (same number of threads, no IO, no decoding, no log, no index): the classifier on
//! pre-decoded tensors, and the default models (classifier, faces, objects) on
//! pre-decoded images. Prints images/s, wall time, peak RSS and the ratios; and the
//! same run with faces off (`labeler.faces = false`), with the object detector off
//! (`labeler.objects = false`), and with both off (the classifier alone), each with
//! its ratio to the classifier alone: what each detector costs. Also how long a run
//! takes with nothing to label (start-up, model load, index), and the rates and
//! ratios with that fixed cost taken off.
//!
//! Usage: cargo build --release --workspace && target/release/bucketlens-bench [COPIES] [LARGE]
//!   COPIES (default 20): copies of the 12 example photos;
//!   LARGE (default 20): extra 12 MP (4000x3000) JPEGs re-encoded from the photos.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bucketlens_bench::{bucketlens, example_files, make_corpus, run_sampled, Sampled};
use bucketlens_labeler::analyzers::faces::Faces;
use bucketlens_labeler::analyzers::objects::{self, Objects};
use bucketlens_labeler::image::{decode, prepare, resize_short_side, to_tensor_sized, INPUT_SIZE};
use bucketlens_labeler::local::{LocalLabeler, LocalOptions, Sessions};

fn end_to_end(binary: &Path, corpus: &Path, data: &Path, faces: bool, objects: bool) -> anyhow::Result<Sampled> {
    with_metadata(binary, corpus, data, faces, objects, true)
}

fn with_metadata(
    binary: &Path,
    corpus: &Path,
    data: &Path,
    faces: bool,
    objects: bool,
    metadata: bool,
) -> anyhow::Result<Sampled> {
    let mut command = Command::new(binary);
    command.arg("--data-dir").arg(data).arg("index").arg(corpus);
    command.env("BUCKETLENS_LABELER__FACES", faces.to_string());
    command.env("BUCKETLENS_LABELER__OBJECTS", objects.to_string());
    command.env("BUCKETLENS_LABELER__METADATA__ENABLED", metadata.to_string());
    let run = run_sampled(command)?;
    print!("{}", run.stdout);
    Ok(run)
}

/// `images` runs of `work` (given the image's index), `threads` at a time: the wall time.
fn timed<W: Fn(usize) -> anyhow::Result<()> + Send + Sync + 'static>(
    images: usize,
    threads: usize,
    work: W,
) -> anyhow::Result<Duration> {
    let work = Arc::new(work);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let work = Arc::clone(&work);
            std::thread::spawn(move || (t..images).step_by(threads).try_for_each(|i| work(i)))
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(start.elapsed())
}

/// The ceiling of the default models: the classifier, the face detector and the object
/// detector on each example photo decoded beforehand (at the size the labeler decodes
/// it to), as the labeler runs them after its decode: each detector's own resize and
/// box decoding included, the file's decoding not.
fn default_models_only(images: usize, threads: usize) -> anyhow::Result<Duration> {
    let defaults = LocalOptions::default();
    // Objects on, as in the defaults, so that the classifier has the sessions it has
    // there; the labeler's own detectors are not run here.
    let options = LocalOptions { threads, faces: None, detector: None, ..LocalOptions::default() };
    let labeler = LocalLabeler::load(None, &options)?;
    let engine = labeler.engine().clone();
    let sessions = Sessions::new(threads, true);
    let faces = Faces::load(&engine, sessions.faces, defaults.faces.unwrap_or(60.0))?;
    let objects = Objects::load(&engine, sessions.objects, defaults.objects.unwrap_or(50.0))?;
    let side = resize_short_side(INPUT_SIZE).max(objects::SIDE);
    let mut decoded = Vec::new();
    for f in example_files()? {
        let bytes = std::fs::read(&f)?;
        decoded.push(decode(&bytes, 100_000_000, side).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?.0);
    }
    let fail = |e: bucketlens_labeler::LabelFailure| anyhow::anyhow!("{e}");
    timed(images, threads, move |i| {
        let rgb = &decoded[i % decoded.len()];
        labeler.probabilities(to_tensor_sized(rgb, INPUT_SIZE).map_err(fail)?).map_err(fail)?;
        faces.detect(rgb).map_err(fail)?;
        objects.detect(rgb).map_err(fail)?;
        Ok(())
    })
}

/// The ceiling: model inference alone on pre-decoded inputs, `threads` at a time.
fn model_only(images: usize, threads: usize) -> anyhow::Result<Duration> {
    let options = LocalOptions {
        threads,
        min_confidence: 50.0,
        max_labels: 20,
        max_pixels: 100_000_000,
        faces: None,
        objects: None,
        detector: None,
        ..LocalOptions::default()
    };
    let labeler = LocalLabeler::load(None, &options)?;
    let mut tensors = Vec::new();
    for f in example_files()? {
        let bytes = std::fs::read(&f)?;
        tensors.push(prepare(&bytes, 100_000_000).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?.tensor);
    }
    timed(images, threads, move |i| {
        labeler.probabilities(tensors[i % tensors.len()].clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    })
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
    // The photo metadata reader: the defaults without it, end to end; and the reader
    // alone on every file of the corpus, in this process, one thread.
    // Side by side, warm alike (the first run above paid for a cold page cache).
    let again = with_metadata(&binary, &corpus, &tmp.path().join("data-metadata"), true, true, true)?;
    let again_rate = images as f64 / again.wall.as_secs_f64();
    let without = with_metadata(&binary, &corpus, &tmp.path().join("data-no-metadata"), true, true, false)?;
    let without_rate = images as f64 / without.wall.as_secs_f64();
    // The place table: read once, on the first photo with a GPS position (before the
    // reader's loops below, which would load it), then one lookup a photo; its memory
    // is this process's resident memory before and after.
    let before_table = bucketlens_bench::rss_mib(std::process::id()).unwrap_or(0.0);
    let start = Instant::now();
    let table = bucketlens_labeler::metadata::places::table();
    let table_load = start.elapsed();
    let table_mib = bucketlens_bench::rss_mib(std::process::id()).unwrap_or(0.0) - before_table;
    let lookups = 100_000;
    let start = Instant::now();
    let mut named = 0;
    for i in 0..lookups {
        // Positions spread over the inhabited latitudes, by a fixed sequence.
        let (lat, lon) = (-45.0 + (i as f64 * 0.618_034 % 1.0) * 110.0, -180.0 + (i as f64 * 0.414_214 % 1.0) * 360.0);
        named += usize::from(table.name(lat, lon).is_some());
    }
    let lookup = start.elapsed().as_secs_f64() / lookups as f64;
    let files: Vec<Vec<u8>> = walk(&corpus)?.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let options = bucketlens_labeler::metadata::MetadataOptions::default();
    let start = Instant::now();
    let mut found = 0;
    for bytes in &files {
        found += usize::from(bucketlens_labeler::metadata::read(bytes, &options, &mut Vec::new()).is_some());
    }
    let with_metadata_files = found;
    let reader = start.elapsed().as_secs_f64() / files.len().max(1) as f64;
    // The tagged examples: EXIF, XMP and all, read 1,000 times each.
    let tagged_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tagged");
    let tagged: Vec<Vec<u8>> = walk(&tagged_dir)?
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    for _ in 0..1000 {
        for bytes in &tagged {
            std::hint::black_box(bucketlens_labeler::metadata::read(bytes, &options, &mut Vec::new()));
        }
    }
    let tagged_reader = start.elapsed().as_secs_f64() / (1000 * tagged.len().max(1)) as f64;
    let ceiling = model_only(images, threads)?;
    let ceiling_rate = images as f64 / ceiling.as_secs_f64();
    let defaults_ceiling = default_models_only(images, threads)?;
    let defaults_ceiling_rate = images as f64 / defaults_ceiling.as_secs_f64();
    // What a run costs with nothing to label (start, model load, index open and
    // close): a fixed cost that a large bucket spreads thin, taken off for the steady
    // rate.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty)?;
    let fixed = |i: usize, faces: bool, objects: bool| -> anyhow::Result<f64> {
        Ok(end_to_end(&binary, &empty, &tmp.path().join(format!("data-empty-{i}")), faces, objects)?.wall.as_secs_f64())
    };
    let steady = |run: &Sampled, fixed: f64| images as f64 / (run.wall.as_secs_f64() - fixed).max(f64::EPSILON);
    let (_, e2e_rate, e2e) = &runs[0];
    let (_, classifier_rate, classifier_run) = &runs[runs.len() - 1];
    let classifier_rate = *classifier_rate;
    let (defaults_fixed, classifier_fixed) = (fixed(0, true, true)?, fixed(3, false, false)?);
    let defaults_steady = steady(e2e, defaults_fixed);
    let classifier_steady = steady(classifier_run, classifier_fixed);
    println!();
    println!("end to end (bucketlens index, incl. model load): {images} images in {:.2} s = {e2e_rate:.1} images/s, peak RSS {:.0} MiB", e2e.wall.as_secs_f64(), e2e.peak_rss_mib);
    println!(
        "baseline, model-only ceiling (pre-decoded tensors): {images} in {:.2} s = {ceiling_rate:.1} images/s",
        ceiling.as_secs_f64()
    );
    println!("ratio end-to-end / model-only: {:.2}", e2e_rate / ceiling_rate);
    println!(
        "baseline, the default models only (classifier, faces, objects on pre-decoded images): {images} in {:.2} s = \
         {defaults_ceiling_rate:.1} images/s",
        defaults_ceiling.as_secs_f64()
    );
    println!("ratio defaults end-to-end / default models only: {:.2}", e2e_rate / defaults_ceiling_rate);
    println!("ratio classifier only end-to-end / classifier model only: {:.2}", classifier_rate / ceiling_rate);
    println!(
        "with nothing to label, a run takes {defaults_fixed:.2} s with the defaults and {classifier_fixed:.2} s with \
         the classifier only; without it:"
    );
    println!(
        "  defaults {defaults_steady:.1} images/s, ratio to the default models only {:.2}",
        defaults_steady / defaults_ceiling_rate
    );
    println!(
        "  classifier only {classifier_steady:.1} images/s, ratio to the classifier model only {:.2}",
        classifier_steady / ceiling_rate
    );
    let defaults_rate = runs[0].1;
    println!(
        "defaults without photo metadata (labeler.metadata.enabled = false): {without_rate:.1} images/s, peak RSS \
         {:.0} MiB; the defaults with it, run just before: {again_rate:.1} images/s, peak RSS {:.0} MiB: ratio with / \
         without {:.3}",
        without.peak_rss_mib,
        again.peak_rss_mib,
        again_rate / without_rate
    );
    println!(
        "the metadata reader alone: {:.3} ms an image ({} of {} files with metadata), {:.2}% of a labeled \
         image's CPU time at the defaults' rate on {threads} threads",
        reader * 1000.0,
        with_metadata_files,
        files.len(),
        100.0 * reader / (threads as f64 / defaults_rate)
    );
    println!(
        "the metadata reader on a fully tagged photo (examples/tagged): {:.3} ms, {:.2}% of a labeled image's CPU time",
        tagged_reader * 1000.0,
        100.0 * tagged_reader / (threads as f64 / defaults_rate)
    );
    println!(
        "the place table ({} places): read in {:.0} ms once, {:.0} MiB; a lookup {:.1} µs ({named} of {lookups} \
         positions over land and sea named), {:.3}% of a labeled image's CPU time",
        table.len(),
        table_load.as_secs_f64() * 1000.0,
        table_mib,
        lookup * 1e6,
        100.0 * lookup / (threads as f64 / defaults_rate)
    );
    for (what, rate, run) in &runs {
        println!(
            "{what}: {rate:.1} images/s, peak RSS {:.0} MiB, ratio to the classifier only {:.2}",
            run.peak_rss_mib,
            rate / classifier_rate
        );
    }
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

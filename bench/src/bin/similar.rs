//! The embedding of `labeler.embedding` and the similar-photos search over it: what
//! it finds, what it costs, and how the search scales.
//!
//! 1. **Copies.** Each shipped photo with the six copies of `bucketlens-bench-hashes`
//!    (the same bytes, half size, JPEG quality 40, cropped by 4% on every side, WebP,
//!    colour-graded), labeled as the labeler runs: for each least similarity, the pair
//!    recall and precision of "at least that alike" (pairs of one picture are the
//!    positives; pairs of two pictures, some alike, the negatives).
//! 2. **What shrinking loses.** CROPS random crops of the shipped photos (a fifth to
//!    all of a side, some mirrored), through the classifier: the ten nearest of 200 of
//!    them by the cosine of the float features (the truth) against the ten nearest by
//!    the int8 embedding as shipped, by a random ±1 projection to 256 dimensions (the
//!    reduction the issue proposed), and by the search as it runs (128-byte sketch,
//!    the best 100 ranked again by the int8 embedding): recall@10.
//! 3. **Search at scale.** N synthetic embeddings (each a real one of step 2 with
//!    noise, quantised again) written into a tantivy index, and 100 searches through
//!    `Index::search` with `like` set: latency p50/p99 and recall@10 against the
//!    baseline, an exact scan of every whole embedding in memory (its latency too, and
//!    the ratio), at 100,000 and at N; peak RSS.
//! 4. **Cost.** The local labeler at its defaults with `embedding` on and off, taking
//!    turns, ROUNDS rounds: images/s and the ratio (baseline: off), and the median.
//!
//! Usage: target/release/bucketlens-bench-similar [ROUNDS=5] [N=1000000] [CROPS=2000]

use std::time::Instant;

use anyhow::Context;
use bucketlens_bench::copies::{copies, encode, photos, picture};
use bucketlens_index::{Index, Like, SearchRequest, TantivyIndex};
use bucketlens_labeler::analyzers::classifier::{quantise, Classifier};
use bucketlens_labeler::engine::{Engine, EngineChoice};
use bucketlens_labeler::local::{LocalLabeler, LocalOptions};
use bucketlens_labeler::Labeler;
use bucketlens_schemas::{ImageEmbedding, ImageLabeled, LabelKind, ModelInfo};
use image::{DynamicImage, ImageFormat};

fn options(embedding: bool) -> LocalOptions {
    LocalOptions { threads: 2, embedding, ..LocalOptions::default() }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let n: usize = args.get(2).map_or(Ok(1_000_000), |a| a.parse())?;
    let crops: usize = args.get(3).map_or(Ok(2000), |a| a.parse())?;
    let runtime = tokio::runtime::Runtime::new()?;

    copies_found(&runtime)?;
    let (floats, int8) = crop_embeddings(crops)?;
    shrinking(&floats, &int8);
    for size in [100_000, n] {
        search_at_scale(&runtime, &int8, size)?;
    }
    cost(&runtime, rounds)?;
    Ok(())
}

/// 1. How alike each copy is to its photo, and different pictures to each other.
fn copies_found(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let labeler = LocalLabeler::load(None, &options(true))?;
    let sources = photos()?;
    let index_of = |name: &str| sources.iter().position(|(n, _)| n == picture(name)).unwrap_or(0);
    let mut embedded: Vec<(usize, &'static str, ImageEmbedding)> = Vec::new();
    for (name, bytes) in &sources {
        for (what, copy) in copies(bytes)? {
            let set = runtime.block_on(labeler.label(copy)).map_err(|e| anyhow::anyhow!("{name} {what}: {e}"))?;
            let what = if picture(name) != name && what == "original" { "tagged" } else { what };
            embedded.push((index_of(name), what, set.embedding.context("embedding on, none made")?));
        }
    }
    println!("copies: {} files, each with 6 copies; pairs by embedding similarity", sources.len());
    println!(
        "{:>6}  {:>7}  {:>9}  {:>6}  the copy most often kept apart (pairs)",
        "least", "recall", "precision", "false"
    );
    let (mut lowest_copy, mut highest_other) = ((1.0f64, ""), (0.0f64, String::new()));
    for least in [0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.98] {
        let (mut tp, mut fp, mut positives) = (0, 0, 0);
        let mut missed: std::collections::BTreeMap<&str, usize> = Default::default();
        for a in 0..embedded.len() {
            for b in a + 1..embedded.len() {
                let same = embedded[a].0 == embedded[b].0;
                let similarity = embedded[a].2.similarity(&embedded[b].2);
                positives += usize::from(same);
                if same && similarity < lowest_copy.0 {
                    lowest_copy = (similarity, embedded[b].1);
                }
                if !same && similarity > highest_other.0 {
                    let pair = format!(
                        "{} and {}",
                        sources_name(&sources, embedded[a].0),
                        sources_name(&sources, embedded[b].0)
                    );
                    highest_other = (similarity, pair);
                }
                match (same, similarity >= least) {
                    (true, true) => tp += 1,
                    (false, true) => fp += 1,
                    (true, false) => *missed.entry(embedded[b].1).or_default() += 1,
                    (false, false) => {}
                }
            }
        }
        let worst = missed.iter().max_by_key(|(_, n)| **n).map_or("-".to_string(), |(w, n)| format!("{w} ({n})"));
        println!(
            "{least:>6.2}  {:>7.3}  {:>9.3}  {fp:>6}  {worst}",
            tp as f64 / positives as f64,
            if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 }
        );
    }
    println!(
        "least alike copy: {:.3} ({}); most alike different pictures: {:.3} ({})",
        lowest_copy.0, lowest_copy.1, highest_other.0, highest_other.1
    );
    Ok(())
}

fn sources_name(sources: &[(String, Vec<u8>)], i: usize) -> &str {
    sources.get(i).map_or("?", |(n, _)| n.as_str())
}

/// Float features and the int8 embeddings made of them, in the same order.
type Embedded = (Vec<Vec<f32>>, Vec<Vec<u8>>);

/// 2's crops, through the classifier: their float features and int8 embeddings.
fn crop_embeddings(count: usize) -> anyhow::Result<Embedded> {
    let engine = Engine::resolve(EngineChoice::Auto, None)?;
    let (classifier, _) = Classifier::load(&engine, None, 1)?;
    let pictures: Vec<DynamicImage> = photos()?
        .iter()
        .filter(|(name, _)| picture(name) == name)
        .map(|(_, bytes)| {
            let (rgb, _) =
                bucketlens_labeler::image::decode(bytes, 100_000_000, u32::MAX).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(DynamicImage::ImageRgb8(rgb))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut floats, mut int8) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let start = Instant::now();
    while floats.len() < count {
        let picture = &pictures[rng.usize(..pictures.len())];
        let scale = 0.2 + 0.8 * rng.f64();
        let (w, h) = ((f64::from(picture.width()) * scale) as u32, (f64::from(picture.height()) * scale) as u32);
        let (x, y) = (rng.u32(..=picture.width() - w), rng.u32(..=picture.height() - h));
        let mut crop = picture.crop_imm(x, y, w.max(16), h.max(16));
        if rng.bool() {
            crop = crop.fliph();
        }
        let bytes = encode(&crop, ImageFormat::Png)?;
        let side = bucketlens_labeler::image::resize_short_side(224);
        let (rgb, _) =
            bucketlens_labeler::image::decode(&bytes, 100_000_000, side).map_err(|e| anyhow::anyhow!("{e}"))?;
        let tensor = bucketlens_labeler::image::to_tensor_sized(&rgb, 224).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (_, features) = classifier.outputs(tensor).map_err(|e| anyhow::anyhow!("{e}"))?;
        let features = features.context("the built-in classifier gives its features")?;
        if let Some(q) = quantise(&features) {
            floats.push(features);
            int8.push(q);
        }
    }
    println!("\nshrinking: {count} crops of the shipped photos embedded in {:.1} s", start.elapsed().as_secs_f64());
    Ok((floats, int8))
}

fn cosine_f32(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    dot / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
}

/// The `k` best of `n` by `score` (highest first), leaving `except` out.
fn top(n: usize, k: usize, except: Option<usize>, score: impl Fn(usize) -> f64) -> Vec<usize> {
    let mut all: Vec<(f64, usize)> = (0..n).filter(|&i| Some(i) != except).map(|i| (score(i), i)).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, i)| i).collect()
}

fn recall(truth: &[Vec<usize>], found: &[Vec<usize>]) -> f64 {
    let hits: usize = truth.iter().zip(found).map(|(t, f)| f.iter().filter(|i| t.contains(i)).count()).sum();
    hits as f64 / truth.iter().map(Vec::len).sum::<usize>().max(1) as f64
}

/// 2. Recall@10 of the int8 embedding, a projection to 256, and the search's two stages.
fn shrinking(floats: &[Vec<f32>], int8: &[Vec<u8>]) {
    use bucketlens_index::similar::{sketch, sketch_dot, CANDIDATES};
    let n = floats.len();
    let queries: Vec<usize> = (0..200.min(n)).map(|i| i * n / 200.min(n)).collect();
    let truth: Vec<Vec<usize>> =
        queries.iter().map(|&q| top(n, 10, Some(q), |i| cosine_f32(&floats[q], &floats[i]))).collect();
    let by_int8: Vec<Vec<usize>> =
        queries.iter().map(|&q| top(n, 10, Some(q), |i| bucketlens_schemas::cosine(&int8[q], &int8[i]))).collect();
    // The reduction proposed: a ±1 random projection to 256 (its signs from a seed), in float.
    let mut rng = fastrand::Rng::with_seed(3);
    let signs: Vec<f32> = (0..1280 * 256).map(|_| if rng.bool() { 1.0 } else { -1.0 }).collect();
    let projected: Vec<Vec<f32>> = int8
        .iter()
        .map(|v| {
            let mut out = vec![0f32; 256];
            for (i, &x) in v.iter().enumerate() {
                let x = f32::from(x as i8);
                for (o, s) in out.iter_mut().zip(&signs[i * 256..(i + 1) * 256]) {
                    *o += x * s;
                }
            }
            out
        })
        .collect();
    let by_256: Vec<Vec<usize>> =
        queries.iter().map(|&q| top(n, 10, Some(q), |i| cosine_f32(&projected[q], &projected[i]))).collect();
    let sketches: Vec<[i8; 128]> = int8.iter().map(|v| sketch(v).unwrap_or([0; 128])).collect();
    let two_stage: Vec<Vec<usize>> = queries
        .iter()
        .map(|&q| {
            let candidates = top(n, CANDIDATES, Some(q), |i| f64::from(sketch_dot(&sketches[q], &sketches[i])));
            let mut ranked: Vec<(f64, usize)> =
                candidates.into_iter().map(|i| (bucketlens_schemas::cosine(&int8[q], &int8[i]), i)).collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            ranked.into_iter().take(10).map(|(_, i)| i).collect()
        })
        .collect();
    println!("recall@10 against the float features' cosine (200 queries among {n}):");
    println!("  int8, all 1280 dimensions (as stored):          {:.3}", recall(&truth, &by_int8));
    println!("  a ±1 projection to 256 dimensions:              {:.3}", recall(&truth, &by_256));
    println!("  the search: 128-byte sketch, best {CANDIDATES} by int8:  {:.3}", recall(&truth, &two_stage));
    println!("  the search against int8 exact (what it shortens): {:.3}", recall(&by_int8, &two_stage));
}

/// N embeddings like real ones: each a mix of two or three real ones in random
/// proportions, with Gaussian noise on each component, quantised again, so that
/// neighbours are near by degrees, as in a real bucket, not copies of a few.
fn synthetic(real: &[Vec<u8>], n: usize, rng: &mut fastrand::Rng) -> Vec<Vec<u8>> {
    let normal = |rng: &mut fastrand::Rng| {
        // Box–Muller: one normal number.
        let (u, v) = (rng.f32().max(f32::MIN_POSITIVE), rng.f32());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    };
    (0..n)
        .map(|_| {
            let parts = 2 + rng.usize(..2);
            let mut mixed = vec![0f32; real[0].len()];
            for _ in 0..parts {
                let (base, weight) = (&real[rng.usize(..real.len())], rng.f32());
                for (m, &x) in mixed.iter_mut().zip(base) {
                    *m += weight * f32::from(x as i8);
                }
            }
            let noisy: Vec<f32> = mixed.iter().map(|&x| (x + 6.0 * normal(rng)).max(0.0)).collect();
            quantise(&noisy).unwrap_or_else(|| real[0].clone())
        })
        .collect()
}

/// 3. The search through the embedded index, against an exact scan in memory.
fn search_at_scale(runtime: &tokio::runtime::Runtime, real: &[Vec<u8>], n: usize) -> anyhow::Result<()> {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let vectors = synthetic(real, n, &mut rng);
    let model = "bench@1/int8".to_string();
    let dir = tempfile::tempdir()?;
    let index = TantivyIndex::open_writer(&dir.path().join("index"), 200_000_000)?;
    let start = Instant::now();
    for (chunk, part) in vectors.chunks(20_000).enumerate() {
        let records: Vec<ImageLabeled> = part
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let key = format!("{:02}/{}.jpg", (chunk * 20_000 + i) % 97, chunk * 20_000 + i);
                let mut record = ImageLabeled {
                    text: None,
                    bucket: "photos".into(),
                    key,
                    version_id: None,
                    etag: Some(format!("e{chunk}-{i}")),
                    size: Some(1_000_000),
                    last_modified: Some(1_700_000_000_000),
                    sequencer: None,
                    kind: LabelKind::Labeled,
                    labels: Vec::new(),
                    image: None,
                    model: ModelInfo { name: "bench".into(), version: "1".into() },
                    labeled_at: 1_700_000_000_000,
                    error: None,
                    labeler: None,
                    metadata: None,
                    hashes: None,
                    storage_class: None,
                    embedding: None,
                };
                record.embedding = Some(ImageEmbedding { model: model.clone(), vector: v.clone() });
                record
            })
            .collect();
        runtime.block_on(index.write(records))?;
    }
    let written = start.elapsed().as_secs_f64();
    let queries: Vec<usize> = (0..100).map(|_| rng.usize(..n)).collect();
    let ask = |q: usize| {
        let mut request = SearchRequest::new(bucketlens_index::query::Expr::All);
        request.limit = 10;
        request.like =
            Some(Like { embedding: ImageEmbedding { model: model.clone(), vector: vectors[q].clone() }, except: None });
        request
    };
    let cold = Instant::now();
    runtime.block_on(index.search(ask(queries[0])))?;
    let cold = cold.elapsed().as_secs_f64();
    let (mut times, mut found) = (Vec::new(), Vec::new());
    for &q in &queries {
        let t = Instant::now();
        let response = runtime.block_on(index.search(ask(q)))?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let ids: Vec<usize> = response
            .hits
            .iter()
            .filter_map(|h| h.key.rsplit('/').next()?.trim_end_matches(".jpg").parse().ok())
            .collect();
        found.push(ids);
    }
    let rss = bucketlens_bench::peak_rss_mib(std::process::id()).unwrap_or(0.0);
    let (mut exact_times, mut truth) = (Vec::new(), Vec::new());
    for &q in &queries {
        let t = Instant::now();
        truth.push(top(n, 10, None, |i| bucketlens_schemas::cosine(&vectors[q], &vectors[i])));
        exact_times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // How many candidates the sketch must pass on for the truth to be among them.
    use bucketlens_index::similar::{sketch, sketch_dot};
    let sketches: Vec<[i8; 128]> = vectors.iter().map(|v| sketch(v).unwrap_or([0; 128])).collect();
    for candidates in [100, 300, 1000, 3000] {
        let found: Vec<Vec<usize>> = queries
            .iter()
            .map(|&q| {
                let mut ranked: Vec<(f64, usize)> =
                    top(n, candidates, None, |i| f64::from(sketch_dot(&sketches[q], &sketches[i])))
                        .into_iter()
                        .map(|i| (bucketlens_schemas::cosine(&vectors[q], &vectors[i]), i))
                        .collect();
                ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                ranked.into_iter().take(10).map(|(_, i)| i).collect()
            })
            .collect();
        println!("  {n}: the best {candidates} by sketch ranked again: recall@10 {:.3}", recall(&truth, &found));
    }
    let percentile = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    let (p50, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
    let (e50, e99) = (percentile(&mut exact_times, 0.5), percentile(&mut exact_times, 0.99));
    println!(
        "\nsearch, {n} embeddings (written in {written:.1} s): recall@10 {:.3} against the exact scan; \
         p50 {p50:.1} ms, p99 {p99:.1} ms (the first, reading the sketches, {:.0} ms); exact scan in memory \
         (baseline) p50 {e50:.1} ms, p99 {e99:.1} ms; ratio of p50s {:.3}; peak RSS {rss:.0} MiB",
        recall(&truth, &found),
        cold * 1000.0,
        p50 / e50
    );
    Ok(())
}

/// 4. Labeling with and without the embedding, in turns.
fn cost(runtime: &tokio::runtime::Runtime, rounds: usize) -> anyhow::Result<()> {
    let corpus: Vec<Vec<u8>> = photos()?.into_iter().map(|(_, b)| b).cycle().take(120).collect();
    let on = std::sync::Arc::new(LocalLabeler::load(None, &options(true))?);
    let off = std::sync::Arc::new(LocalLabeler::load(None, &options(false))?);
    let rate = |labeler: &std::sync::Arc<LocalLabeler>| -> anyhow::Result<f64> {
        let start = Instant::now();
        runtime.block_on(async {
            let mut running = tokio::task::JoinSet::new();
            for bytes in corpus.iter().cloned() {
                let labeler = std::sync::Arc::clone(labeler);
                running.spawn(async move { labeler.label(bytes).await });
            }
            while let Some(done) = running.join_next().await {
                done?.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(())
        })?;
        Ok(corpus.len() as f64 / start.elapsed().as_secs_f64())
    };
    rate(&off)?;
    println!("\ncost: the labeler at its defaults on 2 threads, {} images a round", corpus.len());
    bucketlens_bench::in_turns(rounds, "embedding", || rate(&off), || rate(&on))?;
    Ok(())
}

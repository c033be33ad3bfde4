//! The hashes of `labeler.hashes`: what they find, what they cost, and how
//! `duplicates` scales.
//!
//! 1. **Quality.** Each shipped photo (examples/photos and examples/tagged) with six
//!    copies a bucket really holds: the same bytes, half size, recompressed at JPEG
//!    quality 40, cropped by 4% on every side, converted to WebP, colour-graded
//!    (warmer, more contrast). Pairs of one photo are the positives; pairs of two
//!    photos the negatives (some alike: two rocket launches, two flowers, two
//!    temples). For each distance, the pair recall and precision of "at most that
//!    many bits apart" (and exact copies by SHA-256).
//! 2. **Cost.** The local labeler at its defaults with `hashes` on and off, taking
//!    turns, ROUNDS rounds over the same photos: images/s and the ratio (baseline:
//!    off) of each, and their median.
//! 3. **Scale.** `duplicates::find` over N synthetic photos (2% exact copies, 5% near
//!    copies a few bits off, the rest random), at 20,000 against every pair compared
//!    (the baseline), then at 100,000 and 1,000,000 alone: wall time and peak RSS.
//!
//! Usage: target/release/bucketlens-bench-hashes [ROUNDS=9] [N=1000000]

use std::time::Instant;

use anyhow::Context;
use bucketlens_bench::copies::{copies, photos, picture};
use bucketlens_index::duplicates::{self, Member};
use bucketlens_labeler::local::{LocalLabeler, LocalOptions};
use bucketlens_labeler::Labeler;

fn options(hashes: bool) -> LocalOptions {
    LocalOptions { threads: 2, hashes, ..LocalOptions::default() }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(9), |a| a.parse())?;
    let n: usize = args.get(2).map_or(Ok(1_000_000), |a| a.parse())?;
    let runtime = tokio::runtime::Runtime::new()?;

    // 1. Quality, through the labeler as it runs.
    let labeler = LocalLabeler::load(None, &options(true))?;
    // (photo, copy, SHA-256, perceptual hash)
    let mut hashed: Vec<(usize, &'static str, String, i64)> = Vec::new();
    let sources = photos()?;
    let index_of = |name: &str| sources.iter().position(|(n, _)| n == picture(name)).unwrap_or(0);
    for (i, (name, bytes)) in sources.iter().enumerate() {
        for (what, copy) in copies(bytes)? {
            let set = runtime.block_on(labeler.label(copy)).map_err(|e| anyhow::anyhow!("{name} {what}: {e}"))?;
            let h = set.hashes.context("hashes on, no hashes")?;
            let what = if picture(name) != name && what == "original" { "tagged" } else { what };
            hashed.push((index_of(&sources[i].0), what, h.sha256, h.dhash.context("no dhash")?));
        }
    }
    let pictures = hashed.iter().map(|h| h.0).collect::<std::collections::BTreeSet<_>>().len();
    println!("quality: {} files, {pictures} pictures, each with 6 copies (3 of them twice: tagged)", sources.len());
    println!(
        "{:>4}  {:>7}  {:>9}  {:>6}  the copy most often kept apart (pairs)",
        "bits", "recall", "precision", "false"
    );
    for d in 0..=14u32 {
        let (mut tp, mut fp, mut positives) = (0, 0, 0);
        let mut missed: std::collections::BTreeMap<&str, usize> = Default::default();
        for a in 0..hashed.len() {
            for b in a + 1..hashed.len() {
                let same = hashed[a].0 == hashed[b].0;
                let near = hashed[a].2 == hashed[b].2 || (hashed[a].3 ^ hashed[b].3).count_ones() <= d;
                positives += usize::from(same);
                match (same, near) {
                    (true, true) => tp += 1,
                    (false, true) => fp += 1,
                    (true, false) => *missed.entry(hashed[b].1).or_default() += 1,
                    _ => {}
                }
            }
        }
        let default = d == duplicates::max_distance(duplicates::DEFAULT_MIN_SIMILARITY);
        let worst = if default {
            let all: Vec<String> = missed.iter().map(|(w, n)| format!("{w} ({n})")).collect();
            format!("the default: kept apart {}", all.join(", "))
        } else {
            missed.iter().max_by_key(|(_, n)| **n).map_or(String::new(), |(w, n)| format!("{w} ({n})"))
        };
        let precision = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
        println!("{d:>4}  {:>7.3}  {precision:>9.3}  {fp:>6}  {worst}", tp as f64 / positives as f64);
    }

    // 2. Cost per image, on and off in turns.
    let corpus: Vec<Vec<u8>> = sources.iter().flat_map(|(_, b)| std::iter::repeat_n(b.clone(), 8)).collect();
    let on = LocalLabeler::load(None, &options(true))?;
    let off = LocalLabeler::load(None, &options(false))?;
    let run = |l: &LocalLabeler| bucketlens_bench::images_per_second(&runtime, l, &corpus);
    println!("\ncost: the defaults on 2 threads, {} images a run", corpus.len());
    bucketlens_bench::in_turns(rounds, "hashes", || run(&off), || run(&on))?;
    let start = Instant::now();
    let mut notes = Vec::new();
    for bytes in &corpus {
        let (rgb, _) =
            bucketlens_labeler::image::decode(bytes, 100_000_000, 224).map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        std::hint::black_box(bucketlens_labeler::hashes::of(bytes, &rgb, &mut notes));
        std::hint::black_box(t.elapsed());
    }
    let mut hashing = 0.0;
    for bytes in &corpus {
        let (rgb, _) =
            bucketlens_labeler::image::decode(bytes, 100_000_000, 224).map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        std::hint::black_box(bucketlens_labeler::hashes::of(bytes, &rgb, &mut notes));
        hashing += t.elapsed().as_secs_f64();
    }
    let sha = Instant::now();
    for bytes in &corpus {
        std::hint::black_box(bucketlens_labeler::hashes::content(bytes));
    }
    let sha = sha.elapsed().as_secs_f64();
    println!(
        "hashes alone: {:.3} ms an image ({:.3} ms of it SHA-256; {} bytes an image on average); decode loop {:.1} s",
        hashing * 1000.0 / corpus.len() as f64,
        sha * 1000.0 / corpus.len() as f64,
        corpus.iter().map(Vec::len).sum::<usize>() / corpus.len(),
        start.elapsed().as_secs_f64()
    );

    // 3. Scale.
    println!("\nscale: duplicates::find, synthetic photos (2% exact, 5% near copies)");
    let pairs_baseline = synthetic(20_000);
    let t = Instant::now();
    let all_pairs = every_pair(&pairs_baseline, 5);
    let baseline = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = duplicates::find(pairs_baseline, 5);
    let found = t.elapsed().as_secs_f64();
    println!(
        "20000: every pair compared (baseline) {baseline:.3} s, {all_pairs} near pairs; find {found:.3} s, {} groups; ratio {:.4}",
        report.groups.len(),
        found / baseline
    );
    for size in [100_000, n] {
        let photos = synthetic(size);
        let t = Instant::now();
        let report = duplicates::find(photos, 5);
        println!(
            "{size}: find {:.2} s, {} groups, {} bytes reclaimable; peak RSS {:.0} MiB",
            t.elapsed().as_secs_f64(),
            report.groups.len(),
            report.total_reclaimable_bytes,
            bucketlens_bench::peak_rss_mib(std::process::id()).unwrap_or(0.0)
        );
    }
    Ok(())
}

fn synthetic(n: usize) -> Vec<Member> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut photos: Vec<Member> = Vec::with_capacity(n);
    for i in 0..n {
        let (sha, dhash) = match (i % 100, photos.len()) {
            (0..=1, len) if len > 0 => {
                let of = &photos[rng.usize(..len)];
                (of.sha256.clone().unwrap_or_default(), of.dhash.unwrap_or(0))
            }
            (2..=6, len) if len > 0 => {
                let of = photos[rng.usize(..len)].dhash.unwrap_or(0);
                (format!("{i:064x}"), of ^ (1i64 << rng.u32(..64)) ^ (1i64 << rng.u32(..64)))
            }
            _ => (format!("{i:064x}"), rng.i64(..)),
        };
        photos.push(Member {
            bucket: "photos".into(),
            key: format!("{:02}/{i}.jpg", i % 97),
            size: Some(rng.i64(100_000..5_000_000)),
            storage_class: None,
            width: Some(4000),
            height: Some(3000),
            sha256: Some(sha),
            dhash: Some(dhash),
        });
    }
    photos
}

/// The baseline: every pair's distance, counting the pairs within `d` bits.
fn every_pair(photos: &[Member], d: u32) -> usize {
    let hashes: Vec<i64> = photos.iter().map(|p| p.dhash.unwrap_or(0)).collect();
    let mut near = 0;
    for a in 0..hashes.len() {
        for b in a + 1..hashes.len() {
            near += usize::from((hashes[a] ^ hashes[b]).count_ones() <= d);
        }
    }
    near
}

//! Memory-bound benchmark: the labeler's peak RSS on the worst inputs a header can
//! describe, against its baseline in the same run — the 12 example photos.
//!
//! Each case is one image alone in a folder, indexed by `bucketlens index` with the
//! default settings (a fresh data dir, the default model and threads), as a user runs
//! it. Printed: what the run made of the image (labeled, or failed with a code),
//! its peak RSS, the ratio to the baseline, and the 500 MiB target.
//!
//! Usage: cargo build --release --workspace && target/release/bucketlens-bench-memory [FILTER]
//! (FILTER: only the cases whose file name contains it, e.g. `tiff`)

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use bucketlens_bench::{bucketlens, run_sampled, Sampled};

const TARGET_MIB: f64 = 500.0;

/// Noise-like pixels that JPEG cannot compress to nothing (a photo's worst case).
fn pixel(x: u32, y: u32) -> [u8; 3] {
    let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
    [(x / 7 % 256) as u8, (y / 5 % 256) as u8, (v >> 13) as u8]
}

fn rgb(width: u32, height: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            data.extend(pixel(x, y));
        }
    }
    data
}

fn jpeg(
    path: &Path,
    width: u16,
    height: u16,
    progressive: bool,
    sampling: jpeg_encoder::SamplingFactor,
) -> anyhow::Result<()> {
    // 4:4:4 at quality 70 keeps a 100 MP file under the default labeler.max-bytes.
    let quality = if sampling == jpeg_encoder::SamplingFactor::F_1_1 { 70 } else { 85 };
    let mut encoder = jpeg_encoder::Encoder::new_file(path, quality)?;
    encoder.set_progressive(progressive);
    encoder.set_sampling_factor(sampling);
    encoder.encode(&rgb(width.into(), height.into()), width, height, jpeg_encoder::ColorType::Rgb)?;
    Ok(())
}

fn png(path: &Path, width: u32, height: u32, color: png::ColorType, depth: png::BitDepth) -> anyhow::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    encoder.set_compression(png::Compression::Fastest);
    let mut writer = encoder.write_header()?.into_stream_writer()?;
    let row = color.samples() * if depth == png::BitDepth::Sixteen { 2 } else { 1 } * width as usize;
    let line: Vec<u8> = (0..row).map(|i| (i % 253) as u8).collect();
    for _ in 0..height {
        std::io::Write::write_all(&mut writer, &line)?;
    }
    writer.finish()?;
    Ok(())
}

/// `bucketlens index DIR` on a fresh data dir: the run and its summary line.
/// A smooth `width × height` image in `format` (WebP, GIF, TIFF, BMP: decoded at full size).
fn other(path: &Path, width: u32, height: u32, alpha: bool, format: image::ImageFormat) -> anyhow::Result<()> {
    let rgb: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [(x / 32) as u8, (y / 32) as u8, ((x + y) / 64) as u8]))
        .collect();
    let image: image::DynamicImage = if alpha {
        let rgba: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        image::RgbaImage::from_raw(width, height, rgba).context("RGBA buffer")?.into()
    } else {
        image::RgbImage::from_raw(width, height, rgb).context("RGB buffer")?.into()
    };
    image.save_with_format(path, format)?;
    Ok(())
}

fn index(dir: &Path) -> anyhow::Result<(Sampled, String)> {
    let data = tempfile::tempdir()?;
    let mut command = Command::new(bucketlens()?);
    command.arg("--data-dir").arg(data.path()).arg("index").arg(dir);
    let run = run_sampled(command)?;
    let summary = run.stdout.lines().find(|l| l.starts_with("labeled ")).unwrap_or("(no summary)");
    let summary = summary.split(" · ").take(3).collect::<Vec<_>>().join(" · ");
    // A failure is listed under the summary as `  bucket/key  Code: reason`.
    let failure = run.stdout.lines().skip_while(|l| !l.contains("failed in the index")).nth(1);
    let outcome = failure.map_or(summary.clone(), |why| {
        format!("{summary}: {}", why.trim().split_once("  ").map_or(why, |(_, w)| w).trim())
    });
    Ok((run, outcome))
}

fn main() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    type Make = Box<dyn Fn(&Path) -> anyhow::Result<()>>;
    use jpeg_encoder::SamplingFactor::{F_1_1, F_2_2};
    use png::{BitDepth::*, ColorType::*};
    let cases: Vec<(&str, &str, Make)> = vec![
        ("wide.png", "60000x1 RGB PNG", Box::new(|p| png(p, 60_000, 1, Rgb, Eight))),
        ("tall.jpg", "1x60000 JPEG", Box::new(|p| jpeg(p, 1, 60_000, false, F_2_2))),
        (
            "strip.jpg",
            "65535x1525 JPEG (the longest side JPEG allows, 100 MP)",
            Box::new(|p| jpeg(p, 65_535, 1525, false, F_2_2)),
        ),
        ("strip.png", "2000000x50 RGB PNG (100 MP)", Box::new(|p| png(p, 2_000_000, 50, Rgb, Eight))),
        (
            "bomb.png",
            "10000x10000 RGBA 16-bit PNG (100 MP, 800 MB decoded)",
            Box::new(|p| png(p, 10_000, 10_000, Rgba, Sixteen)),
        ),
        ("big.jpg", "10000x10000 baseline JPEG, 4:2:0 (100 MP)", Box::new(|p| jpeg(p, 10_000, 10_000, false, F_2_2))),
        (
            "big444.jpg",
            "10000x10000 baseline JPEG, 4:4:4 (100 MP)",
            Box::new(|p| jpeg(p, 10_000, 10_000, false, F_1_1)),
        ),
        (
            "progressive.jpg",
            "10000x10000 progressive JPEG, 4:2:0 (100 MP)",
            Box::new(|p| jpeg(p, 10_000, 10_000, true, F_2_2)),
        ),
        (
            "progressive444.jpg",
            "10000x10000 progressive JPEG, 4:4:4 (100 MP)",
            Box::new(|p| jpeg(p, 10_000, 10_000, true, F_1_1)),
        ),
        (
            "two-progressive.jpg",
            "two 10000x10000 progressive JPEGs, 4:2:0, in one folder",
            Box::new(|p| {
                jpeg(p, 10_000, 10_000, true, F_2_2)?;
                std::fs::copy(p, p.with_file_name("copy.jpg")).map(drop).map_err(Into::into)
            }),
        ),
        // Smooth pixels, so that the file stays under labeler.max-bytes (50 MB).
        (
            "big.webp",
            "8000x8000 RGBA lossless WebP (64 MP, 244 MiB decoded: the largest decoded at full size)",
            Box::new(|p| other(p, 8_000, 8_000, true, image::ImageFormat::WebP)),
        ),
    ];
    // `bucketlens-bench-memory [FILTER]`: only the cases whose file name contains FILTER.
    let filter = std::env::args().nth(1).unwrap_or_default();
    let cases: Vec<_> = cases.into_iter().filter(|(name, _, _)| name.contains(&filter)).collect();

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos");
    let (baseline, summary) = index(&examples).context("baseline")?;
    println!("baseline: the 12 example photos: peak RSS {:.0} MiB ({summary})", baseline.peak_rss_mib);
    println!();
    println!("| case | outcome | peak RSS | vs baseline | under {TARGET_MIB:.0} MiB |");
    println!("|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for (name, what, make) in cases {
        let dir = root.path().join(name.replace('.', "-"));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        make(&path).with_context(|| format!("making {name}"))?;
        let size: u64 = std::fs::read_dir(&dir)?.map(|e| Ok(e?.metadata()?.len())).sum::<std::io::Result<u64>>()?;
        let (run, outcome) = index(&dir).with_context(|| name.to_string())?;
        worst = worst.max(run.peak_rss_mib);
        println!(
            "| {what}, {:.1} MB | {outcome} | {:.0} MiB | {:.2} | {} |",
            size as f64 / 1e6,
            run.peak_rss_mib,
            run.peak_rss_mib / baseline.peak_rss_mib,
            if run.peak_rss_mib < TARGET_MIB { "yes" } else { "NO" }
        );
        std::fs::remove_dir_all(&dir)?;
    }
    println!();
    println!(
        "worst case: {worst:.0} MiB, {:.2}x the baseline's {:.0} MiB (target: under {TARGET_MIB:.0} MiB)",
        worst / baseline.peak_rss_mib,
        baseline.peak_rss_mib
    );
    Ok(())
}

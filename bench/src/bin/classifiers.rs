//! The classifiers side by side: EfficientNet-Lite0 (built in, the baseline) against
//! Lite1 and Lite2 (`models/efficientnet-lite0/fetch`), in one run.
//!
//! For each: `bucketlens index` of COPIES copies of the example photos with faces off
//! (the classifier alone: images/s, peak RSS), then one copy at the default settings
//! scored against `examples/photos/expected-labels.toml` (photos found by a label a
//! person searches for; labels in neither list of a photo are wrong).
//!
//! Usage: target/release/bucketlens-bench-classifiers [COPIES=5]

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use bucketlens_bench::{bucketlens, examples, run_sampled};
use bucketlens_labeler::config::fetched_model_path;

const MODELS: [&str; 3] = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"];

fn copy_examples(root: &Path, copies: usize) -> anyhow::Result<usize> {
    let mut count = 0;
    for copy in 0..copies {
        let dir = root.join(format!("copy-{copy:03}"));
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(examples())? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "png" || x == "jpg") {
                std::fs::copy(&path, dir.join(path.file_name().context("name")?))?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// `detectors`: faces and objects on (the defaults), or the classifier alone.
fn index(model: &str, corpus: &Path, data: &Path, detectors: bool) -> anyhow::Result<bucketlens_bench::Sampled> {
    let mut command = Command::new(bucketlens()?);
    command.arg("--data-dir").arg(data).arg("index").arg(corpus);
    command.env("BUCKETLENS_LABELER__MODEL", model).env("BUCKETLENS_LABELER__FACES", detectors.to_string());
    command.env("BUCKETLENS_LABELER__OBJECTS", detectors.to_string());
    run_sampled(command)
}

/// (photos found, wrong labels) of the documents in `data` against the table.
fn score(data: &Path, table: &toml::Table) -> anyhow::Result<(usize, usize)> {
    let out = Command::new(bucketlens()?)
        .arg("--data-dir")
        .arg(data)
        .args(["search", "*", "--json", "--limit", "100"])
        .output()?;
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let (mut found, mut wrong) = (0, 0);
    for hit in hits["hits"].as_array().context("hits")? {
        let file = hit["key"].as_str().context("key")?.rsplit('/').next().unwrap_or_default();
        let Some(row) = table.get(file) else { continue };
        let names = |k: &str| -> Vec<String> {
            row[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
        };
        let (searched, fits) = (names("searched"), names("true"));
        let labels: Vec<String> = hit["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["name"].as_str().map(String::from))
            .collect();
        found += usize::from(labels.iter().any(|l| searched.contains(l)));
        wrong += labels.iter().filter(|l| !searched.contains(l) && !fits.contains(l)).count();
    }
    Ok((found, wrong))
}

fn main() -> anyhow::Result<()> {
    let copies: usize = std::env::args().nth(1).map_or(Ok(5), |s| s.parse())?;
    let table: toml::Table = std::fs::read_to_string(examples().join("expected-labels.toml"))?.parse()?;
    let tmp = tempfile::tempdir()?;
    let (corpus, one) = (tmp.path().join("corpus"), tmp.path().join("one"));
    let images = copy_examples(&corpus, copies)?;
    copy_examples(&one, 1)?;
    println!("corpus: {images} images ({copies} x the 12 examples), classifier alone (labeler.faces and labeler.objects false)");
    let mut baseline = None;
    for model in MODELS {
        if model != MODELS[0] && !fetched_model_path(model).exists() {
            println!(
                "{model}: not fetched (models/efficientnet-lite0/fetch {})",
                model.trim_start_matches("efficientnet-")
            );
            continue;
        }
        let run = index(model, &corpus, &tmp.path().join(format!("data-{model}")), false)?;
        let rate = images as f64 / run.wall.as_secs_f64();
        let quality_data = tmp.path().join(format!("quality-{model}"));
        index(model, &one, &quality_data, true)?;
        let (found, wrong) = score(&quality_data, &table)?;
        let base = *baseline.get_or_insert(rate);
        println!(
            "{model}: {rate:.1} images/s (ratio to lite0 {:.2}), peak RSS {:.0} MiB; at the defaults {found} of 12 photos found, {wrong} wrong labels",
            rate / base,
            run.peak_rss_mib
        );
    }
    Ok(())
}

//! `bucketlens plan SOURCE`: what a backfill of SOURCE would label, skip, cost and
//! take, read from its listing or inventory report and the labeler's ledger. Nothing
//! is labeled and nothing is produced.
//!
//! Prices are list prices in USD, `[prices]` in the configuration, with defaults
//! from AWS's published price pages (US East, N. Virginia) as of [`PRICES_DATED`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use bucketlens_inventory::checkpoint::Checkpoint;
use bucketlens_inventory::{InventoryProducer, Location};
use bucketlens_labeler::{Backend as LabelerBackend, Labeler, Ledger};
use bucketlens_listing::s3::S3Url;
use bucketlens_runtime::bucket::{etag_of, LocalDir};
use bucketlens_runtime::log::Output;
use bucketlens_schemas::{ChangeKind, ChangeSource, ImageFormat, ObjectChanged};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::settings::Settings;
use crate::wiring;

/// When the default prices were read from AWS's price pages.
pub const PRICES_DATED: &str = "2026-12-06";

/// Storage classes S3 documents (a listing's `StorageClass`, an inventory's column).
const KNOWN_CLASSES: [&str; 12] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
];

/// Images labeled to measure the local rate, where no `--rate` is given.
const SAMPLE: usize = 8;
/// Problems named one by one; the rest are counted.
const PROBLEMS_KEPT: usize = 100;
/// Top-level prefixes listed by name; the rest are "other".
const TOP_PREFIXES: usize = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A folder, `s3://bucket/prefix`, or an S3 Inventory report's `manifest.json`
    /// (or `manifest.checksum`), local or `s3://`.
    pub source: String,
    /// The machine form: one JSON document.
    #[arg(long)]
    pub json: bool,
    /// The local model's images/s per labeler, instead of labeling a sample of the
    /// source to measure it.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Labelers working at once (each with `[labeler] concurrency` threads), for the
    /// time estimates.
    #[arg(long, default_value_t = 1)]
    pub labelers: u32,
    /// A folder's bucket name, as `index --bucket` gives it.
    #[arg(long)]
    pub bucket: Option<String>,
}

/// `[prices]`: the list prices `plan` estimates with, in USD.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Prices {
    /// Rekognition DetectLabels per 1,000 images, by monthly volume tier: each tier's
    /// `up-to` (images in the month), the last without one.
    pub detect_labels: Vec<Tier>,
    /// S3 GET and HEAD requests, per 1,000 (S3 Standard).
    pub s3_get_per_1000: f64,
    /// S3 LIST requests, per 1,000 (S3 Standard).
    pub s3_list_per_1000: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
    pub usd_per_1000: f64,
}

impl Default for Prices {
    fn default() -> Self {
        let tier = |up_to: Option<u64>, usd_per_1000: f64| Tier { up_to, usd_per_1000 };
        Self {
            detect_labels: vec![
                tier(Some(1_000_000), 1.00),
                tier(Some(5_000_000), 0.80),
                tier(Some(35_000_000), 0.60),
                tier(None, 0.25),
            ],
            s3_get_per_1000: 0.0004,
            s3_list_per_1000: 0.005,
        }
    }
}

impl Prices {
    pub fn validate(&self) -> Result<(), Vec<bucketlens_runtime::config::Invalid>> {
        let mut problems = bucketlens_runtime::config::Problems::default();
        let tiers = &self.detect_labels;
        let ordered = tiers.windows(2).all(|w| {
            matches!((w[0].up_to, w[1].up_to), (Some(a), Some(b)) if a < b)
                || matches!((w[0].up_to, w[1].up_to), (Some(_), None))
        });
        problems.check(
            !tiers.is_empty() && ordered && tiers.last().is_some_and(|t| t.up_to.is_none()),
            "prices.detect-labels",
            || "must be tiers with rising up-to values, the last without one".into(),
        );
        let prices = tiers.iter().map(|t| t.usd_per_1000).chain([self.s3_get_per_1000, self.s3_list_per_1000]);
        problems.check(prices.into_iter().all(|p| p >= 0.0 && p.is_finite()), "prices", || {
            "prices must be numbers of 0 or more".into()
        });
        problems.finish(|| ())
    }

    /// DetectLabels for `images` in one month, tier by tier.
    fn detect_labels(&self, images: u64) -> f64 {
        let (mut usd, mut below) = (0.0, 0u64);
        for tier in &self.detect_labels {
            let top = tier.up_to.unwrap_or(u64::MAX);
            let here = images.min(top).saturating_sub(below);
            usd += here as f64 / 1000.0 * tier.usd_per_1000;
            below = top;
            if images <= top {
                break;
            }
        }
        usd
    }
}

/// What the source holds, counted.
#[derive(Default)]
struct Tally {
    objects: u64,
    bytes: u64,
    images: u64,
    image_bytes: u64,
    by_class: BTreeMap<String, (u64, u64)>,
    by_prefix: HashMap<String, (u64, u64)>,
    already_labeled: u64,
    to_label: u64,
    to_label_bytes: u64,
    archived: u64,
    archived_bytes: u64,
    /// Rows of an inventory report that could not be read, and unknown classes.
    problems: Vec<String>,
    problem_count: u64,
    /// Images to label, to measure the local rate on.
    sample: Vec<ObjectChanged>,
}

impl Tally {
    /// Notes a problem; the first [`PROBLEMS_KEPT`] are kept word for word.
    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(text);
        }
    }

    fn add(&mut self, change: ObjectChanged, ledger: Option<&(Ledger, String)>) {
        let size = change.size.unwrap_or(0).max(0) as u64;
        self.objects += 1;
        self.bytes += size;
        // A report without the StorageClass column, or a store that leaves it out.
        let class = change.storage_class.clone().unwrap_or_else(|| "(not given)".into());
        let entry = self.by_class.entry(class).or_default();
        entry.0 += 1;
        entry.1 += size;
        let prefix = match change.key.split_once('/') {
            Some((top, _)) => format!("{top}/"),
            None => "(top level)".to_string(),
        };
        let entry = self.by_prefix.entry(prefix).or_default();
        entry.0 += 1;
        entry.1 += size;
        if change.key.ends_with('/') || ImageFormat::from_extension(&change.key).is_none() {
            return;
        }
        self.images += 1;
        self.image_bytes += size;
        if change.archived() {
            self.archived += 1;
            self.archived_bytes += size;
            return;
        }
        let labeled =
            ledger.is_some_and(|(ledger, fingerprint)| ledger.unchanged(&change, fingerprint).unwrap_or(false));
        if labeled {
            self.already_labeled += 1;
            return;
        }
        self.to_label += 1;
        self.to_label_bytes += size;
        if self.sample.len() < SAMPLE {
            self.sample.push(change);
        }
    }
}

/// The source, as `plan` reads it.
enum Source {
    Dir { root: PathBuf, bucket: String },
    S3(S3Url),
    Inventory(Location),
}

fn source_of(args: &Args) -> anyhow::Result<Source> {
    let text = args.source.as_str();
    if text.ends_with("manifest.json") || text.ends_with("manifest.checksum") {
        return Ok(Source::Inventory(Location::parse(text)));
    }
    if let Some(url) = S3Url::parse(text) {
        return Ok(Source::S3(url));
    }
    if text.starts_with("s3://") {
        bail!("{text}: not an s3://bucket/prefix URL");
    }
    let root = Path::new(text).canonicalize().with_context(|| format!("opening {text}"))?;
    if !root.is_dir() {
        bail!("{text} is not a folder, an s3:// URL or an inventory report's manifest.json");
    }
    let bucket = args.bucket.clone().unwrap_or_else(|| LocalDir::default_name(&root));
    Ok(Source::Dir { root, bucket })
}

fn change(bucket: &str, key: String, size: Option<i64>, etag: Option<String>, class: Option<String>) -> ObjectChanged {
    ObjectChanged {
        bucket: bucket.to_string(),
        key,
        version_id: None,
        kind: ChangeKind::Upsert,
        size,
        etag,
        last_modified: None,
        sequencer: None,
        source: ChangeSource::Listing,
        observed_at: 0,
        storage_class: class,
        access_tier: None,
    }
}

/// Every file under `root`, as `index` names it (hidden names and `[listing]
/// exclude` passed over, links not followed).
fn walk(
    root: &Path,
    bucket: &str,
    skip: &bucketlens_listing::config::Skip,
    tally: &mut Tally,
    ledger: Option<&(Ledger, String)>,
) {
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            tally.problem(format!("{}: cannot be read", folder.display()));
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(relative) = path.strip_prefix(root) else { continue };
            let Some(key) = relative.to_str().map(|k| k.replace(std::path::MAIN_SEPARATOR, "/")) else {
                tally.problem(format!("{}: the name is not UTF-8, which a key must be", path.display()));
                continue;
            };
            if skip.key(&key) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                folders.push(path);
            } else if meta.is_file() {
                let etag = etag_of(&meta);
                tally.add(change(bucket, key, Some(meta.len() as i64), Some(etag), Some("local".into())), ledger);
            }
        }
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    settings
        .prices
        .validate()
        .map_err(|problems| anyhow::anyhow!(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    if args.labelers == 0 {
        bail!("--labelers must be at least 1");
    }
    let source = source_of(&args)?;
    let labeler = wiring::load_labeler(settings).await?;
    let fingerprint = bucketlens_labeler::ledger::fingerprint(&settings.labeler, labeler.model());
    let ledger_path = settings.ledger_path();
    let ledger = match ledger_path.exists() {
        true => Some((Ledger::open(Some(&ledger_path))?, fingerprint)),
        false => None,
    };
    let mut tally = Tally::default();
    let mut list_requests = 0u64;
    let (described, report_files) = match &source {
        Source::Dir { root, bucket } => {
            let skip = settings.listing.skip();
            walk(root, bucket, &skip, &mut tally, ledger.as_ref());
            (format!("{} (bucket {bucket}), walked", root.display()), 0)
        }
        Source::S3(url) => {
            let client = bucketlens_runtime::aws::s3_client(&settings.s3).await;
            let mut pages = client.list_objects_v2().bucket(&url.bucket).prefix(&url.prefix).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(|e| anyhow::anyhow!("listing {url}: {}", bucketlens_runtime::aws::AwsFailure::of(&e)))?;
                list_requests += 1;
                for object in page.contents.unwrap_or_default() {
                    let Some(key) = object.key else { continue };
                    let etag = object.e_tag.as_deref().map(bucketlens_runtime::bucket::s3::normalize_etag);
                    let class = object.storage_class.as_ref().map(|c| c.as_str().to_string());
                    if let Some(class) = class.as_deref().filter(|c| !KNOWN_CLASSES.contains(c)) {
                        tally
                            .problems
                            .push(format!("s3://{}/{key}: StorageClass {class:?} is not one S3 documents", url.bucket));
                    }
                    tally.add(change(&url.bucket, key, object.size, etag, class), ledger.as_ref());
                }
            }
            (format!("{url}, listed with ListObjectsV2"), 0)
        }
        Source::Inventory(location) => {
            let s3 = match location {
                Location::S3 { .. } => Some(bucketlens_runtime::aws::s3_client(&settings.s3).await),
                Location::Local(_) => None,
            };
            let scratch = settings.data_dir.join("tmp");
            let producer =
                InventoryProducer::new(Output::Print, Checkpoint::open(None)?, s3, settings.inventory.clone(), scratch);
            let manifest = producer
                .each_listed(location, |file, line, row| match row {
                    Ok(change) if change.kind == ChangeKind::Delete => {}
                    Ok(change) => {
                        if let Some(class) = change.storage_class.as_deref().filter(|c| !KNOWN_CLASSES.contains(c)) {
                            tally.problem(format!(
                                "{file}, line {line}: column StorageClass: {class:?} is not a storage class S3 \
                                 documents"
                            ));
                        }
                        tally.add(change, ledger.as_ref());
                    }
                    Err(reason) => tally.problem(format!("{file}, line {line}: {reason}")),
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let columns = manifest.columns().map_err(anyhow::Error::msg)?;
            if columns.storage_class.is_none() {
                tally.problem(format!(
                    "{location}: the report has no StorageClass column, so archived objects cannot be told apart: \
                     add it to the inventory's optional fields"
                ));
            }
            (
                format!("{location} (bucket {}), an S3 Inventory report", manifest.source_bucket),
                manifest.files.len() as u64 + 1,
            )
        }
    };
    let (rate, rate_source) = match args.rate {
        Some(rate) if rate > 0.0 && rate.is_finite() => (rate, "given with --rate".to_string()),
        Some(rate) => bail!("--rate must be a positive number of images per second, got {rate}"),
        None => measure(settings, &source, &tally, &labeler).await?,
    };
    let kind = match source {
        Source::Dir { .. } => Kind::Folder,
        Source::S3(_) => Kind::Listing,
        Source::Inventory(_) => Kind::Inventory,
    };
    let plan = Plan {
        source: kind,
        described,
        tally,
        rate,
        rate_source,
        list_requests,
        report_files,
        labelers: args.labelers,
    };
    let value = plan.to_json(settings);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        plan.print(settings, &value);
    }
    Ok(ExitCode::SUCCESS)
}

/// The local model's images/s on a sample of the source's images to label (or of its
/// images, when all are labeled): read, then labeled at once, timed from the first
/// label to the last. Rekognition is not called for it.
async fn measure(
    settings: &Settings,
    source: &Source,
    tally: &Tally,
    labeler: &Arc<dyn Labeler>,
) -> anyhow::Result<(f64, String)> {
    if settings.labeler.backend == LabelerBackend::Rekognition {
        return Ok((0.0, "not measured: the labeler is Rekognition (give --rate for the local model)".into()));
    }
    if tally.sample.is_empty() {
        return Ok((0.0, "not measured: nothing to label".into()));
    }
    let sources = match source {
        Source::Dir { .. } => None,
        _ => Some(wiring::object_sources(settings).await?),
    };
    let mut images = Vec::new();
    for change in &tally.sample {
        let bytes = match (source, &sources) {
            (Source::Dir { root, .. }, _) => std::fs::read(root.join(&change.key)).ok(),
            (_, None) => None,
            (_, Some(sources)) => {
                let object = bucketlens_runtime::bucket::ObjectRef {
                    bucket: &change.bucket,
                    key: &change.key,
                    version_id: None,
                };
                sources.get(object, settings.labeler.max_bytes).await.ok().flatten().map(|o| o.bytes)
            }
        };
        images.extend(bytes);
    }
    let Some(first) = images.first().cloned() else {
        return Ok((0.0, "not measured: no sample image could be read".into()));
    };
    // The first image warms the model up, untimed.
    let _ = labeler.label(first).await;
    let started = Instant::now();
    let n = images.len();
    let mut tasks = tokio::task::JoinSet::new();
    for bytes in images {
        let labeler = Arc::clone(labeler);
        tasks.spawn(async move { labeler.label(bytes).await.is_ok() });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        ok += usize::from(done.unwrap_or(false));
    }
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let how = match source {
        Source::Dir { .. } => format!("measured here on {n} of the images to label"),
        _ => format!("measured here on {n} of the images to label ({n} GETs)"),
    };
    Ok((ok as f64 / secs, how))
}

#[derive(Clone, Copy)]
enum Kind {
    Folder,
    Listing,
    Inventory,
}

struct Plan {
    source: Kind,
    described: String,
    tally: Tally,
    rate: f64,
    rate_source: String,
    list_requests: u64,
    report_files: u64,
    labelers: u32,
}

impl Plan {
    fn to_json(&self, settings: &Settings) -> Value {
        let t = &self.tally;
        let prices = &settings.prices;
        let by_class: BTreeMap<&String, Value> =
            t.by_class.iter().map(|(class, (n, bytes))| (class, json!({"objects": n, "bytes": bytes}))).collect();
        let mut prefixes: Vec<(&String, &(u64, u64))> = t.by_prefix.iter().collect();
        prefixes.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(b.0)));
        let mut by_prefix: Vec<Value> = prefixes
            .iter()
            .take(TOP_PREFIXES)
            .map(|(prefix, (n, bytes))| json!({"prefix": prefix, "objects": n, "bytes": bytes}))
            .collect();
        if prefixes.len() > TOP_PREFIXES {
            let rest = &prefixes[TOP_PREFIXES..];
            let (n, bytes) = rest.iter().fold((0, 0), |(n, b), (_, (m, c))| (n + m, b + c));
            by_prefix.push(json!({"prefix": "other", "prefixes": rest.len(), "objects": n, "bytes": bytes}));
        }
        let labelers = f64::from(self.labelers);
        let local_seconds = if self.rate > 0.0 { Some(t.to_label as f64 / (self.rate * labelers)) } else { None };
        let tps = settings.labeler.rekognition.max_tps;
        // Each object to label: one GET (the local model reads it; with Rekognition, its
        // metadata's ranged GET); an inventory row is checked with a HEAD first, and its
        // manifest and data files are read; each archived image, one HEAD (is it
        // restored?). A folder costs no request.
        let (gets, heads) = match self.source {
            Kind::Folder => (0, 0),
            Kind::Listing => (t.to_label, t.archived),
            Kind::Inventory => (t.to_label + self.report_files, t.archived + t.to_label),
        };
        let s3_usd = (gets + heads) as f64 / 1000.0 * prices.s3_get_per_1000
            + self.list_requests as f64 / 1000.0 * prices.s3_list_per_1000;
        json!({
            "source": self.described,
            "objects": t.objects,
            "images": t.images,
            "other_objects": t.objects - t.images,
            "bytes": t.bytes,
            "image_bytes": t.image_bytes,
            "by_storage_class": by_class,
            "by_prefix": by_prefix,
            "already_labeled": t.already_labeled,
            "to_label": t.to_label,
            "to_label_bytes": t.to_label_bytes,
            "archived": t.archived,
            "archived_bytes": t.archived_bytes,
            "problems": t.problems,
            "problem_count": t.problem_count,
            "estimates": {
                "local": {
                    "images_per_second": self.rate,
                    "rate": self.rate_source,
                    "labelers": self.labelers,
                    "seconds": local_seconds,
                },
                "rekognition": {
                    "calls": t.to_label,
                    "max_tps": tps,
                    "seconds": t.to_label as f64 / tps,
                    "usd": prices.detect_labels(t.to_label),
                    "prices_dated": PRICES_DATED,
                },
                "s3": {
                    "requests": {"get": gets, "head": heads, "list": self.list_requests},
                    "usd": s3_usd,
                },
            },
        })
    }

    fn print(&self, settings: &Settings, v: &Value) {
        let t = &self.tally;
        let say = |line: String| println!("{}", bucketlens_runtime::text::escape_controls(&line));
        say(format!("plan for {}: nothing is labeled", self.described));
        say(format!(
            "{} objects ({}): {} images ({}), {} other",
            t.objects,
            size(t.bytes),
            t.images,
            size(t.image_bytes),
            t.objects - t.images
        ));
        say(format!(
            "images: {} already labeled · {} to label ({}) · {} archived, skipped ({})",
            t.already_labeled,
            t.to_label,
            size(t.to_label_bytes),
            t.archived,
            size(t.archived_bytes)
        ));
        println!("by storage class:");
        for (class, (n, bytes)) in &t.by_class {
            say(format!("  {class:<22} {n:>10} objects  {}", size(*bytes)));
        }
        println!("by top-level prefix:");
        for p in v["by_prefix"].as_array().into_iter().flatten() {
            let (n, bytes) = (p["objects"].as_u64().unwrap_or(0), p["bytes"].as_u64().unwrap_or(0));
            say(format!("  {:<22} {n:>10} objects  {}", p["prefix"].as_str().unwrap_or_default(), size(bytes)));
        }
        let e = &v["estimates"];
        println!("estimates for the {} images to label:", t.to_label);
        match e["local"]["seconds"].as_f64() {
            Some(secs) => say(format!(
                "  local model: {:.1} images/s a labeler ({}), {} labeler(s): {}",
                self.rate,
                self.rate_source,
                self.labelers,
                duration(secs)
            )),
            None => say(format!("  local model: {}", self.rate_source)),
        }
        say(format!(
            "  Rekognition: {} DetectLabels calls at {} calls/s ([labeler.rekognition] max-tps): {}; ${:.2} at list \
             price (tiered, US East, {PRICES_DATED}; [prices] detect-labels)",
            t.to_label,
            settings.labeler.rekognition.max_tps,
            duration(e["rekognition"]["seconds"].as_f64().unwrap_or(0.0)),
            e["rekognition"]["usd"].as_f64().unwrap_or(0.0)
        ));
        let r = &e["s3"]["requests"];
        say(format!(
            "  S3 requests: {} GET, {} HEAD, {} LIST: ${:.4} at list price (S3 Standard, US East, {PRICES_DATED})",
            r["get"],
            r["head"],
            r["list"],
            e["s3"]["usd"].as_f64().unwrap_or(0.0)
        ));
        if t.problem_count > 0 {
            say(format!("{} problems (the first {} named):", t.problem_count, t.problems.len().min(20)));
            for problem in t.problems.iter().take(20) {
                say(format!("  {problem}"));
            }
        }
    }
}

/// Bytes in the unit a person reads (decimal: 2.5 MB).
pub fn size(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn duration(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.0} s"),
        s if s < 3600.0 => format!("{:.1} min", s / 60.0),
        s if s < 86_400.0 * 2.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_labels_is_priced_tier_by_tier() {
        let prices = Prices::default();
        assert!((prices.detect_labels(1_000) - 1.0).abs() < 1e-9);
        assert!((prices.detect_labels(1_000_000) - 1_000.0).abs() < 1e-6);
        // 1M at $1, 4M at $0.80, 30M at $0.60, 5M at $0.25 per 1,000.
        let forty_million = 1_000.0 + 3_200.0 + 18_000.0 + 1_250.0;
        assert!((prices.detect_labels(40_000_000) - forty_million).abs() < 1e-6);
        assert_eq!(prices.detect_labels(0), 0.0);
    }

    #[test]
    fn tiers_out_of_order_are_refused() {
        let mut prices = Prices::default();
        prices.detect_labels.swap(0, 1);
        assert!(prices.validate().is_err());
        assert!(Prices::default().validate().is_ok());
    }

    #[test]
    fn sizes_and_durations_read_as_a_person_reads_them() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(2_500_000), "2.5 MB");
        assert_eq!(duration(30.0), "30 s");
        assert_eq!(duration(5400.0), "1.5 h");
        assert_eq!(duration(86_400.0 * 3.0), "3.0 days");
    }
}

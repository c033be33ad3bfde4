//! `bucketlens search QUERY`: label search, as a table or `--json`.

use std::process::ExitCode;

use bucketlens_index::{DocState, Expr, Hit, SearchRequest, Sort};
use bucketlens_runtime::text::escape_controls;
use bucketlens_schemas::taken::year_bounds;
use serde_json::json;

use super::pct;
use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Labels with AND / OR / NOT (or -label), parentheses and "quoted multi-word labels";
    /// name:TEXT for file names holding TEXT; has:labels (-has:labels for photos with
    /// none); `*` or nothing for everything.
    #[arg(default_value = "")]
    query: String,
    /// A label matches only at this confidence or above (0-100). With no label in the
    /// query, above 0 it means photos with some label at this confidence or above.
    #[arg(long, default_value_t = 0.0)]
    min_confidence: f32,
    /// The order: relevance (the labels asked for, surest first), name, newest or oldest
    /// (by last modified), or taken (most recently taken first, by the camera's clock).
    #[arg(long, default_value = "relevance", value_parser = parse_sort)]
    sort: Sort,
    /// Only this bucket.
    #[arg(long)]
    bucket: Option<String>,
    /// Only keys starting with this.
    #[arg(long)]
    prefix: Option<String>,
    /// Only documents labeled by this model version (see `status`, or a hit's `model`).
    #[arg(long)]
    model_version: Option<String>,
    /// Only objects modified at or after this time (RFC 3339, e.g. 2024-06-01T00:00:00Z).
    #[arg(long, value_parser = bucketlens_pipeline::replay::parse_time)]
    modified_after: Option<i64>,
    /// Only objects modified at or before this time (RFC 3339).
    #[arg(long, value_parser = bucketlens_pipeline::replay::parse_time)]
    modified_before: Option<i64>,
    /// Only photos taken on or after this date (`2019`, `2019-07`, `2019-07-14`), by
    /// the camera's clock.
    #[arg(long, value_parser = taken_from)]
    taken_after: Option<i64>,
    /// Only photos taken on or before this date (`2019`, `2019-07`, `2019-07-14`: the
    /// whole year, month or day).
    #[arg(long, value_parser = taken_until)]
    taken_before: Option<i64>,
    /// Only objects of at least this many bytes.
    #[arg(long)]
    min_size: Option<i64>,
    /// Only objects of at most this many bytes.
    #[arg(long)]
    max_size: Option<i64>,
    /// At most this many results.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Search by meaning: the photos whose embeddings are nearest this phrase's (a
    /// CLIP-class `labeler.embedder`), best first, with the cosine; QUERY and the other
    /// options filter.
    #[arg(long, value_name = "PHRASE")]
    semantic: Option<String>,
    /// With --semantic: only photos at least this similar (0-1) [default: the model's
    /// floor in its catalogue entry].
    #[arg(long, requires = "semantic")]
    min_similarity: Option<f64>,
    /// List the objects that could not be labeled, with the reason.
    #[arg(long)]
    failed: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let mut query = Expr::parse(&args.query).map_err(anyhow::Error::msg)?;
    if args.taken_after.is_some() || args.taken_before.is_some() {
        // Open ends are the years 1 and 9999, which every backend's dates hold.
        let (first, last) = (year_bounds(1).0, year_bounds(9999).1);
        let range = Expr::Taken(args.taken_after.unwrap_or(first), args.taken_before.unwrap_or(last));
        query = match query {
            Expr::All => range,
            other => Expr::And(vec![other, range]),
        };
    }
    if !(0.0..=100.0).contains(&args.min_confidence) {
        anyhow::bail!("--min-confidence must be between 0 and 100");
    }
    let index = wiring::open_existing_index(settings).await?;
    let mut request = SearchRequest::new(query.clone());
    request.min_confidence = args.min_confidence;
    request.bucket = args.bucket;
    request.prefix = args.prefix;
    request.limit = args.limit;
    request.sort = args.sort;
    request.model_version = args.model_version;
    request.modified = (args.modified_after, args.modified_before);
    request.size = (args.min_size, args.max_size);
    if args.failed {
        request.state = DocState::Failed;
    }
    let mut floor = None;
    if let Some(phrase) = &args.semantic {
        let (tower, model) = bucketlens_labeler::text_tower(&settings.labeler).await.map_err(anyhow::Error::msg)?;
        let min = args.min_similarity.unwrap_or(model.entry.min_similarity);
        if !(0.0..=1.0).contains(&min) {
            anyhow::bail!("--min-similarity {min} is outside 0-1");
        }
        let embedding = tower.embed(phrase).map_err(anyhow::Error::msg)?;
        request.like = Some(bucketlens_index::Like { embedding, except: None });
        floor = Some(min);
    }
    let mut response = index.search(request).await?;
    if let Some(min) = floor {
        // Under the floor is not a match: a phrase about nothing here finds nothing.
        response.hits.retain(|hit| hit.similarity.unwrap_or(0.0) >= min);
        response.total = response.hits.len() as u64;
    }
    let wanted = query.positive_labels();
    if args.json {
        let hits: Vec<_> = response.hits.iter().map(Hit::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "total": response.total, "hits": hits }))?);
        return Ok(ExitCode::SUCCESS);
    }
    if response.hits.is_empty() {
        println!("no matches");
        return Ok(ExitCode::SUCCESS);
    }
    for hit in &response.hits {
        // Names come from outside: a key with a line break in it must not print a
        // label line of its own (control characters are escaped, as `ls -b` does).
        println!("{}", escape_controls(&format!("{}/{}", hit.bucket, hit.key)));
        if let Some(error) = &hit.error {
            println!("    failed: {}", escape_controls(&format!("{}: {}", error.code, error.message)));
            continue;
        }
        let mut line = label_line(hit, &wanted);
        if let Some(similarity) = hit.similarity {
            line = if line.is_empty() {
                format!("similarity {similarity:.3}")
            } else {
                format!("similarity {similarity:.3} · {line}")
            };
        }
        println!("    {}", escape_controls(&line));
        if let Some(line) = hit.metadata.as_ref().and_then(metadata_line) {
            println!("    {}", escape_controls(&line));
        }
    }
    match floor {
        Some(min) => println!("{} shown, best first (similarity at least {min:.2})", response.hits.len()),
        None => println!("{} of {} shown", response.hits.len(), response.total),
    }
    Ok(ExitCode::SUCCESS)
}

/// When, where and with what the photo was taken, and its keywords, on one line.
fn metadata_line(metadata: &bucketlens_schemas::PhotoMetadata) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(taken) = &metadata.taken_at {
        parts.push(format!("taken {}", taken.replacen('T', " ", 1)));
    }
    if let Some(camera) = metadata.camera.as_ref().and_then(bucketlens_index::photo::camera_name) {
        parts.push(camera);
    }
    if let Some(place) = &metadata.place {
        parts.push(format!("{}, {}", place.city, place.country));
    }
    if !metadata.keywords.is_empty() {
        parts.push(metadata.keywords.join(", "));
    }
    parts.retain(|p| !p.is_empty());
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The first instant of a `taken:` date.
fn taken_from(text: &str) -> Result<i64, String> {
    taken_span(text).map(|(from, _)| from)
}

/// The instant after a `taken:` date ends.
fn taken_until(text: &str) -> Result<i64, String> {
    taken_span(text).map(|(_, to)| to)
}

fn taken_span(text: &str) -> Result<(i64, i64), String> {
    match Expr::parse(&format!("taken:{}", text.trim())) {
        Ok(Expr::Taken(from, to)) => Ok((from, to)),
        _ => Err(format!("expected a date such as 2019, 2019-07 or 2019-07-14, got {text:?}")),
    }
}

fn parse_sort(text: &str) -> Result<Sort, String> {
    Sort::parse(text).ok_or_else(|| format!("expected relevance, name, newest, oldest or taken, got {text:?}"))
}

/// The labels asked for first, then the most confident others; 6 in all.
fn label_line(hit: &Hit, wanted: &[String]) -> String {
    let mut shown: Vec<&bucketlens_schemas::Label> =
        hit.labels.iter().filter(|l| wanted.contains(&l.name.to_lowercase())).collect();
    for label in &hit.labels {
        if shown.len() >= 6 {
            break;
        }
        if !shown.iter().any(|s| s.name == label.name) {
            shown.push(label);
        }
    }
    shown.iter().map(|l| format!("{} {}", l.name, pct(l.confidence))).collect::<Vec<_>>().join(" · ")
}

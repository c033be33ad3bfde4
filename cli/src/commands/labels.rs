//! `bucketlens labels`: how many documents carry each label.

use std::process::ExitCode;

use bucketlens_index::{Expr, SearchRequest};
use serde_json::json;

use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only documents matching this query (same syntax as search).
    #[arg(default_value = "")]
    query: String,
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long)]
    prefix: Option<String>,
    /// Labels at or above this confidence only count when used in QUERY.
    #[arg(long, default_value_t = 0.0)]
    min_confidence: f32,
    /// The most frequent N labels.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let index = wiring::open_existing_index(settings).await?;
    let mut request = SearchRequest::new(Expr::parse(&args.query).map_err(anyhow::Error::msg)?);
    request.bucket = args.bucket;
    request.prefix = args.prefix;
    request.min_confidence = args.min_confidence;
    request.limit = 0;
    request.label_counts = Some(args.limit);
    let response = index.search(request).await?;
    if args.json {
        let labels: Vec<_> =
            response.label_counts.iter().map(|(name, n)| json!({"name": name, "documents": n})).collect();
        println!("{}", serde_json::to_string_pretty(&json!({"documents": response.total, "labels": labels}))?);
        return Ok(ExitCode::SUCCESS);
    }
    for (name, n) in &response.label_counts {
        println!("{n:>8}  {}", bucketlens_runtime::text::escape_controls(name));
    }
    println!("{} documents", response.total);
    Ok(ExitCode::SUCCESS)
}

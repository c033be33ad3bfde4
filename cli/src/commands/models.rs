//! `bucketlens models list|fetch`: the models a user fetches once, pinned by SHA-256
//! (see `bucketlens_labeler::models`).

use std::path::PathBuf;
use std::process::ExitCode;

use bucketlens_index::{Expr, Like, SearchRequest};
use bucketlens_labeler::models::{self, Catalogue};
use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring;
use serde_json::json;

/// How many nearest photos a phrase's examples are looked for in.
const AT: usize = 10;

async fn eval(settings: &Settings, file: &std::path::Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let examples: std::collections::BTreeMap<String, Vec<String>> =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if examples.is_empty() || examples.values().any(Vec::is_empty) {
        anyhow::bail!("{}: each phrase needs at least one \"bucket/key\" of a photo it should find", file.display());
    }
    let index = wiring::open_existing_index(settings).await?;
    let (tower, model) = bucketlens_labeler::text_tower(&settings.labeler).await.map_err(anyhow::Error::msg)?;
    let (mut rows, mut found_all, mut wanted_all, mut lowest) = (Vec::new(), 0usize, 0usize, f64::INFINITY);
    for (phrase, wanted) in &examples {
        let mut request = SearchRequest::new(Expr::All);
        request.limit = AT;
        request.like = Some(Like { embedding: tower.embed(phrase).map_err(anyhow::Error::msg)?, except: None });
        let hits = index.search(request).await?.hits;
        let named: Vec<String> = hits.iter().map(|h| format!("{}/{}", h.bucket, h.key)).collect();
        let found: Vec<(&String, f64)> = wanted
            .iter()
            .filter_map(|w| named.iter().position(|n| n == w).map(|i| (w, hits[i].similarity.unwrap_or(0.0))))
            .collect();
        lowest = found.iter().map(|f| f.1).fold(lowest, f64::min);
        found_all += found.len();
        wanted_all += wanted.len();
        let missed: Vec<&String> = wanted.iter().filter(|w| !found.iter().any(|f| f.0 == *w)).collect();
        rows.push(json!({
            "phrase": phrase,
            "recall": found.len() as f64 / wanted.len() as f64,
            "found": found.iter().map(|(k, s)| json!({ "key": k, "similarity": s })).collect::<Vec<_>>(),
            "missed": missed,
            "nearest": hits.first().map(|h| json!({ "key": format!("{}/{}", h.bucket, h.key), "similarity": h.similarity })),
        }));
    }
    let recall = found_all as f64 / wanted_all as f64;
    let floor = lowest.is_finite().then_some(lowest);
    if as_json {
        let report = json!({
            "model": model.embedding_model(), "at": AT, "recall": recall, "phrases": rows,
            "floor_keeping_every_found": floor, "min_similarity": model.entry.min_similarity,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for row in &rows {
        let missed = row["missed"].as_array().map_or(0, Vec::len);
        println!(
            "{:>5.2}  {}{}",
            row["recall"].as_f64().unwrap_or(0.0),
            row["phrase"].as_str().unwrap_or(""),
            if missed > 0 { format!(" (missed {missed})") } else { String::new() }
        );
    }
    println!("recall@{AT} {recall:.2} over {} phrases, {wanted_all} photos ({})", rows.len(), model.embedding_model());
    if let Some(floor) = floor {
        println!(
            "the least alike photo found was {floor:.3} alike; the model's floor is {:.2} (--min-similarity)",
            model.entry.min_similarity
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// What the catalogue offers, and what is installed (each file checked against its pin).
    List {
        /// A catalogue of your own (the shape of models/catalogue.toml), added to the built-in one.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Download a model into ~/.cache/bucketlens/models/NAME/ ($BUCKETLENS_MODELS_DIR),
    /// keeping each file only if it matches its SHA-256 pin.
    Fetch {
        name: String,
        /// A catalogue of your own, added to the built-in one (it may pin an entry).
        #[arg(long)]
        catalogue: Option<PathBuf>,
        /// A mirror to fetch from instead of the publisher: URL/NAME/image.onnx and
        /// URL/NAME/text.onnx (a models folder served over HTTP is one).
        #[arg(long)]
        from: Option<String>,
    },
    /// How well `labeler.embedder` finds your own photos by meaning: for each phrase of
    /// FILE (TOML: "a phrase" = ["bucket/key", …], photos already indexed), whether
    /// those photos are among the 10 nearest, and how alike they are. Prints recall@10
    /// per phrase and over all, and the similarity a floor would need to keep them.
    Eval {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: Args, settings: impl Fn() -> anyhow::Result<Settings>) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Eval { file, json } => eval(&settings()?, &file, json).await,
        Sub::List { catalogue, json } => {
            list(&models::catalogue(catalogue.as_deref()).map_err(anyhow::Error::msg)?, json)
        }
        Sub::Fetch { name, catalogue, from } => {
            let catalogue = models::catalogue(catalogue.as_deref()).map_err(anyhow::Error::msg)?;
            let entry = catalogue.get(&name).ok_or_else(|| {
                let names: Vec<&str> = catalogue.keys().map(String::as_str).collect();
                anyhow::anyhow!("the catalogue has no model {name:?}; it has {}", names.join(", "))
            })?;
            let installed = models::fetch(&name, entry, from.as_deref(), |line| println!("{line}"))
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "installed {name} ({}, licence {}) in {}\nuse it with `[labeler] embedder = \"{name}\"`; the next run relabels with it",
                installed.entry.description,
                installed.entry.licence,
                models::dir().join(&name).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(catalogue: &Catalogue, as_json: bool) -> anyhow::Result<ExitCode> {
    let dir = models::dir();
    let mut everything = catalogue.clone();
    // Installed from a catalogue of one's own: listed too.
    for name in models::installed_names() {
        if let (false, Ok(entry)) = (everything.contains_key(&name), models::manifest_entry(&name)) {
            everything.insert(name, entry);
        }
    }
    let mut rows = Vec::new();
    for (name, entry) in &everything {
        let installed = dir.join(name).join(models::MANIFEST).exists();
        let status = match (installed, models::installed(name)) {
            (_, Ok(_)) => "installed".to_string(),
            (false, Err(_)) if entry.image.sha256.is_empty() => {
                "not pinned yet (pin it in a catalogue of your own)".into()
            }
            (false, Err(_)) => "can be fetched".to_string(),
            (true, Err(e)) => format!("refused: {e}"),
        };
        rows.push((name, entry, status));
    }
    if as_json {
        let models: Vec<_> = rows
            .iter()
            .map(|(name, entry, status)| {
                json!({
                    "name": name, "description": entry.description, "licence": entry.licence,
                    "source": entry.source, "dimensions": entry.dimensions, "status": status,
                    "image": entry.image, "text": entry.text,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "dir": dir, "models": models }))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("models in {}", dir.display());
    for (name, entry, status) in rows {
        println!("{name}: {} ({}, {} dimensions)\n    {status}", entry.description, entry.licence, entry.dimensions);
    }
    Ok(ExitCode::SUCCESS)
}

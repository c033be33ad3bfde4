//! `bucketlens models list|fetch`: the models a user fetches once, pinned by SHA-256
//! (see `bucketlens_labeler::models`).

use std::path::PathBuf;
use std::process::ExitCode;

use bucketlens_labeler::models::{self, Catalogue};
use serde_json::json;

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
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
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

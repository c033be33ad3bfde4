//! `bucketlens produce listing DIR [--watch]`: the producer as its own process,
//! writing objects.changed.v1 on the configured log (Kafka, or the embedded one).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bucketlens_listing::state::State;
use bucketlens_listing::{DirProducer, SyncStats};
use bucketlens_runtime::bucket::LocalDir;
use bucketlens_runtime::metrics::Counter;

use crate::pipeline;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum Source {
    /// List a folder (a bucket named after it) and produce its new, changed and
    /// deleted images since the last listing recorded in this data dir.
    Listing {
        /// A folder (`./photos`, `file:///data/photos`).
        source: String,
        /// Keep running and produce changes as they happen, until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let Source::Listing { source, watch } = args.source;
    let root = super::index::local_root(&source)?;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = pipeline::open_log(settings).await?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let dir = LocalDir::new(&root).with_context(|| format!("opening {}", root.display()))?;
    let producer = Arc::new(DirProducer::new(
        dir,
        Arc::clone(&log),
        State::open(&settings.listing_path())?,
        settings.listing.clone(),
        vec![settings.data_dir.clone()],
    )?);
    let (upserts, deletes) = (Counter::default(), Counter::default());
    let mut registry = pipeline::registry();
    upserts.register(&mut registry, "producer_upserts", "Upsert records produced to objects.changed.v1");
    deletes.register(&mut registry, "producer_deletes", "Delete records produced to objects.changed.v1");
    if watch {
        pipeline::serve_metrics(settings, registry, &shutdown).await?;
    }
    let count = |s: &SyncStats| {
        upserts.add(s.upserts);
        deletes.add(s.deletes);
    };
    let stats = producer.sync_all().await.with_context(|| format!("listing {}", root.display()))?;
    count(&stats);
    eprintln!(
        "listed {} images in {} (bucket {}): produced {} upserts and {} deletes",
        stats.images,
        root.display(),
        producer.source().bucket(),
        stats.upserts,
        stats.deletes
    );
    if watch {
        eprintln!("watching {} for changes (Ctrl-C to stop)", root.display());
        bucketlens_listing::watch::run(Arc::clone(&producer), settings.listing.debounce, shutdown.clone(), |s| {
            count(&s)
        })
        .await?;
        eprintln!("stopped: produced {} upserts and {} deletes in all", upserts.get(), deletes.get());
    }
    Ok(ExitCode::SUCCESS)
}

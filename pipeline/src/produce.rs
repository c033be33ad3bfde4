//! `bucketlens produce listing|inventory|events …`: the producers as their own
//! processes, writing objects.changed.v1 on the configured log (Kafka, or the
//! embedded one) — or, with `--print`, printing the normalised records as JSON lines.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use bucketlens_inventory::checkpoint::Checkpoint;
use bucketlens_inventory::{InventoryProducer, Location, ReportStats};
use bucketlens_listing::s3::{S3Lister, S3Url};
use bucketlens_listing::state::State;
use bucketlens_listing::DirProducer;
use bucketlens_runtime::bucket::LocalDir;
use bucketlens_runtime::log::Output;

use crate::settings::Settings;
use crate::wiring;

#[derive(Debug, clap::Subcommand)]
pub enum Source {
    /// List a folder or an S3 prefix and produce its new, changed and deleted images
    /// since the last listing recorded in this data dir.
    Listing {
        /// A folder (`./photos`, `file:///data/photos`) or `s3://bucket/prefix`.
        source: String,
        /// Keep running and produce a folder's changes as they happen, until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Print the records as JSON lines instead of producing them (remembers nothing).
        #[arg(long)]
        print: bool,
    },
    /// Produce an S3 Inventory report: `s3://bucket/…/manifest.json` or a local path.
    /// A report is produced once; an interrupted one resumes where it stopped.
    Inventory {
        /// The report's manifest.json (omit with --watch).
        #[arg(required_unless_present = "watch", conflicts_with = "watch")]
        manifest: Option<String>,
        /// Follow `s3://bucket/prefix/` and produce every new report (each
        /// `manifest.checksum` marks one) until Ctrl-C.
        #[arg(long, value_name = "S3_PREFIX")]
        watch: Option<String>,
        #[arg(long)]
        print: bool,
    },
    /// Produce S3 event notifications: from an SQS queue, an HTTP webhook or a file.
    Events {
        /// The SQS queue URL to long-poll until Ctrl-C.
        #[arg(long, value_name = "QUEUE_URL", conflicts_with_all = ["webhook", "from_file"])]
        sqs: Option<String>,
        /// Serve a webhook on this address (`127.0.0.1:8080`) until Ctrl-C.
        #[arg(long, value_name = "ADDR", conflicts_with = "from_file")]
        webhook: Option<SocketAddr>,
        /// Read notifications saved to a file (JSON documents or JSON lines).
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        #[arg(long)]
        print: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

impl Args {
    /// Whether this producer runs until stopped (a watch, a queue, a webhook).
    pub fn follows(&self) -> bool {
        match &self.source {
            Source::Listing { watch, .. } => *watch,
            Source::Inventory { watch, .. } => watch.is_some(),
            Source::Events { from_file, .. } => from_file.is_none(),
        }
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    match args.source {
        Source::Listing { source, watch, print } => {
            let output = output(settings, print).await?;
            match S3Url::parse(&source) {
                Some(url) => listing_s3(settings, url, output, print).await,
                None => listing_dir(settings, &source, watch, output, print).await,
            }
        }
        Source::Inventory { manifest, watch, print } => inventory(settings, manifest, watch, print).await,
        Source::Events { sqs, webhook, from_file, print } => events(settings, sqs, webhook, from_file, print).await,
    }
}

async fn output(settings: &Settings, print: bool) -> anyhow::Result<Output> {
    if print {
        return Ok(Output::Print);
    }
    // The log and every SQLite store make the data dir they live in.
    Ok(Output::Log(wiring::open_log(settings).await?))
}

/// The listing state: the data dir's, or a throwaway one for `--print`.
fn listing_state(settings: &Settings, print: bool) -> anyhow::Result<State> {
    let path = (!print).then(|| settings.listing_path());
    Ok(State::open(path.as_deref())?)
}

async fn listing_s3(settings: &Settings, url: S3Url, output: Output, print: bool) -> anyhow::Result<ExitCode> {
    let client = bucketlens_runtime::aws::s3_client(&settings.s3).await;
    let lister = S3Lister::new(client, url.clone(), output, listing_state(settings, print)?, settings.listing.clone());
    let stats = lister.sync().await.with_context(|| format!("listing {url}"))?;
    bucketlens_runtime::say!(
        "listed {} images in {url}: produced {} upserts and {} deletes",
        stats.images,
        stats.upserts,
        stats.deletes
    );
    Ok(ExitCode::SUCCESS)
}

async fn listing_dir(
    settings: &Settings,
    source: &str,
    watch: bool,
    output: Output,
    print: bool,
) -> anyhow::Result<ExitCode> {
    let root = crate::index::local_root(source)?;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let dir = LocalDir::new(&root).with_context(|| format!("opening {}", root.display()))?;
    let producer = Arc::new(DirProducer::new(
        dir,
        output,
        listing_state(settings, print)?,
        settings.listing.clone(),
        vec![settings.data_dir.clone()],
    )?);
    let metrics = bucketlens_listing::Metrics::default();
    if watch {
        let mut registry = wiring::registry();
        metrics.register(&mut registry);
        wiring::serve_metrics(settings, registry, &shutdown).await?;
    }
    let stats = producer.sync_all().await.with_context(|| format!("listing {}", root.display()))?;
    metrics.count(&stats);
    bucketlens_runtime::say!(
        "listed {} images in {} (bucket {}): produced {} upserts and {} deletes",
        stats.images,
        root.display(),
        producer.source().bucket(),
        stats.upserts,
        stats.deletes
    );
    for line in crate::index::unread(&stats) {
        bucketlens_runtime::say!("{line}");
    }
    if watch {
        bucketlens_runtime::say!("watching {} for changes (Ctrl-C to stop)", root.display());
        bucketlens_listing::watch::run(Arc::clone(&producer), settings.listing.debounce, shutdown.clone(), |s| {
            metrics.count(&s)
        })
        .await?;
        bucketlens_runtime::say!(
            "stopped: produced {} upserts and {} deletes in all",
            metrics.upserts.get(),
            metrics.deletes.get()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn inventory(
    settings: &Settings,
    manifest: Option<String>,
    watch: Option<String>,
    print: bool,
) -> anyhow::Result<ExitCode> {
    let output = output(settings, print).await?;
    let checkpoint = Checkpoint::open((!print).then(|| settings.data_dir.join("inventory.sqlite")).as_deref())?;
    let needs_s3 = watch.is_some() || manifest.as_deref().is_some_and(|m| m.starts_with("s3://"));
    let s3 = match needs_s3 {
        true => Some(bucketlens_runtime::aws::s3_client(&settings.s3).await),
        false => None,
    };
    let scratch = settings.data_dir.join("tmp");
    let producer = InventoryProducer::new(output, checkpoint, s3, settings.inventory.clone(), scratch);
    let mut unreadable = 0;
    let mut report = |location: &Location, stats: &ReportStats| {
        let produced = &stats.produced;
        unreadable += produced.unreadable;
        if stats.already_done {
            bucketlens_runtime::say!("{location}: produced by an earlier run; nothing to do");
            return;
        }
        bucketlens_runtime::say!(
            "{location}: {} rows, produced {} upserts and {} deletes, skipped {} (noncurrent versions, folders, non-images), {} unreadable",
            stats.rows, produced.upserts, produced.deletes, produced.skipped, produced.unreadable
        );
    };
    match (manifest, watch) {
        (Some(manifest), None) => {
            let location = Location::parse(&manifest);
            let stats = producer.produce(&location).await?;
            report(&location, &stats);
        }
        (None, Some(prefix)) => {
            let Some(url) = S3Url::parse(&prefix) else { bail!("--watch takes s3://bucket/prefix/, not {prefix}") };
            let shutdown = bucketlens_runtime::shutdown::on_signals();
            bucketlens_runtime::say!("watching {url} for new inventory reports (Ctrl-C to stop)");
            producer.watch(&url.bucket, &url.prefix, shutdown, report).await?;
        }
        _ => bail!("give either a manifest (s3://bucket/…/manifest.json or a path) or --watch s3://bucket/prefix/"),
    }
    if unreadable > 0 {
        bucketlens_runtime::say!("error: {unreadable} rows could not be read (listed above with their file and line)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn events(
    settings: &Settings,
    sqs: Option<String>,
    webhook: Option<SocketAddr>,
    from_file: Option<PathBuf>,
    print: bool,
) -> anyhow::Result<ExitCode> {
    let output = output(settings, print).await?;
    let metrics = Arc::new(bucketlens_events::Metrics::default());
    let summary = |m: &bucketlens_events::Metrics| {
        bucketlens_runtime::say!(
            "produced {} upserts and {} deletes; skipped {}; {} malformed",
            m.upserts.get(),
            m.deletes.get(),
            m.skipped.get(),
            m.malformed.get()
        );
    };
    if let Some(path) = from_file {
        let documents = bucketlens_events::file::run(&path, &output, &metrics).await;
        summary(&metrics);
        let documents = documents?;
        bucketlens_runtime::say!("read {documents} notifications from {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let mut registry = wiring::registry();
    metrics.register(&mut registry);
    if !print {
        wiring::serve_metrics(settings, registry, &shutdown).await?;
    }
    if let Some(queue) = sqs {
        let queue = bucketlens_events::sqs::Queue::connect(&settings.events, &queue).await;
        bucketlens_runtime::say!("receiving S3 notifications from {queue} (Ctrl-C to stop)");
        bucketlens_events::sqs::run(&queue, &settings.events, &output, &metrics, shutdown).await?;
        summary(&metrics);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(addr) = webhook else { bail!("give one of --sqs QUEUE_URL, --webhook ADDR or --from-file FILE") };
    let (bound, server) =
        bucketlens_events::webhook::serve(addr, &settings.events, output, Arc::clone(&metrics), shutdown).await?;
    bucketlens_runtime::say!("webhook on http://{bound}/ (Ctrl-C to stop)");
    server.await??;
    summary(&metrics);
    Ok(ExitCode::SUCCESS)
}

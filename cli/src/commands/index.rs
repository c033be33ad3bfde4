//! `bucketlens index SOURCE [--watch]`: the whole pipeline in one process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bucketlens_index::{DocState, Expr, Index, SearchRequest};
use bucketlens_listing::state::State;
use bucketlens_listing::{DirProducer, SyncStats};
use bucketlens_runtime::bucket::LocalDir;
use bucketlens_schemas::topics;
use tokio::sync::watch;

use crate::pipeline::{self, Counters};
use crate::progress;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A folder (`./photos`, `file:///home/me/Pictures`). S3 sources come in a later release.
    source: String,
    /// Keep running and follow changes (new, replaced and deleted images) until Ctrl-C.
    #[arg(long)]
    watch: bool,
}

pub fn local_root(source: &str) -> anyhow::Result<PathBuf> {
    if source.starts_with("s3://") {
        bail!("{source}: S3 sources are not supported yet; use a local folder (or a local copy of the bucket)");
    }
    let path = PathBuf::from(source.strip_prefix("file://").unwrap_or(source));
    if !path.is_dir() {
        bail!("{source} is not a folder: bucketlens index takes a folder to label (it must exist)");
    }
    Ok(path)
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = local_root(&args.source)?;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = pipeline::open_log(settings).await?;
    let index = pipeline::open_index_writer(settings)?;
    let labeler = pipeline::load_labeler(settings).await?;
    let source = LocalDir::new(&root).with_context(|| format!("opening {}", root.display()))?;
    let state = State::open(&settings.listing_path())?;
    let producer = Arc::new(DirProducer::new(
        source.clone(),
        Arc::clone(&log),
        state,
        settings.listing.clone(),
        vec![settings.data_dir.clone()],
    )?);

    let counters = Counters::default();
    let (synced_tx, synced_rx) = watch::channel(false);
    let until = (!args.watch).then_some(synced_rx);
    let stages = pipeline::start(
        settings,
        Arc::clone(&log),
        index.clone() as Arc<dyn Index>,
        Some((Arc::new(source.clone()), labeler)),
        &counters,
        until,
        &shutdown,
    )?;

    // Work left by an interrupted run counts towards this one.
    let totals = Arc::new(progress::Totals::default());
    let backlog = pipeline::lag(&*log, &settings.index.group, topics::IMAGES_LABELED).await?;
    totals.total.store(
        backlog + pipeline::lag(&*log, &settings.labeler.group, topics::OBJECTS_CHANGED).await?,
        Ordering::Relaxed,
    );
    let stop_progress = tokio_util::sync::CancellationToken::new();
    let sink_metrics = Arc::clone(&counters.sink);
    let reporter = progress::spawn(Arc::clone(&totals), move || sink_metrics.records_in.get(), stop_progress.clone());

    let synced = producer.sync_all().await;
    let stats = match synced {
        Ok(stats) => stats,
        Err(e) => {
            shutdown.cancel();
            let _ = stages.join().await;
            stop_progress.cancel();
            return Err(e).context(format!("listing {}", root.display()));
        }
    };
    totals.total.fetch_add(stats.upserts + stats.deletes, Ordering::Relaxed);
    let _ = synced_tx.send(true);

    if args.watch {
        let watch_totals = Arc::clone(&totals);
        let watching = bucketlens_listing::watch::run(
            Arc::clone(&producer),
            settings.listing.debounce,
            shutdown.clone(),
            move |s: SyncStats| {
                watch_totals.total.fetch_add(s.upserts + s.deletes, Ordering::Relaxed);
            },
        );
        eprintln!("watching {} for changes (Ctrl-C to stop)", root.display());
        if let Err(e) = watching.await {
            shutdown.cancel();
            let _ = stages.join().await;
            stop_progress.cancel();
            return Err(e.into());
        }
    }
    let result = stages.join().await;
    stop_progress.cancel();
    let _ = reporter.await;
    result?;
    print_summary(&*index, producer.source(), stats, &counters, started).await?;
    if shutdown.is_cancelled() && !args.watch {
        eprintln!("interrupted: run the same command again to finish (nothing is lost or done twice)");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

async fn print_summary(
    index: &dyn Index,
    source: &LocalDir,
    stats: SyncStats,
    counters: &Counters,
    started: Instant,
) -> anyhow::Result<()> {
    let l = &counters.labeler;
    let (labeled, failed, removed) = (l.labeled.get(), l.failed.get(), l.removed.get());
    let indexed = counters.sink.applied.get();
    let secs = started.elapsed().as_secs_f64();
    let rate = (labeled + failed) as f64 / secs.max(1e-3);
    println!(
        "found {} images in {} (bucket {}): {} new or changed, {} deleted",
        stats.images,
        source.root().display(),
        source.bucket(),
        stats.upserts,
        stats.deletes
    );
    println!("labeled {labeled} · failed {failed} · removed {removed} · indexed {indexed} · {secs:.1} s · {rate:.1} images/s");
    let mut request = SearchRequest::new(Expr::All);
    request.state = DocState::Failed;
    request.bucket = Some(source.bucket().to_string());
    request.limit = 20;
    let failures = index.search(request).await?;
    if failures.total > 0 {
        println!("{} failed in the index (bucketlens search --failed lists them all):", failures.total);
        for hit in failures.hits {
            let reason = hit.error.map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
            println!("  {}/{}  {reason}", hit.bucket, hit.key);
        }
    }
    Ok(())
}

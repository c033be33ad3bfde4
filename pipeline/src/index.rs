//! `bucketlens index SOURCE [--watch]`: the whole pipeline in one process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bucketlens_index::{DocState, Expr, Index, SearchRequest};
use bucketlens_inventory::checkpoint::Checkpoint;
use bucketlens_inventory::{InventoryProducer, Location};
use bucketlens_listing::s3::{S3Lister, S3Url};
use bucketlens_listing::state::State;
use bucketlens_listing::DirProducer;
use bucketlens_runtime::bucket::{LocalDir, ObjectSource};
use bucketlens_runtime::log::{Log, Output};
use bucketlens_runtime::produce::{ProduceError, ProduceStats};
use bucketlens_runtime::say;
use bucketlens_runtime::text::escape_controls;
use bucketlens_schemas::topics;
use tokio::sync::watch;

use crate::progress;
use crate::settings::Settings;
use crate::wiring::{self, Counters};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A folder (`./photos`, `file:///home/me/Pictures`), `s3://bucket/prefix`, or an
    /// S3 Inventory report's `manifest.json` (`s3://…` or a local path).
    source: String,
    /// Keep running and follow changes (new, replaced and deleted images) until
    /// Ctrl-C: a folder is watched; an S3 source needs --sqs.
    #[arg(long)]
    watch: bool,
    /// With --watch on s3://: the SQS queue receiving the bucket's event notifications.
    #[arg(long, value_name = "QUEUE_URL", requires = "watch")]
    sqs: Option<String>,
    /// Label every image again, even one this labeler already labeled as it is now
    /// (unchanged objects are otherwise skipped: not read, not labeled).
    #[arg(long)]
    force: bool,
    /// A folder's bucket name (default: the folder's own name). Two folders of the
    /// same name need two bucket names; naming a bucket that another folder had
    /// moves it here.
    #[arg(long, value_name = "NAME")]
    bucket: Option<String>,
    /// Let a folder that is now empty remove every document that came from it
    /// (otherwise an empty folder, as an unmounted drive looks, keeps them).
    #[arg(long)]
    allow_empty: bool,
    /// Label at most N images in this run (`[labeler] budget`); the rest stay on the
    /// log, unlabeled, and a later run goes on with them, relabeling nothing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_images: Option<u64>,
}

/// What `index` backfills from.
enum Backfill {
    Dir(Arc<DirProducer>),
    S3(S3Lister),
    Inventory(InventoryProducer, Location),
}

impl Backfill {
    /// Produces what changed; with `every`, every image (the labeler then skips
    /// what it labeled as it is, unless forced).
    async fn sync(&self, every: bool) -> Result<ProduceStats, ProduceError> {
        match self {
            Self::Dir(producer) if every => producer.sync_every().await,
            Self::Dir(producer) => producer.sync_all().await,
            Self::S3(lister) if every => lister.sync_every().await,
            Self::S3(lister) => lister.sync().await,
            Self::Inventory(producer, location) => {
                let stats = producer.produce(location).await?.produced;
                if stats.unreadable > 0 {
                    say!(
                        "{} inventory rows could not be read (listed above with their file and line)",
                        stats.unreadable
                    );
                }
                Ok(stats)
            }
        }
    }

    fn describe(&self) -> (String, String) {
        match self {
            Self::Dir(p) => (p.source().root().display().to_string(), p.source().bucket().to_string()),
            Self::S3(l) => (l.url().to_string(), l.url().bucket.clone()),
            Self::Inventory(_, location) => (location.to_string(), String::new()),
        }
    }
}

/// What a labeler says once it spent its budget of `budget` images.
pub fn budget_spent(budget: u64) -> String {
    format!(
        "budget of {budget} images spent: the rest stay on the log, unlabeled; run again (with a larger \
         --max-images or [labeler] budget, or none) to go on, relabeling nothing"
    )
}

/// What a listing could not read, for its summary: nothing is deleted for it.
pub fn unread(stats: &ProduceStats) -> Vec<String> {
    let mut lines = Vec::new();
    if stats.unreadable > 0 {
        let things = if stats.unreadable == 1 { "file or folder" } else { "files or folders" };
        lines.push(format!(
            "{} {things} could not be read (named above): their documents are kept as they were",
            stats.unreadable
        ));
    }
    if stats.invalid_names > 0 {
        let n = stats.invalid_names;
        let (files, names) = if n == 1 { ("file", "its name is") } else { ("files", "their names are") };
        lines.push(format!("{n} {files} skipped: {names} not valid UTF-8, which an object key must be (named above)"));
    }
    if stats.links > 0 {
        let links = if stats.links == 1 { "symbolic link" } else { "symbolic links" };
        lines.push(format!(
            "{} {links} skipped: bucketlens reads only the files in the folder, not what a link points at (named above)",
            stats.links
        ));
    }
    lines
}

pub fn local_root(source: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(source.strip_prefix("file://").unwrap_or(source));
    if !path.is_dir() {
        bail!("{source} is not a folder: bucketlens index takes a folder to label (it must exist)");
    }
    Ok(path)
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut settings = settings.clone();
    settings.labeler.force = args.force;
    settings.labeler.budget = args.max_images.or(settings.labeler.budget);
    let settings = &settings;
    let s3_url = S3Url::parse(&args.source);
    let is_inventory = args.source.ends_with("manifest.json");
    if (s3_url.is_some() || is_inventory) && args.watch && args.sqs.is_none() {
        bail!(
            "--watch on {} needs --sqs QUEUE_URL: the queue that receives the bucket's event notifications",
            args.source
        );
    }
    let root = match s3_url {
        Some(_) => None,
        None if is_inventory => None,
        None => Some(local_root(&args.source)?),
    };
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = wiring::open_log(settings).await?;
    let index = wiring::open_index_writer(settings).await?;
    let labeler = wiring::load_labeler(settings).await?;
    let fingerprint = bucketlens_labeler::ledger::fingerprint(&settings.labeler, labeler.model());
    let state = State::open(Some(&settings.listing_path()))?;
    let (backfill, objects): (Backfill, Arc<dyn ObjectSource>) = match (&s3_url, &root) {
        _ if args.source.ends_with("manifest.json") => {
            let location = Location::parse(&args.source);
            let s3 = match location {
                Location::S3 { .. } => Some(bucketlens_runtime::aws::s3_client(&settings.s3).await),
                Location::Local(_) => None,
            };
            let checkpoint = Checkpoint::open(Some(&settings.data_dir.join("inventory.sqlite")))?;
            let output = Output::Log(Arc::clone(&log));
            let producer = InventoryProducer::new(
                output,
                checkpoint,
                s3,
                settings.inventory.clone(),
                settings.data_dir.join("tmp"),
            );
            (Backfill::Inventory(producer, location), wiring::object_sources(settings).await?)
        }
        (Some(url), _) => {
            let client = bucketlens_runtime::aws::s3_client(&settings.s3).await;
            let output = Output::Log(Arc::clone(&log));
            let lister = S3Lister::new(client, url.clone(), output, state.clone(), settings.listing.clone());
            (Backfill::S3(lister), wiring::object_sources(settings).await?)
        }
        (None, Some(root)) => {
            let source = folder(root, args.bucket.as_deref(), &state)?;
            let producer = Arc::new(
                DirProducer::new(
                    source.clone(),
                    Output::Log(Arc::clone(&log)),
                    state.clone(),
                    settings.listing.clone(),
                    vec![settings.data_dir.clone()],
                )?
                .allowing_empty(args.allow_empty),
            );
            (Backfill::Dir(producer), Arc::new(source))
        }
        (None, None) => bail!("no source"),
    };

    let counters = Counters::default();
    let (synced_tx, synced_rx) = watch::channel(false);
    let until = (!args.watch).then_some(synced_rx);
    let stages = wiring::start(
        settings,
        Arc::clone(&log),
        index.clone() as Arc<dyn Index>,
        Some((objects, labeler)),
        &counters,
        until,
        &shutdown,
    );

    // Work left by an interrupted run counts towards this one.
    let totals = Arc::new(progress::Totals::default());
    let backlog = wiring::lag(&*log, &settings.index.group, topics::IMAGES_LABELED).await?;
    totals.total.store(
        backlog + wiring::lag(&*log, &settings.labeler.group, topics::OBJECTS_CHANGED).await?,
        Ordering::Relaxed,
    );
    let stop_progress = tokio_util::sync::CancellationToken::new();
    let sink_metrics = Arc::clone(&counters.sink);
    let reporter = progress::spawn(Arc::clone(&totals), move || sink_metrics.records_in.get(), stop_progress.clone());

    // A labeler with other settings than the one that last labeled this listing,
    // or --force, must see every image: the listing produces them all. (A labeler
    // group of another name reads the log from its first record anyway.)
    let listing = match &backfill {
        Backfill::Inventory(..) => String::new(), // a report is read once: --force does not list it again
        _ => backfill.describe().0,
    };
    let listed_for = state.listed_for(&listing)?;
    let group = &settings.labeler.group;
    let every = args.force || listed_for.as_ref().is_some_and(|(g, f)| g == group && *f != fingerprint);
    if every && !args.force {
        say!("the labeler's model or settings changed since this was last indexed: every image is labeled again");
    }
    let synced = backfill.sync(every).await;
    let stats = match synced {
        Ok(stats) => stats,
        Err(e) => {
            shutdown.cancel();
            let _ = stages.join().await;
            stop_progress.cancel();
            return Err(e).context(format!("listing {}", backfill.describe().0));
        }
    };
    totals.total.fetch_add(stats.produced(), Ordering::Relaxed);
    let _ = synced_tx.send(true);

    if args.watch {
        let watching = follow(settings, &backfill, args.sqs.as_deref(), &log, Arc::clone(&totals), &shutdown);
        if let Err(e) = watching.await {
            shutdown.cancel();
            let _ = stages.join().await;
            stop_progress.cancel();
            return Err(e);
        }
    }
    let result = stages.join().await;
    stop_progress.cancel();
    let _ = reporter.await;
    result?;
    let budget = settings.labeler.budget.unwrap_or(0);
    let rules: Vec<&str> = settings.act.rules.iter().map(|r| r.name.as_str()).collect();
    print_summary(&*index, &backfill, stats, (&counters, budget, &rules), started).await?;
    let finished = !shutdown.is_cancelled() || args.watch;
    if finished && !listing.is_empty() {
        state.set_listed_for(&listing, group, &fingerprint)?;
    }
    if shutdown.is_cancelled() && !args.watch {
        say!("interrupted: run the same command again to finish (nothing is lost or done twice)");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// The folder as a bucket: named `bucket`, or after itself. A name that another
/// folder was indexed under is refused: each run would delete the other's documents.
fn folder(root: &std::path::Path, bucket: Option<&str>, state: &State) -> anyhow::Result<LocalDir> {
    let canonical = root.canonicalize().with_context(|| format!("opening {}", root.display()))?;
    let name = bucket.map_or_else(|| LocalDir::default_name(&canonical), str::to_string);
    if name.is_empty() || name.contains('/') {
        bail!("--bucket {name:?}: a bucket name must be non-empty and have no '/'");
    }
    if let Some(other) = state.root(&name)?.filter(|other| *other != canonical) {
        if bucket.is_none() {
            bail!(
                "{} would be the bucket {name:?}, which is already the folder {} in this data dir: indexing it \
                 would replace that folder's documents. Give this one a name of its own: \
                 `bucketlens index {} --bucket NAME`. If it is the same photos moved here, say so with \
                 `--bucket {name}`.",
                canonical.display(),
                other.display(),
                root.display()
            );
        }
        say!("the bucket {name:?} was the folder {}: it is {} from now on", other.display(), canonical.display());
    }
    LocalDir::named(&canonical, &name).with_context(|| format!("opening {}", root.display()))
}

/// `--watch`: a folder's filesystem changes, or an S3 bucket's notifications.
async fn follow(
    settings: &Settings,
    backfill: &Backfill,
    sqs: Option<&str>,
    log: &Arc<dyn Log>,
    totals: Arc<progress::Totals>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    match (backfill, sqs) {
        (Backfill::Dir(producer), _) => {
            say!("watching {} for changes (Ctrl-C to stop)", producer.source().root().display());
            let on_sync = move |s: ProduceStats| {
                totals.total.fetch_add(s.produced(), Ordering::Relaxed);
            };
            let debounce = settings.listing.debounce;
            Ok(bucketlens_listing::watch::run(Arc::clone(producer), debounce, shutdown.clone(), on_sync).await?)
        }
        (Backfill::S3(_) | Backfill::Inventory(..), Some(queue)) => {
            let queue = bucketlens_events::sqs::Queue::connect(&settings.events, queue).await;
            let metrics = bucketlens_events::Metrics::default();
            say!("following {queue} for changes (Ctrl-C to stop)");
            let output = Output::Log(Arc::clone(log));
            let stop = shutdown.clone();
            let receiving = bucketlens_events::sqs::run(&queue, &settings.events, &output, &metrics, stop);
            tokio::pin!(receiving);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            let mut counted = 0;
            loop {
                tokio::select! {
                    result = &mut receiving => return Ok(result?),
                    _ = tick.tick() => {
                        let produced = metrics.upserts.get() + metrics.deletes.get();
                        totals.total.fetch_add(produced - counted, Ordering::Relaxed);
                        counted = produced;
                    }
                }
            }
        }
        (Backfill::S3(_) | Backfill::Inventory(..), None) => bail!("--watch on S3 needs --sqs QUEUE_URL"),
    }
}

async fn print_summary(
    index: &dyn Index,
    backfill: &Backfill,
    stats: ProduceStats,
    (counters, settings_budget, rules): (&Counters, u64, &[&str]),
    started: Instant,
) -> anyhow::Result<()> {
    let l = &counters.labeler;
    let (labeled, failed, removed) = (l.labeled.get(), l.failed.get(), l.removed.get());
    let indexed = counters.sink.applied.get();
    let secs = started.elapsed().as_secs_f64();
    let rate = (labeled + failed) as f64 / secs.max(1e-3);
    let (location, bucket) = backfill.describe();
    let images = if stats.images == 1 { "image" } else { "images" };
    let found = format!(
        "found {} {images} in {location} (bucket {bucket}): {} new or changed, {} deleted",
        stats.images, stats.upserts, stats.deletes
    );
    println!("{}", escape_controls(&found));
    if !matches!(backfill, Backfill::Inventory(..)) {
        for line in unread(&stats) {
            println!("{line}");
        }
    }
    let unchanged = l.skipped.get(bucketlens_labeler::stage::UNCHANGED);
    // Only where there were any: most buckets have nothing archived.
    let archived = l.skipped.get(bucketlens_labeler::stage::ARCHIVED);
    let archived_part = if archived > 0 { format!(" · archived {archived}") } else { String::new() };
    println!(
        "labeled {labeled} · unchanged {unchanged}{archived_part} · failed {failed} · removed {removed} · \
         indexed {indexed} · {secs:.1} s · {rate:.1} images/s"
    );
    if l.budget_spent.get() > 0 {
        println!("{}", budget_spent(settings_budget));
    }
    if !rules.is_empty() {
        println!("{}", crate::act::summary(&counters.act, rules));
    }
    if archived > 0 {
        println!(
            "{archived} archived (Glacier, Deep Archive or an archive tier) and not read: restore them (S3 \
             RestoreObject) and index again to have them labeled"
        );
    }
    let mut request = SearchRequest::new(Expr::All);
    request.state = DocState::Failed;
    request.bucket = Some(bucket).filter(|b| !b.is_empty());
    request.limit = 20;
    let failures = index.search(request).await?;
    if failures.total > 0 {
        println!("{} failed in the index (bucketlens search --failed lists them all):", failures.total);
        for hit in failures.hits {
            let reason = hit.error.map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
            println!("  {}", escape_controls(&format!("{}/{}  {reason}", hit.bucket, hit.key)));
        }
    }
    Ok(())
}

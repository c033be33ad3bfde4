//! `bucketlens reindex [--to NAME]`: a blue/green rebuild of the OpenSearch index
//! from the label log, with no downtime.
//!
//! 1. Checks everything first: the configured `index` is an alias (or a plain index,
//!    with `--delete-old`), the target does not exist, the log is reachable.
//! 2. Creates the target with the current template.
//! 3. Replays `images.labeled.v1` into it with a group of its own
//!    (`<index group>.reindex.<target>`): the running sink keeps writing the alias,
//!    and searches keep reading it, untouched.
//! 4. Once the replay has reached the end offsets seen at start and then the live
//!    end (or 30 s have passed), moves the alias to the target in one atomic step:
//!    searches, `serve` and the live sink follow it at once.
//! 5. Goes on until the end offsets seen just after the switch (what the live sink
//!    wrote into the old index meanwhile), then exits. The old index is left as it
//!    was, for the user to delete.
//!
//! Interrupted before the switch, the alias stays where it was and the partial
//! target is named for deletion.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bucketlens_index::opensearch::Resolved;
use bucketlens_index::{Backend, OpenSearchIndex};
use bucketlens_runtime::log::{Log, Position, Until};
use bucketlens_schemas::topics;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{self, Running};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new index [default: the next `<index>-vN`].
    #[arg(long)]
    to: Option<String>,
    /// When `index` is a plain index rather than an alias (made by hand, or by
    /// bucketlens before it made aliases): delete it in the same atomic step that
    /// gives its name to the alias. Without this flag such an index is refused.
    #[arg(long)]
    delete_old: bool,
}

/// How long the replay may chase a live end that keeps moving before the switch.
const CATCH_UP: Duration = Duration::from_secs(30);

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if settings.index.backend != Backend::OpenSearch {
        bail!(
            "reindex builds a new OpenSearch index; the embedded index (tantivy) is rebuilt in place: documents are \
             replaced by key, so it is never empty meanwhile. Run `bucketlens replay --group {} --from earliest` \
             (delete {} first for a clean rebuild)",
            settings.index.group,
            settings.index_path().display()
        );
    }
    let config = &settings.index.opensearch;
    let alias = config.index.as_str();
    let url = config.url.trim_end_matches('/');
    let cluster = OpenSearchIndex::open_for_search(config).await?;
    let old = match cluster.resolve(alias).await? {
        Resolved::Missing => {
            bail!("there is no index or alias {alias} at {url}: nothing to reindex (a sink or `index` creates it)")
        }
        Resolved::Index if !args.delete_old => bail!(
            "{alias} at {url} is an index, not an alias, and an alias cannot take its name while it exists. Rerun \
             with --delete-old to delete it in the same atomic step as the switch (its documents are in the new \
             index by then), or set index.opensearch.index to the new index's name afterwards"
        ),
        Resolved::Index => None,
        Resolved::Alias(indices) if indices.len() == 1 => indices.into_iter().next(),
        Resolved::Alias(indices) => {
            bail!("the alias {alias} points to {} indices ({}): one is expected", indices.len(), indices.join(", "))
        }
    };
    let target = match args.to {
        Some(to) => to,
        None => next_name(&cluster, alias, old.as_deref()).await?,
    };
    if target == alias || Some(&target) == old.as_ref() {
        bail!("--to {target}: that is the index being replaced");
    }
    if cluster.resolve(&target).await? != Resolved::Missing {
        bail!("{target} exists at {url} already: delete it (curl -X DELETE {url}/{target}) or give another --to");
    }
    let log = pipeline::open_log(settings).await?;
    let topic = topics::IMAGES_LABELED;
    let group = format!("{}.reindex.{target}", settings.index.group);
    // A group left by an interrupted reindex into a target since deleted starts over.
    if log.committed(&group, topic).await?.iter().any(|c| c.committed.is_some()) {
        log.reset_group(&group, topic, Position::Earliest).await?;
    }

    let mut replay = settings.clone();
    replay.index.group = group.clone();
    replay.index.opensearch.index = target.clone();
    let index = Arc::new(OpenSearchIndex::create(&replay.index.opensearch).await?);
    let old_name = old.clone().unwrap_or_else(|| alias.to_string());
    bucketlens_runtime::say!(
        "reindexing {topic} into {url}/{target} (group {group}); {alias} keeps serving {old_name} meanwhile"
    );

    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let stop = CancellationToken::new();
    let metrics = Arc::new(bucketlens_index::Metrics::default());
    let mut sink = pipeline::spawn_sink(&replay, Arc::clone(&log), index, Arc::clone(&metrics), Until::Shutdown, &stop);

    // The records there at start, then the live end.
    let at_start = Until::EndOffsets(log.watermarks(topic).await?);
    let reached = wait(&group, &mut sink, &shutdown, || at_start.reached(&*log, &group, topic), None).await?;
    let caught_up = reached && wait(&group, &mut sink, &shutdown, || live_end(&*log, &group), Some(CATCH_UP)).await?;
    if !caught_up || shutdown.is_cancelled() {
        stop.cancel();
        let _ = sink.await;
        bucketlens_runtime::say!(
            "interrupted: {alias} still points to {old_name}; the partial index {target} can be deleted (curl -X \
             DELETE {url}/{target})"
        );
        return Ok(ExitCode::from(130));
    }
    cluster.switch_alias(alias, old.as_deref(), &target).await.with_context(|| {
        format!("moving the alias {alias} to {target}: it still points to {old_name}; rerun, or delete {target}")
    })?;
    bucketlens_runtime::say!("the alias {alias} points to {target} now (was {old_name})");

    // What the live sink wrote into the old index before the switch.
    let after = Until::EndOffsets(log.watermarks(topic).await?);
    let drained = wait(&group, &mut sink, &shutdown, || after.reached(&*log, &group, topic), None).await?;
    stop.cancel();
    sink.await.context("the reindex sink")??;
    println!(
        "reindexed {} records into {target} ({} applied, {} stale) in {:.1} s; {alias} points to it",
        metrics.records_in.get(),
        metrics.applied.get(),
        metrics.stale.get(),
        started.elapsed().as_secs_f64()
    );
    if !drained {
        bucketlens_runtime::say!(
            "interrupted after the switch: rerun `bucketlens replay --group {group} --until-end` to finish"
        );
        return Ok(ExitCode::from(130));
    }
    match old {
        Some(old) => println!(
            "the old index {old} is untouched: delete it once you no longer need it (curl -X DELETE {url}/{old}); \
             the group {group} can go too"
        ),
        None => println!("the old index {alias} was deleted in the switch, as --delete-old asked"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls `done` until it holds (`true`), shutdown (`false`), or `limit` passes
/// (`true`: good enough). A sink that stops on its own is an error.
async fn wait<F, Fut>(
    group: &str,
    sink: &mut Running,
    shutdown: &CancellationToken,
    mut done: F,
    limit: Option<Duration>,
) -> anyhow::Result<bool>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, bucketlens_runtime::log::LogError>>,
{
    let since = Instant::now();
    loop {
        if done().await? || limit.is_some_and(|l| since.elapsed() >= l) {
            return Ok(true);
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            ended = &mut *sink => {
                ended.context("the reindex sink")??;
                bail!("the reindex sink (group {group}) stopped before the end");
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Whether `group` has reached the end of the label log as it is now.
async fn live_end(log: &dyn Log, group: &str) -> Result<bool, bucketlens_runtime::log::LogError> {
    Until::EndOffsets(log.watermarks(topics::IMAGES_LABELED).await?).reached(log, group, topics::IMAGES_LABELED).await
}

/// `<alias>-v<N+1>` after the current `<alias>-vN` (v2 after anything else), the
/// first such name that is free.
async fn next_name(cluster: &OpenSearchIndex, alias: &str, current: Option<&str>) -> anyhow::Result<String> {
    let prefix = format!("{alias}-v");
    let mut n = current.and_then(|c| c.strip_prefix(&prefix)).and_then(|n| n.parse::<u64>().ok()).unwrap_or(1) + 1;
    loop {
        let name = format!("{prefix}{n}");
        if cluster.resolve(&name).await? == Resolved::Missing {
            return Ok(name);
        }
        n += 1;
    }
}

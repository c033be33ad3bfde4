//! A blue/green rebuild of the OpenSearch index from the label log, with no downtime
//! (`bucketlens reindex [--to NAME]`).
//!
//! 1. [`Reindex::plan`] checks everything first: the configured `index` is an alias
//!    (or a plain index, with `delete_old`), the target does not exist.
//! 2. [`Reindex::run`] creates the target with the current template, then replays
//!    `images.labeled.v1` into it with a group of its own
//!    (`<index group>.reindex.<target>`): the running sink keeps writing the alias,
//!    and searches keep reading it, untouched.
//! 3. Once the replay has reached the end offsets seen at start and then the live
//!    end (or 30 s have passed), it moves the alias to the target in one atomic step:
//!    searches, `serve` and the live sink follow it at once.
//! 4. It goes on until the end offsets seen just after the switch (what the live sink
//!    wrote into the old index meanwhile), then returns. The old index is left as it
//!    was, for the user to delete.
//!
//! Interrupted before the switch, the alias stays where it was and the partial
//! target is named for deletion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bucketlens_runtime::log::{Log, LogError, Position, Until};
use bucketlens_runtime::say;
use bucketlens_schemas::topics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::index::IndexError;
use crate::metrics::Metrics;
use crate::opensearch::{OpenSearchIndex, Resolved};
use crate::stage::{Stage, StageError};

/// How long the replay may chase a live end that keeps moving before the switch.
const CATCH_UP: Duration = Duration::from_secs(30);

/// Why a reindex did not happen, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    /// What the cluster holds does not allow it; the message says what to do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the reindex sink (group {group}): {reason}")]
    Sink { group: String, reason: String },
}

/// How a reindex that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The alias points to the new index, which has everything.
    Done,
    /// Interrupted (Ctrl-C): before the switch (nothing moved) or after it (the
    /// group can be replayed to finish); what to do was said.
    Interrupted,
}

/// A reindex, checked and ready to run.
pub struct Reindex {
    config: Config,
    cluster: OpenSearchIndex,
    alias: String,
    /// The index the alias points to now; `None`: `alias` is a plain index, deleted
    /// in the switch.
    old: Option<String>,
    target: String,
}

impl Reindex {
    /// Checks that `config.opensearch.index` can be moved to `to` (default: the next
    /// `<index>-vN`): an alias of one index, or a plain index with `delete_old`, and a
    /// target that does not exist yet.
    pub async fn plan(config: &Config, to: Option<String>, delete_old: bool) -> Result<Self, ReindexError> {
        let refused = |text: String| Err(ReindexError::Refused(text));
        let alias = config.opensearch.index.clone();
        let url = config.opensearch.url.trim_end_matches('/');
        let cluster = OpenSearchIndex::open_for_search(&config.opensearch).await?;
        let old = match cluster.resolve(&alias).await? {
            Resolved::Missing => {
                return refused(format!(
                    "there is no index or alias {alias} at {url}: nothing to reindex (a sink or `index` creates it)"
                ))
            }
            Resolved::Index if !delete_old => {
                return refused(format!(
                    "{alias} at {url} is an index, not an alias, and an alias cannot take its name while it exists. \
                     Rerun with --delete-old to delete it in the same atomic step as the switch (its documents are \
                     in the new index by then), or set index.opensearch.index to the new index's name afterwards"
                ))
            }
            Resolved::Index => None,
            Resolved::Alias(indices) if indices.len() == 1 => indices.into_iter().next(),
            Resolved::Alias(indices) => {
                return refused(format!(
                    "the alias {alias} points to {} indices ({}): one is expected",
                    indices.len(),
                    indices.join(", ")
                ))
            }
        };
        let target = match to {
            Some(to) => to,
            None => next_name(&cluster, &alias, old.as_deref()).await?,
        };
        if target == alias || Some(&target) == old.as_ref() {
            return refused(format!("--to {target}: that is the index being replaced"));
        }
        if cluster.resolve(&target).await? != Resolved::Missing {
            return refused(format!(
                "{target} exists at {url} already: delete it (curl -X DELETE {url}/{target}) or give another --to"
            ));
        }
        Ok(Self { config: config.clone(), cluster, alias, old, target })
    }

    /// Replays the label log from `log` into the target, moves the alias, and
    /// finishes what the live sink wrote meanwhile; `shutdown` interrupts it.
    pub async fn run(self, log: Arc<dyn Log>, shutdown: &CancellationToken) -> Result<Ended, ReindexError> {
        let started = Instant::now();
        let Self { config, cluster, alias, old, target } = self;
        let url = config.opensearch.url.trim_end_matches('/').to_string();
        let topic = topics::IMAGES_LABELED;
        let group = format!("{}.reindex.{target}", config.group);
        // A group left by an interrupted reindex into a target since deleted starts over.
        if log.committed(&group, topic).await?.iter().any(|c| c.committed.is_some()) {
            log.reset_group(&group, topic, Position::Earliest).await?;
        }
        let mut replay = config.clone();
        replay.group = group.clone();
        replay.opensearch.index = target.clone();
        let index = Arc::new(OpenSearchIndex::create(&replay.opensearch).await?);
        let old_name = old.clone().unwrap_or_else(|| alias.clone());
        say!("reindexing {topic} into {url}/{target} (group {group}); {alias} keeps serving {old_name} meanwhile");

        let stop = CancellationToken::new();
        let metrics = Arc::new(Metrics::default());
        let stage = Stage { config: replay, log: Arc::clone(&log), index, metrics: Arc::clone(&metrics) };
        let mut sink =
            Sink { group: group.clone(), task: tokio::spawn(crate::stage::run(stage, Until::Shutdown, stop.clone())) };

        // The records there at start, then the live end.
        let at_start = Until::EndOffsets(log.watermarks(topic).await?);
        let reached = sink.wait(shutdown, || at_start.reached(&*log, &group, topic), None).await?;
        let caught_up = reached && sink.wait(shutdown, || live_end(&*log, &group), Some(CATCH_UP)).await?;
        if !caught_up || shutdown.is_cancelled() {
            stop.cancel();
            let _ = sink.task.await;
            say!(
                "interrupted: {alias} still points to {old_name}; the partial index {target} can be deleted (curl -X \
                 DELETE {url}/{target})"
            );
            return Ok(Ended::Interrupted);
        }
        cluster.switch_alias(&alias, old.as_deref(), &target).await.map_err(|e| {
            ReindexError::Refused(format!(
                "moving the alias {alias} to {target}: {e}; it still points to {old_name}; rerun, or delete {target}"
            ))
        })?;
        say!("the alias {alias} points to {target} now (was {old_name})");

        // What the live sink wrote into the old index before the switch.
        let after = Until::EndOffsets(log.watermarks(topic).await?);
        let drained = sink.wait(shutdown, || after.reached(&*log, &group, topic), None).await?;
        stop.cancel();
        sink.finish().await?;
        println!(
            "reindexed {} records into {target} ({} applied, {} stale) in {:.1} s; {alias} points to it",
            metrics.records_in.get(),
            metrics.applied.get(),
            metrics.stale.get(),
            started.elapsed().as_secs_f64()
        );
        if !drained {
            say!("interrupted after the switch: rerun `bucketlens replay --group {group} --until-end` to finish");
            return Ok(Ended::Interrupted);
        }
        match old {
            Some(old) => println!(
                "the old index {old} is untouched: delete it once you no longer need it (curl -X DELETE \
                 {url}/{old}); the group {group} can go too"
            ),
            None => println!("the old index {alias} was deleted in the switch, as --delete-old asked"),
        }
        Ok(Ended::Done)
    }
}

/// The reindex's own sink, running.
struct Sink {
    group: String,
    task: JoinHandle<Result<(), StageError>>,
}

impl Sink {
    /// Polls `done` until it holds (`true`), shutdown (`false`), or `limit` passes
    /// (`true`: good enough). A sink that stops on its own is an error.
    async fn wait<F, Fut>(
        &mut self,
        shutdown: &CancellationToken,
        mut done: F,
        limit: Option<Duration>,
    ) -> Result<bool, ReindexError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, LogError>>,
    {
        let since = Instant::now();
        loop {
            if done().await? || limit.is_some_and(|l| since.elapsed() >= l) {
                return Ok(true);
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(false),
                ended = &mut self.task => {
                    let reason = failure(ended).unwrap_or_else(|| "stopped before the end".to_string());
                    return Err(ReindexError::Sink { group: self.group.clone(), reason });
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Waits for the sink to end (once stopped), with its error if it failed.
    async fn finish(self) -> Result<(), ReindexError> {
        match failure(self.task.await) {
            None => Ok(()),
            Some(reason) => Err(ReindexError::Sink { group: self.group, reason }),
        }
    }
}

/// Why the sink's task ended, if it failed: the stage's error with what it wraps, or
/// the task's panic; `None` for a clean end.
fn failure(ended: Result<Result<(), StageError>, tokio::task::JoinError>) -> Option<String> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(StageError::Log(e))) => Some(format!("index sink stopped: {e}")),
        Ok(Err(StageError::Index(e))) => Some(format!("index sink stopped: {e}")),
        Err(e) => Some(e.to_string()),
    }
}

/// Whether `group` has reached the end of the label log as it is now.
async fn live_end(log: &dyn Log, group: &str) -> Result<bool, LogError> {
    Until::EndOffsets(log.watermarks(topics::IMAGES_LABELED).await?).reached(log, group, topics::IMAGES_LABELED).await
}

/// `<alias>-v<N+1>` after the current `<alias>-vN` (v2 after anything else), the
/// first such name that is free.
async fn next_name(cluster: &OpenSearchIndex, alias: &str, current: Option<&str>) -> Result<String, IndexError> {
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

//! The labeler's consumer loop.
//!
//! - At most `max-in-flight` records are in flight; records of one key are never
//!   processed at the same time (later ones wait for the earlier one, in order).
//! - A record is finished only once its outcome is produced (acknowledged) to
//!   `images.labeled.v1`; offsets are committed as the contiguous finished prefix.
//! - Retryable failures are retried with exponential backoff, then become FAILED;
//!   permanent ones become a FAILED record plus a DLQ record with the reason. A
//!   record that cannot even be decoded goes to the DLQ as it was. Nothing stalls the
//!   partition and nothing is dropped silently.
//! - On a rebalance that takes partitions away: drop their records not started yet,
//!   finish what is in flight on them, commit, then let the rebalance go on.
//! - On shutdown: stop reading, finish what is in flight, commit, return.
//! - An upsert of a version this labeler labeled already (the [`Ledger`] says so) is
//!   skipped before anything is read: no HEAD, no GET, no model call, no output (the
//!   index has its labels). Deletes, failures and other versions are never skipped.
//!   The stage starts once the ledger has read what `images.labeled.v1` held.
//! - Every outcome says what the store held when the labeler looked: an upsert reads
//!   the object's current state and the outcome describes the version read; a delete
//!   is checked with a HEAD (an object there again is labeled instead). Each outcome
//!   is stamped later than any labeling of the object the ledger knows. The index
//!   keeps the newest labeling (the rule is in `sinks/index/src/version.rs`).
//! - Each labeling's start and end are noted in the ledger: an object that was in
//!   flight when the process died is labeled alone next time, in a child process
//!   ([`isolate`]) where the stage has one, and FAILED (`LabelerCrashed`) once
//!   `max-crashes` labelers died on it. Only the first death, of the whole process,
//!   is one an outside kill could cause; the children's deaths are the object's own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bucketlens_runtime::bucket::{ObjectMeta, ObjectRef, ObjectSource};
use bucketlens_runtime::log::{commit_or_defer, Log, LogError, LogRecord, OffsetTracker, OutRecord, Revocation, Until};
use bucketlens_runtime::now_ms;
use bucketlens_schemas::{
    error_codes, topics, AvroRecord, ChangeKind, ImageLabeled, LabelError, LabelKind, ObjectChanged,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::config::{Archived, Settings};
use crate::labeler::Labeler;

pub mod isolate;
mod label;
pub mod ledger;
pub mod metrics;

pub use isolate::Isolation;
pub use ledger::Ledger;
pub use metrics::Metrics;

use label::label_counted;

/// Why an upsert was skipped: its version is labeled already by this labeler.
pub const UNCHANGED: &str = "unchanged";
/// Why an upsert was skipped: the object is archived and not restored (`[labeler]
/// archived = "skip"`).
pub const ARCHIVED: &str = "archived";

/// How long a poll waits for records…
const POLL_WAIT: Duration = Duration::from_millis(200);
/// …and once a one-shot run's upstream has finished: the stage returns within this of
/// its last record (the one-shot `index` of one image took 0.75 s, 0.4 s of it polls
/// waiting out 200 ms in this stage and then in the sink).
const CAUGHT_UP_WAIT: Duration = Duration::from_millis(10);

/// A failure that stops the stage (the log is unusable); records are not lost: they
/// are redone from the last commit on restart.
#[derive(Debug, thiserror::Error)]
#[error("labeler stopped")]
pub struct StageError(#[from] LogError);

/// What the stage needs to run.
pub struct Stage {
    pub settings: Settings,
    pub log: Arc<dyn Log>,
    pub source: Arc<dyn ObjectSource>,
    pub labeler: Arc<dyn Labeler>,
    pub metrics: Arc<Metrics>,
    /// What is labeled already (in the data dir; in memory for tests).
    pub ledger: Ledger,
    /// How to label an object alone in a child process, once a labeler died with it
    /// in flight; `None` labels it alone in this process (Rekognition, tests).
    pub isolation: Option<Isolation>,
}

/// A stage ready to run: its parts, the labeler's fingerprint, and the skips not yet
/// counted in the ledger.
struct Running {
    stage: Stage,
    fingerprint: String,
    uncounted_skips: std::sync::atomic::AtomicU64,
    /// Held shared while an object is labeled, and exclusively by an object that was in
    /// flight when a labeler process died (so that it alone is counted if it kills this
    /// one too).
    turns: tokio::sync::RwLock<()>,
    /// Images this process may still label (`None`: no budget).
    budget_left: Option<std::sync::atomic::AtomicU64>,
    /// Set once a record found the budget spent.
    budget_hit: std::sync::atomic::AtomicBool,
}

impl std::ops::Deref for Running {
    type Target = Stage;

    fn deref(&self) -> &Stage {
        &self.stage
    }
}

impl Running {
    /// Takes one image from the budget: false once it is spent.
    fn spend_budget(&self) -> bool {
        let Some(left) = &self.budget_left else { return true };
        let spent = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err();
        // Once, though several tasks may find it spent at the same time.
        if spent && !self.budget_hit.swap(true, Ordering::SeqCst) {
            self.stage.metrics.budget_spent.add(1);
        }
        !spent
    }

    fn budget_spent(&self) -> bool {
        self.budget_hit.load(Ordering::SeqCst)
    }

    /// Adds the skips made since the last call to the ledger's total (for `status`).
    async fn count_skips(&self) {
        let n = self.uncounted_skips.swap(0, std::sync::atomic::Ordering::Relaxed);
        if n > 0 {
            if let Err(e) = self.ledger.run(move |l| l.count_skips(n)).await {
                warn!(error = %e, "skips not counted in the labeler ledger");
            }
        }
    }
}

struct Done {
    partition: i32,
    offset: i64,
    key: String,
    /// `Ok(false)`: abandoned at shutdown, left unfinished (redone on restart).
    result: Result<bool, LogError>,
}

/// Runs the labeler stage until `until` or `shutdown`.
pub async fn run(stage: Stage, until: Until, shutdown: CancellationToken) -> Result<(), StageError> {
    let fingerprint = ledger::fingerprint(&stage.settings, stage.labeler.model());
    // One follower group per process start: each reads the topic on its own (members
    // sharing a data dir write the same rows, harmlessly), so no follower waits on
    // another's rebalance, nor on a dead process's member under a reused pid (a
    // container's pid 1). It starts where the ledger says, so a new name costs nothing.
    let ledger_id = stage.ledger.id().map_err(store_failure)?;
    let ledger_group =
        format!("{}.ledger.{ledger_id}.{}-{:08x}", stage.settings.group, std::process::id(), fastrand::u32(..));
    let (caught_up_tx, mut caught_up) = tokio::sync::watch::channel(false);
    let stop_following = shutdown.child_token();
    let follower = tokio::spawn(ledger::follow(
        Arc::clone(&stage.log),
        stage.ledger.clone(),
        ledger_group,
        caught_up_tx,
        stop_following.clone(),
    ));
    let budget_left = stage.settings.budget.map(std::sync::atomic::AtomicU64::new);
    let stage = Arc::new(Running {
        stage,
        fingerprint,
        uncounted_skips: 0.into(),
        turns: tokio::sync::RwLock::new(()),
        budget_left,
        budget_hit: false.into(),
    });
    // Decide nothing before the ledger knows what the topic held.
    tokio::select! {
        _ = caught_up.wait_for(|caught_up| *caught_up) => {}
        () = shutdown.cancelled() => {}
    }
    let result = consume(&stage, until, &shutdown).await;
    stage.count_skips().await;
    // `status` says whether the last run stopped at its budget.
    let (spent, budget) = (stage.budget_spent(), stage.settings.budget.unwrap_or(0));
    if let Err(e) = stage.ledger.run(move |l| l.set_budget_spent(spent.then_some(budget))).await {
        warn!(error = %e, "the spent budget is not noted in the labeler ledger");
    }
    stop_following.cancel();
    let _ = follower.await;
    result
}

fn store_failure(e: bucketlens_runtime::sqlite::StoreError) -> StageError {
    StageError(LogError::Storage { reason: e.to_string() })
}

async fn consume(stage: &Arc<Running>, until: Until, shutdown: &CancellationToken) -> Result<(), StageError> {
    let topic = topics::OBJECTS_CHANGED;
    let mut consumer = stage.log.subscribe(&stage.settings.group, topic).await?;
    let mut tracker = OffsetTracker::new();
    let mut tasks: JoinSet<Done> = JoinSet::new();
    // Keys with a record in flight, and the records of that key waiting behind it.
    let mut busy: HashMap<String, VecDeque<LogRecord>> = HashMap::new();
    let mut last_commit = Instant::now();
    let max_in_flight = stage.settings.max_in_flight.get();
    let mut stopping = false;
    let mut failure: Option<LogError> = None;
    // Records being processed, per partition; and partitions being given back.
    let mut running: HashMap<i32, usize> = HashMap::new();
    let mut draining: Option<Revocation> = None;

    loop {
        if let Some(revocation) = &draining {
            if revocation.partitions().iter().all(|p| running.get(p).copied().unwrap_or(0) == 0) {
                commit_or_defer(&mut *consumer, &tracker.committable()).await?;
                tracker.forget(revocation.partitions());
                draining = None; // the rebalance goes on
            }
        }
        // The budget is spent: nothing more is started; what waits stays on the log.
        if !stopping && stage.budget_spent() {
            stopping = true;
            busy.values_mut().for_each(VecDeque::clear);
        }
        // Records queued behind a busy key, or abandoned, stay pending: never committed.
        if stopping && tasks.is_empty() {
            break;
        }
        let room = max_in_flight.saturating_sub(tracker.in_flight());
        tokio::select! {
            biased;
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                let done = match joined {
                    Ok(done) => {
                        if let Some(n) = running.get_mut(&done.partition) {
                            *n = n.saturating_sub(1);
                        }
                        done
                    }
                    Err(e) => {
                        // A task panicked: its record stays unfinished (redone on restart).
                        failure = Some(LogError::Storage { reason: format!("labeling task failed: {e}") });
                        stopping = true;
                        continue;
                    }
                };
                match done.result {
                    Ok(true) => tracker.finish(done.partition, done.offset),
                    Ok(false) => {
                        busy.remove(&done.key);
                        continue;
                    }
                    Err(e) => {
                        failure = Some(e);
                        stopping = true;
                        continue;
                    }
                }
                let next = busy.get_mut(&done.key).and_then(VecDeque::pop_front);
                match next {
                    Some(record) if !stopping => {
                        *running.entry(record.partition).or_default() += 1;
                        spawn(&mut tasks, stage, record, shutdown);
                    }
                    _ => { busy.remove(&done.key); }
                }
            }
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                // Records waiting behind a busy key are not started; they stay uncommitted.
                busy.values_mut().for_each(VecDeque::clear);
            }
            // The upstream finishing wakes a poll waiting for records that will not come.
            () = until.upstream_finished(), if !until.upstream_done() && !stopping => {}
            polled = consumer.poll(room, until.poll_wait(CAUGHT_UP_WAIT, POLL_WAIT)), if room > 0 && !stopping && draining.is_none() => {
                let records = polled?;
                if records.is_empty() && tracker.in_flight() == 0 {
                    commit_or_defer(&mut *consumer, &tracker.committable()).await?;
                    if until.reached(&*stage.log, &stage.settings.group, topic).await? {
                        break;
                    }
                }
                for record in records {
                    stage.metrics.records_in.add(1);
                    tracker.start(record.partition, record.offset);
                    if let Some(waiting) = busy.get_mut(&record.key) {
                        waiting.push_back(record);
                        continue;
                    }
                    busy.insert(record.key.clone(), VecDeque::new());
                    *running.entry(record.partition).or_default() += 1;
                    spawn(&mut tasks, stage, record, shutdown);
                }
                if let Some(revocation) = consumer.take_revocation() {
                    // Not started yet: the partition's next owner reads them again.
                    let gone = revocation.partitions();
                    busy.values_mut().for_each(|queue| queue.retain(|r| !gone.contains(&r.partition)));
                    draining = Some(revocation);
                }
            }
        }
        if last_commit.elapsed() >= stage.settings.commit_interval {
            commit_or_defer(&mut *consumer, &tracker.committable()).await?;
            stage.count_skips().await;
            last_commit = Instant::now();
        }
    }
    tasks.shutdown().await;
    commit_or_defer(&mut *consumer, &tracker.committable()).await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn spawn(tasks: &mut JoinSet<Done>, stage: &Arc<Running>, record: LogRecord, shutdown: &CancellationToken) {
    let stage = Arc::clone(stage);
    let shutdown = shutdown.clone();
    let span = info_span!("label", topic = %record.topic, partition = record.partition, offset = record.offset, key = %record.key);
    tasks.spawn(
        async move {
            let (partition, offset, key) = (record.partition, record.offset, record.key.clone());
            let started = Instant::now();
            let result = process(&stage, record, &shutdown).await;
            if matches!(result, Ok(true)) {
                stage.metrics.latency.observe(started.elapsed());
            }
            Done { partition, offset, key, result }
        }
        .instrument(span),
    );
}

/// Labels one record and produces its outcome: `Ok(true)` once it is durable,
/// `Ok(false)` if shutdown interrupted a retry. `Err` only when the log fails.
async fn process(running: &Running, record: LogRecord, shutdown: &CancellationToken) -> Result<bool, LogError> {
    let stage = &running.stage;
    let change = match ObjectChanged::from_bytes(&record.value) {
        Ok(change) => change,
        Err(e) => {
            warn!(error = %e, "undecodable record sent to the DLQ");
            stage.metrics.undecodable.add(1);
            stage.metrics.errors.add(error_codes::UNDECODABLE_RECORD);
            let dlq = record.dead_letter(error_codes::UNDECODABLE_RECORD, &e.to_string());
            return stage.log.produce(topics::OBJECTS_CHANGED_DLQ, vec![dlq]).await.map(|()| true);
        }
    };
    let change = match change.kind {
        ChangeKind::Delete => observe_delete(stage, change).await,
        ChangeKind::Upsert => change,
    };
    if change.kind == ChangeKind::Upsert && !stage.settings.force {
        let (ledger, fingerprint, asked) = (stage.ledger.clone(), running.fingerprint.clone(), change.clone());
        match ledger.run(move |l| l.unchanged(&asked, &fingerprint)).await {
            Ok(true) => {
                debug!(object = %format!("{}/{}", change.bucket, change.key), "unchanged since labeled; skipped");
                stage.metrics.skipped.add(UNCHANGED);
                running.uncounted_skips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(true);
            }
            Ok(false) => {}
            // Not knowing costs a label, never a wrong skip.
            Err(e) => warn!(error = %e, "the labeler ledger cannot be read; labeling"),
        }
    }
    let skip_archived = stage.settings.archived == Archived::Skip;
    if change.kind == ChangeKind::Upsert && skip_archived && change.archived() {
        let object = ObjectRef { bucket: &change.bucket, key: &change.key, version_id: change.version_id.as_deref() };
        match stage.source.readable_now(object).await {
            Ok(false) => {
                let class = change.access_tier.as_deref().or(change.storage_class.as_deref()).unwrap_or_default();
                return Ok(skipped_archived(running, &change, class).await);
            }
            Ok(true) => debug!(object = %object, "listed as archived, and restored since: labeling it"),
            // The GET will tell: archived ones are skipped then.
            Err(e) => debug!(object = %object, error = %e, "cannot tell whether the archived object is restored"),
        }
    }
    // Past the budget: left unfinished, uncommitted, for a run with a larger one.
    if change.kind == ChangeKind::Upsert && !running.spend_budget() {
        return Ok(false);
    }
    let model = stage.labeler.model().clone();
    let mut outcome = ImageLabeled::for_change(&change, LabelKind::Removed, model, now_ms());
    outcome.labeler = Some(running.fingerprint.clone());
    if change.kind == ChangeKind::Upsert {
        match label_counted(running, &change, shutdown).await {
            Some(Ok(Some((set, read)))) => {
                describe_read(&mut outcome, read);
                outcome.kind = LabelKind::Labeled;
                outcome.labels = set.labels;
                outcome.image = set.image;
                outcome.metadata = set.metadata.map(|m| *m);
                outcome.hashes = set.hashes;
                outcome.embedding = set.embedding;
                outcome.text = set.text.map(|t| *t);
                for note in &set.notes {
                    debug!(object = %format!("{}/{}", change.bucket, change.key), note = %note, "metadata dropped");
                }
                if let Some(model) = set.model {
                    outcome.model = model;
                }
            }
            // Gone since the change was recorded: a removal, found by this read.
            Some(Ok(None)) => outcome.sequencer = None,
            Some(Err(failure)) if skip_archived && failure.code == error_codes::OBJECT_ARCHIVED => {
                return Ok(skipped_archived(running, &change, &failure.message).await);
            }
            Some(Err(failure)) => {
                warn!(object = %format!("{}/{}", change.bucket, change.key), code = failure.code, reason = %failure.message, "image failed");
                stage.metrics.errors.add(failure.code);
                outcome.kind = LabelKind::Failed;
                outcome.error = Some(LabelError {
                    code: failure.code.to_string(),
                    message: failure.message.clone(),
                    retryable: failure.retryable,
                });
                let dlq = record.dead_letter(failure.code, &failure.message);
                stage.log.produce(topics::OBJECTS_CHANGED_DLQ, vec![dlq]).await?;
            }
            // Shutting down mid-retry: leave the record unfinished, it is redone.
            None => return Ok(false),
        }
    }
    outcome.labeled_at = stamp(stage, &outcome).await;
    let value = outcome.to_bytes().map_err(|e| LogError::Storage { reason: e.to_string() })?;
    stage.log.produce(topics::IMAGES_LABELED, vec![OutRecord::new(record.key, value)]).await?;
    // The follower reads it back too; this makes it known before the next record.
    let kind = outcome.kind;
    if let Err(e) = stage.ledger.run(move |l| l.record(&[outcome])).await {
        warn!(error = %e, "the labeler ledger cannot be written; this object may be labeled again");
    }
    let counter = match kind {
        LabelKind::Labeled => &stage.metrics.labeled,
        LabelKind::Failed => &stage.metrics.failed,
        LabelKind::Removed => &stage.metrics.removed,
    };
    counter.add(1);
    Ok(true)
}

/// Skips an archived object, not restored: counted, and nothing written (no label
/// record: a later restore, or a listing after one, labels it like a new object).
async fn skipped_archived(running: &Running, change: &ObjectChanged, why: &str) -> bool {
    debug!(object = %format!("{}/{}", change.bucket, change.key), why, "archived, not restored; skipped");
    running.stage.metrics.skipped.add(ARCHIVED);
    if let Err(e) = running.stage.ledger.run(|l| l.count("archived", 1)).await {
        warn!(error = %e, "an archived object is not counted in the labeler ledger");
    }
    true
}

/// A delete as the store has it now: the object gone (the removal stands), or
/// there again (a delete overtaken by a new upload, or one version of several
/// deleted): then a change of what is there, labeled or skipped like any upsert.
/// A delete that names the very etag the object has is a listing's word that the
/// object is there and not to be indexed (excluded, hidden): the removal stands.
/// When the HEAD fails, the event is trusted and the object removed.
async fn observe_delete(stage: &Stage, change: ObjectChanged) -> ObjectChanged {
    let current = ObjectRef { bucket: &change.bucket, key: &change.key, version_id: None };
    match stage.source.head(current).await {
        Ok(None) => change,
        Ok(Some(meta)) if change.etag.is_some() && meta.etag == change.etag => {
            debug!(object = %current, "there, and passed over by the listing (excluded or hidden): removing it");
            change
        }
        Ok(Some(meta)) => {
            debug!(object = %current, etag = ?meta.etag, "deleted, yet an object is there now; labeling that instead");
            ObjectChanged {
                kind: ChangeKind::Upsert,
                etag: meta.etag,
                version_id: meta.version_id,
                size: meta.size,
                last_modified: meta.last_modified,
                sequencer: None,
                ..change
            }
        }
        Err(e) => {
            warn!(object = %current, error = %e, "cannot tell whether the deleted object is back; removing it as the change says");
            change
        }
    }
}

/// Describes in `outcome` the object version the labeler read, in place of the one
/// the change named (an inventory row a day old, an event overtaken by a newer
/// upload, a version delete). The change's sequencer stays only when the read found
/// the very version the change named.
fn describe_read(outcome: &mut ImageLabeled, read: ObjectMeta) {
    if read.etag.is_none() && read.version_id.is_none() {
        return; // a store that says nothing of the object: the change's description stays
    }
    let same = match (&read.version_id, &outcome.version_id) {
        (Some(a), Some(b)) => a == b,
        _ => read.etag.is_some() && read.etag == outcome.etag,
    };
    if !same {
        outcome.sequencer = None;
    }
    outcome.etag = read.etag;
    outcome.version_id = read.version_id;
    outcome.size = read.size.or(outcome.size);
    outcome.last_modified = read.last_modified.or(outcome.last_modified);
}

/// The outcome's `labeled_at`: now, or just after the newest labeling of the object
/// that the ledger knows (another member's, whose clock may be ahead), so that this
/// later reading of the object is the newest labeling the index and the ledger see.
async fn stamp(stage: &Stage, outcome: &ImageLabeled) -> i64 {
    let now = now_ms();
    let (bucket, key) = (outcome.bucket.clone(), outcome.key.clone());
    match stage.ledger.run(move |l| l.latest_labeled_at(&bucket, &key)).await {
        Ok(Some(latest)) if latest >= now => latest + 1,
        Ok(_) => now,
        Err(e) => {
            warn!(error = %e, "the labeler ledger cannot be read; stamped with this machine's clock");
            now
        }
    }
}

//! The index sink's consumer loop: poll a batch, write it (durable), then commit the
//! offsets it covers. Records are applied in log order; a failed write is retried
//! with backoff and never skipped; an undecodable record goes to the DLQ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bucketlens_runtime::log::{commit_or_defer, dead_letter, Log, LogError, LogRecord, OffsetTracker, Until};
use bucketlens_schemas::{error_codes, record_key, topics, AvroRecord, ImageLabeled};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::{Config, Index, IndexError, Metrics, Rejected};

/// Attempts of one batch write before the sink stops with the error (a full disk
/// or a broken index must be seen, not retried forever). Offsets stay uncommitted,
/// so the batch is written again after a restart.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// A batch is written once no record came for this long (the labeler is idle: a
/// single change is searchable at once, not `commit_interval` later)…
const IDLE_GAP: Duration = Duration::from_millis(20);
/// …unless the last write was less than this ago: under load the sink keeps
/// batching, up to `commit_interval`, so it does not write once per record.
const MIN_WRITE_SPACING: Duration = Duration::from_millis(100);

/// What the sink needs to run.
pub struct Stage {
    pub config: Config,
    pub log: Arc<dyn Log>,
    pub index: Arc<dyn Index>,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("index sink stopped")]
    Log(#[from] LogError),
    #[error("index sink stopped")]
    Index(#[from] IndexError),
}

/// Runs the sink until `until` or `shutdown`.
pub async fn run(stage: Stage, until: Until, shutdown: CancellationToken) -> Result<(), StageError> {
    let topic = topics::IMAGES_LABELED;
    let group = stage.config.group.clone();
    let mut consumer = stage.log.subscribe(&group, topic).await?;
    let mut tracker = OffsetTracker::new();
    let mut batch: Vec<ImageLabeled> = Vec::new();
    let mut batch_started = Instant::now();
    let mut last_write = Instant::now() - MIN_WRITE_SPACING;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let room = stage.config.batch_size - batch.len();
        let until_due = stage.config.commit_interval.saturating_sub(batch_started.elapsed());
        // With a batch: written at the first idle gap once the spacing since the last
        // write has passed (waiting out the rest of the spacing counts as idle when
        // nothing comes), and at `commit_interval` at the latest.
        let wait = if batch.is_empty() {
            until.poll_wait(IDLE_GAP, Duration::from_millis(200))
        } else {
            until_due.min(MIN_WRITE_SPACING.saturating_sub(last_write.elapsed()).max(IDLE_GAP))
        };
        let records = tokio::select! {
            polled = consumer.poll(room, wait) => polled?,
            () = shutdown.cancelled() => Vec::new(),
            // The labeler finishing: caught up, the sink returns now, not after `wait`.
            () = until.upstream_finished(), if !until.upstream_done() => Vec::new(),
        };
        if batch.is_empty() && !records.is_empty() {
            batch_started = Instant::now();
        }
        let idle = records.is_empty();
        for record in records {
            stage.metrics.records_in.add(1);
            tracker.start(record.partition, record.offset);
            match ImageLabeled::from_bytes(&record.value) {
                Ok(labeled) => batch.push(labeled),
                Err(e) => dead_letter_undecodable(&stage, &record, &e.to_string()).await?,
            }
            // Decoded or dead-lettered, the record is covered by the next write.
            tracker.finish(record.partition, record.offset);
        }
        let revocation = consumer.take_revocation();
        let due = batch.len() >= stage.config.batch_size
            || batch_started.elapsed() >= stage.config.commit_interval
            || idle
            || revocation.is_some();
        if due {
            let took = Instant::now();
            let written = batch.len();
            let rejected = write_with_retries(&stage, std::mem::take(&mut batch), &shutdown).await?;
            dead_letter_rejected(&stage, rejected).await?;
            if written > 0 {
                stage.metrics.batch_latency.observe(took.elapsed());
                last_write = Instant::now();
            }
            commit_or_defer(&mut *consumer, &tracker.committable()).await?;
        }
        if let Some(revocation) = revocation {
            // Everything read from them is written and committed: let them go.
            tracker.forget(revocation.partitions());
        }
        if idle && batch.is_empty() && until.reached(&*stage.log, &group, topic).await? {
            break;
        }
    }
    // Shutdown: write what was read, then commit. A crash instead re-reads it.
    if !batch.is_empty() {
        let rejected = write_with_retries(&stage, batch, &CancellationToken::new()).await?;
        dead_letter_rejected(&stage, rejected).await?;
    }
    commit_or_defer(&mut *consumer, &tracker.committable()).await?;
    Ok(())
}

async fn dead_letter_undecodable(stage: &Stage, record: &LogRecord, reason: &str) -> Result<(), LogError> {
    warn!(topic = %record.topic, partition = record.partition, offset = record.offset, key = %record.key, %reason, "undecodable label record sent to the DLQ");
    stage.metrics.undecodable.add(1);
    let dlq = record.dead_letter(error_codes::UNDECODABLE_RECORD, reason);
    stage.log.produce(topics::IMAGES_LABELED_DLQ, vec![dlq]).await
}

/// Records the index refused for good go to the DLQ with the reason, before the
/// offsets that cover them are committed.
async fn dead_letter_rejected(stage: &Stage, rejected: Vec<Rejected>) -> Result<(), LogError> {
    for Rejected { record, reason } in rejected {
        warn!(bucket = %record.bucket, key = %record.key, %reason, "the index refused a record; sent to the DLQ");
        stage.metrics.rejected.add(1);
        let value = record.to_bytes().map_err(|e| LogError::Storage { reason: e.to_string() })?;
        let origin = vec![("source.topic".into(), topics::IMAGES_LABELED.into())];
        let dlq =
            dead_letter(record_key(&record.bucket, &record.key), value, error_codes::INDEX_REJECTED, &reason, origin);
        stage.log.produce(topics::IMAGES_LABELED_DLQ, vec![dlq]).await?;
    }
    Ok(())
}

async fn write_with_retries(
    stage: &Stage,
    batch: Vec<ImageLabeled>,
    shutdown: &CancellationToken,
) -> Result<Vec<Rejected>, IndexError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match stage.index.write(batch.clone()).await {
            Ok(stats) => {
                stage.metrics.applied.add(stats.applied);
                stage.metrics.stale.add(stats.stale);
                stage.metrics.stale_relabel.add(stats.stale_relabel);
                stage.metrics.write_conflicts.add(stats.conflicts);
                stage.metrics.write_throttled.add(stats.throttled);
                if stats.stale_relabel > 0 {
                    warn!(
                        records = stats.stale_relabel,
                        "older labelings of the object versions the index shows, by another model, were ignored: the \
                         index keeps the newest labeling of each object. Two labeler groups running at once, or an old \
                         model's outcomes replayed into a live index, do this; to rebuild from the label log's order \
                         instead, replay it into a fresh index (`bucketlens reindex`)"
                    );
                }
                stage.metrics.commits.add(1);
                return Ok(stats.rejected);
            }
            Err(e) if e.retryable() && attempt < MAX_WRITE_ATTEMPTS && !shutdown.is_cancelled() => {
                error!(error = %e, records = batch.len(), attempt, "index write failed; retrying");
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

//! Labeling one object for the stage: read it as it is now, label it with retries,
//! and note its start and end in the ledger so that a labeler that dies on it is
//! counted (and the object labeled alone, in a child process where the stage has
//! one, next time).

use std::time::Duration;

use bucketlens_runtime::bucket::{ObjectMeta, ObjectRef};
use bucketlens_schemas::{error_codes, ObjectChanged};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::isolate::{Isolated, Isolation};
use super::{Ledger, Running, Stage};
use crate::labeler::{LabelFailure, LabelSet};

/// Labels, and what the read found of the object.
pub(super) type Read = (LabelSet, ObjectMeta);

/// Labels `change` with retries, its start and end noted in the ledger: a labeler
/// process that dies on an object (out of memory, an abort, a crash in a C library)
/// leaves the start unmatched. After one such death the object is labeled alone: in
/// a child process where the stage has [`Stage::isolation`] (each death of a child
/// counts, and the run goes on), else in this process with nothing beside it. After
/// `max-crashes` deaths it is FAILED without being tried, so that a poison object
/// costs a restart or a few, never the pipeline.
pub(super) async fn label_counted(
    running: &Running,
    change: &ObjectChanged,
    shutdown: &CancellationToken,
) -> Option<Result<Option<Read>, LabelFailure>> {
    let stage = &running.stage;
    let mut crashes = noted(stage, change, Ledger::crashes, "crashes on this object are not counted").await;
    let max = stage.settings.max_crashes;
    if crashes >= max {
        noted(stage, change, Ledger::end, "it will be failed again before it is tried").await;
        return Some(Err(crashed(crashes, max, None)));
    }
    let object = format!("{}/{}", change.bucket, change.key);
    if let (true, Some(isolation)) = (crashes > 0, &stage.isolation) {
        warn!(object = %object, crashes, "a labeler process died while this object was in flight; labeling it alone in a separate process");
        loop {
            let result = label_with_retries(stage, change, shutdown, Some(isolation)).await;
            let how = match &result {
                Some(Err(f)) if f.code == error_codes::LABELER_CRASHED => f.message.clone(),
                _ => {
                    noted(stage, change, Ledger::end, "this object may be taken for a crash").await;
                    return result;
                }
            };
            // Counted where it lasts: a parent killed now still knows.
            crashes += 1;
            noted(stage, change, Ledger::begin, "this crash is counted in this run only").await;
            warn!(object = %object, crashes, how = %how, "the separate labeler process died on this object");
            if crashes >= max {
                noted(stage, change, Ledger::end, "it will be failed again before it is tried").await;
                return Some(Err(crashed(crashes, max, Some(&how))));
            }
        }
    }
    let (_shared, _alone) = if crashes > 0 {
        warn!(object = %object, crashes, "a labeler process died while this object was in flight; labeling it alone");
        (None, Some(running.turns.write().await))
    } else {
        (Some(running.turns.read().await), None)
    };
    noted(stage, change, Ledger::begin, "a crash on this object would not be counted").await;
    let result = label_with_retries(stage, change, shutdown, None).await;
    noted(stage, change, Ledger::end, "this object may be taken for a crash").await;
    result
}

/// The failure of an object labelers died on `crashes` times; `last`: how the last
/// child died, where one did.
fn crashed(crashes: u32, max: u32, last: Option<&str>) -> LabelFailure {
    let last = match last {
        Some(how) => format!(" (the last time alone, in a separate process that {how})"),
        None if crashes > 1 => " (the last time it was labeled alone)".to_string(),
        None => String::new(),
    };
    LabelFailure::permanent(
        error_codes::LABELER_CRASHED,
        format!(
            "the labeler process died {crashes} times while labeling this object{last}: out of memory, an abort or \
             a crash in a decoder; see how the process ended (exit status, the system log). It is not tried \
             again (labeler.max-crashes = {max}) until `bucketlens relabel --failed --code {}`",
            error_codes::LABELER_CRASHED
        ),
    )
}

/// Runs `note` on the ledger for `change`. The ledger only saves work or counts
/// crashes: a failure is a warning saying what it `costs`, never a stop.
async fn noted<T: Default + Send + 'static>(
    stage: &Stage,
    change: &ObjectChanged,
    note: fn(&Ledger, &ObjectChanged) -> Result<T, bucketlens_runtime::sqlite::StoreError>,
    costs: &str,
) -> T {
    let change = change.clone();
    stage.ledger.run(move |l| note(l, &change)).await.unwrap_or_else(|e| {
        warn!(error = %e, "the labeler ledger failed; {costs}");
        T::default()
    })
}

/// Reads and labels with retries. `None` if shutdown interrupted a backoff;
/// `Ok(None)` if the object is gone.
async fn label_with_retries(
    stage: &Stage,
    change: &ObjectChanged,
    shutdown: &CancellationToken,
    isolation: Option<&Isolation>,
) -> Option<Result<Option<Read>, LabelFailure>> {
    let mut delay = stage.settings.retry_backoff;
    let mut attempt = 1;
    loop {
        let result = read_and_label(stage, change, isolation).await;
        match &result {
            Err(f) if f.retryable && attempt < stage.settings.max_attempts => {
                stage.metrics.retries.add(1);
                warn!(attempt, code = f.code, reason = %f.message, "retrying");
            }
            _ => return Some(result),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return None,
        }
        delay = delay.saturating_mul(2).min(Duration::from_secs(30));
        attempt += 1;
    }
}

/// How much of an object's start a labeler that reads S3 itself fetches for the
/// metadata: a camera's EXIF (at most 64 KiB in a JPEG) and its XMP after it.
pub const METADATA_HEAD: u64 = 128 * 1024;

/// The photo's metadata from one ranged GET of its first bytes, for a labeler that
/// never holds the bytes (Rekognition by reference). A failed read costs the
/// metadata only, with a note.
async fn metadata_from_the_head(stage: &Stage, object: ObjectRef<'_>, set: &mut LabelSet) {
    match stage.source.first_bytes(object, METADATA_HEAD).await {
        Ok(Some(head)) => {
            set.metadata = crate::metadata::read(&head, &stage.settings.metadata, &mut set.notes).map(Box::new);
        }
        Ok(None) => set.notes.push("the object was gone when its metadata was read".into()),
        Err(e) => set.notes.push(format!("metadata not read: {e}")),
    }
}

/// Reads and labels once the object's current state, whatever version the change
/// named (the index shows what is in the bucket now): with `isolation`, the labeling
/// itself runs in a child process, whose death is a `LabelerCrashed` failure saying
/// how it died. Returns the labels with what the read found of the object (its etag,
/// version, size and LastModified), or `Ok(None)` if the object is gone.
async fn read_and_label(
    stage: &Stage,
    change: &ObjectChanged,
    isolation: Option<&Isolation>,
) -> Result<Option<Read>, LabelFailure> {
    let current = ObjectRef { bucket: &change.bucket, key: &change.key, version_id: None };
    // A labeler that reads S3 itself (Rekognition) is handed the location, not the
    // bytes: a HEAD says which version it is, and pins it.
    if stage.labeler.reads_s3(current.key) && stage.source.in_s3(current.bucket).await {
        let Some(meta) = stage.source.head(current).await.map_err(LabelFailure::from)? else { return Ok(None) };
        let pinned = ObjectRef { version_id: meta.version_id.as_deref(), ..current };
        if let Some(result) = stage.labeler.label_in_s3(pinned, meta.size).await {
            let mut set = result?;
            if stage.settings.metadata.enabled {
                metadata_from_the_head(stage, pinned, &mut set).await;
            }
            return Ok(Some((set, meta)));
        }
    }
    let read = match stage.source.get(current, stage.settings.max_bytes).await {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if read.meta.etag.is_some() && read.meta.etag != change.etag {
        debug!(object = %current, named = ?change.etag, read = ?read.meta.etag, "labelling the version now current");
    }
    let set = match isolation {
        None => stage.labeler.label(read.bytes).await?,
        Some(isolation) => match isolation.label(read.bytes).await {
            Isolated::Answered(result) => result?,
            Isolated::Died(how) => {
                return Err(LabelFailure::permanent(error_codes::LABELER_CRASHED, how));
            }
        },
    };
    Ok(Some((set, read.meta)))
}

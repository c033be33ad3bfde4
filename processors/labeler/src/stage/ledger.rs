//! What is labeled already: per object, the version and the labeler of its latest
//! outcome, so that an object labeled by the same labeler is not labeled (nor read)
//! again — a daily inventory, a redelivered event, a replay or a restarted member
//! costs a lookup, not a GET and a model call.
//!
//! The ledger is a table derived from `images.labeled.v1`, kept in the data dir:
//! - the stage writes each outcome it produces (so its own work is known at once);
//! - a follower reads the whole topic with a consumer group of its own (one per
//!   ledger file and process), so every member learns what the others labeled, and a
//!   new or deleted ledger is rebuilt from the compacted topic before the stage starts.
//!   The ledger keeps how far its followers have read, and a new follower group
//!   starts there: a restart reads what was labeled since, not the whole topic.
//!
//! Either source may replay an older outcome after a newer one; an outcome replaces
//! a row only when it is at least as recent (`labeled_at`).
//!
//! One row per object, about 40 bytes: the object's key, its version and the labeler
//! are stored as 64-bit hashes (the labelers, a handful, by number), not as text.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bucketlens_runtime::log::{Log, LogError, Position, Until};
use bucketlens_runtime::sqlite::{Store, StoreError};
use bucketlens_schemas::{record_key, topics, AvroRecord, ImageLabeled, LabelKind, ModelInfo, ObjectChanged};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::{Backend, Settings};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ledger (
        object INTEGER PRIMARY KEY, kind INTEGER NOT NULL, version INTEGER, labeler INTEGER,
        labeled_at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS ledger_labelers (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE);
     CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS ledger_attempts (object INTEGER PRIMARY KEY, version INTEGER,
        starts INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS ledger_followed (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);";

/// How long the follower's poll waits for records while it catches up with the
/// topic (the stage waits for it), and afterwards.
const CATCH_UP_WAIT: Duration = Duration::from_millis(20);
const FOLLOW_WAIT: Duration = Duration::from_millis(250);

const LABELED: i64 = 0;
const REMOVED: i64 = 1;
const FAILED: i64 = 2;

/// The labeler's identity as far as labels go: a hex fingerprint of the group, the
/// backend and model, and every setting that changes the labels. Settings that only
/// decide whether an image fails (max-bytes, max-pixels) or how fast it goes are left
/// out: a failure is never skipped anyway.
pub fn fingerprint(settings: &Settings, model: &ModelInfo) -> String {
    let mut text = format!(
        "group={}\nmin-confidence={}\nmax-labels={}\nmetadata={} gps={:?}\n",
        settings.group, settings.min_confidence, settings.max_labels, settings.metadata.enabled, settings.metadata.gps
    );
    if settings.hashes {
        // Hashes are found once per version: a labeler that makes them labels anew
        // what one without them labeled (an upgrade hashes the bucket once).
        text.push_str("hashes=sha256+dhash64\n");
    }
    if settings.embedding && settings.backend == Backend::Local {
        // Likewise the embedding (its model is the classifier's, or the embedder's, already named).
        text.push_str(&format!("embedding={}\n", crate::analyzers::classifier::EMBEDDING_FORMAT));
    }
    if settings.clip_labels && settings.embedder.is_some() {
        // Zero-shot labels: the vocabulary is part of what they are.
        text.push_str(&format!("clip-labels={}\n", crate::analyzers::embedder::VOCABULARY));
    }
    if settings.metadata.enabled && settings.metadata.gps != crate::metadata::GpsSetting::Off {
        // A new place table, or a new way of reading it, names places anew.
        text.push_str(&format!("places={}\n", crate::metadata::places::VERSION));
    }
    match settings.backend {
        Backend::Local => {
            // The version digests the model files (the face and object detectors', when on).
            text.push_str(&format!("model={}@{}\n", model.name, model.version));
            if let Some((_, confidence)) = &settings.detector {
                text.push_str(&format!("detector-min-confidence={confidence}\n"));
            }
            if let Some(confidence) = settings.faces {
                text.push_str(&format!("faces-min-confidence={confidence}\n"));
            }
            if let Some(confidence) = settings.objects {
                text.push_str(&format!("objects-min-confidence={confidence}\n"));
            }
            if let Some(confidence) = settings.text {
                // The text reader's version is in the model's; its floor is not.
                text.push_str(&format!("text-min-confidence={confidence}\n"));
            }
        }
        Backend::Rekognition => {
            let r = &settings.rekognition;
            if let Some(confidence) = settings.text {
                text.push_str(&format!("detect-text text-min-confidence={confidence}\n"));
            }
            text.push_str(&format!(
                "rekognition image-properties={} labels+={:?} labels-={:?} categories+={:?} categories-={:?}\n",
                r.image_properties,
                r.label_inclusion_filters,
                r.label_exclusion_filters,
                r.label_category_inclusion_filters,
                r.label_category_exclusion_filters
            ));
        }
    }
    Sha256::digest(text.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A stable 64-bit hash (SQLite integers are signed).
fn hash(text: &str) -> i64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(bytes)
}

/// Which version of an object a record describes: its etag (the same bytes label the
/// same, whichever version holds them), else its version id; `None` if neither is known.
fn version(etag: Option<&str>, version_id: Option<&str>) -> Option<i64> {
    match (etag.map(|e| e.trim_matches('"')).filter(|e| !e.is_empty()), version_id) {
        (Some(etag), _) => Some(hash(&format!("e:{etag}"))),
        (None, Some(id)) => Some(hash(&format!("v:{id}"))),
        (None, None) => None,
    }
}

fn attempt_object(change: &ObjectChanged) -> i64 {
    hash(&record_key(&change.bucket, &change.key))
}

/// What the ledger holds, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Objects whose latest outcome is labels.
    pub labeled: u64,
    /// Every object with an outcome (labeled, failed or removed).
    pub objects: u64,
    /// Upserts skipped as unchanged since the ledger was made.
    pub skipped: u64,
    /// Upserts skipped as archived, not restored (each time one was seen).
    pub archived: u64,
    /// The budget the last labeler run stopped at, if it stopped at one.
    pub budget_spent: Option<u64>,
}

/// The ledger, in SQLite. Its calls block: the stage runs them on the blocking pool.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`; `None` keeps it in memory.
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        Ok(Self { store: Store::open("labeler ledger", path, SCHEMA)? })
    }

    fn meta(&self, conn: &rusqlite::Connection, name: &str) -> Result<Option<i64>, StoreError> {
        conn.query_row("SELECT value FROM ledger_meta WHERE name = ?1", params![name], |r| r.get(0))
            .optional()
            .map_err(|e| self.store.err(e))
    }

    /// This ledger's own id (made once): the follower groups are named after it (and
    /// after their process), so a new ledger file is told apart from the one it
    /// replaces. Processes sharing a data dir share the id (the first one to start
    /// makes it).
    pub fn id(&self) -> Result<String, StoreError> {
        let conn = self.store.lock()?;
        let mine = i64::from(fastrand::u32(..));
        conn.execute("INSERT OR IGNORE INTO ledger_meta (name, value) VALUES ('id', ?1)", params![mine])
            .map_err(|e| self.store.err(e))?;
        let id = self.meta(&conn, "id")?.ok_or_else(|| self.store.err("the ledger id was not stored"))?;
        Ok(format!("{id:08x}"))
    }

    fn labeler_id(&self, conn: &rusqlite::Connection, fingerprint: &str) -> Result<i64, StoreError> {
        conn.execute("INSERT OR IGNORE INTO ledger_labelers (fingerprint) VALUES (?1)", params![fingerprint])
            .map_err(|e| self.store.err(e))?;
        conn.query_row("SELECT id FROM ledger_labelers WHERE fingerprint = ?1", params![fingerprint], |r| r.get(0))
            .map_err(|e| self.store.err(e))
    }

    /// Whether `change` (an upsert) names a version already labeled by `fingerprint`.
    pub fn unchanged(&self, change: &ObjectChanged, fingerprint: &str) -> Result<bool, StoreError> {
        let Some(wanted) = version(change.etag.as_deref(), change.version_id.as_deref()) else { return Ok(false) };
        let conn = self.store.lock()?;
        let row: Option<(i64, Option<i64>, Option<String>)> = conn
            .query_row(
                "SELECT l.kind, l.version, f.fingerprint FROM ledger l
                 LEFT JOIN ledger_labelers f ON f.id = l.labeler WHERE l.object = ?1",
                params![hash(&record_key(&change.bucket, &change.key))],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.store.err(e))?;
        Ok(matches!(row, Some((LABELED, Some(v), Some(f))) if v == wanted && f == fingerprint))
    }

    /// The `labeled_at` of the newest outcome known for `bucket/key`, by any labeler.
    pub fn latest_labeled_at(&self, bucket: &str, key: &str) -> Result<Option<i64>, StoreError> {
        self.store
            .lock()?
            .query_row(
                "SELECT labeled_at FROM ledger WHERE object = ?1",
                params![hash(&record_key(bucket, key))],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.store.err(e))
    }

    /// Takes in outcomes (the stage's own, or the follower's), each replacing the row
    /// of its object unless that row is more recent.
    pub fn record(&self, outcomes: &[ImageLabeled]) -> Result<(), StoreError> {
        self.record_followed(outcomes, &[])
    }

    /// Takes in outcomes as [`Self::record`] does and, in the same transaction, that
    /// the follower has read `images.labeled.v1` up to `next` (partition, next
    /// offset). Members sharing the file each read the whole topic: the furthest
    /// stays, since each read is in this one ledger.
    pub fn record_followed(&self, outcomes: &[ImageLabeled], next: &[(i32, i64)]) -> Result<(), StoreError> {
        let mut conn = self.store.lock()?;
        let tx = conn.transaction().map_err(|e| self.store.err(e))?;
        for &(partition, offset) in next {
            tx.prepare_cached(
                "INSERT INTO ledger_followed (partition, next_offset) VALUES (?1, ?2)
                 ON CONFLICT (partition) DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
            )
            .and_then(|mut stmt| stmt.execute(params![partition, offset]))
            .map_err(|e| self.store.err(e))?;
        }
        for outcome in outcomes {
            let kind = match outcome.kind {
                LabelKind::Labeled => LABELED,
                LabelKind::Removed => REMOVED,
                LabelKind::Failed => FAILED,
            };
            let labeler = match &outcome.labeler {
                Some(fingerprint) => Some(self.labeler_id(&tx, fingerprint)?),
                None => None,
            };
            tx.prepare_cached(
                "INSERT INTO ledger (object, kind, version, labeler, labeled_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (object) DO UPDATE SET kind = excluded.kind, version = excluded.version,
                   labeler = excluded.labeler, labeled_at = excluded.labeled_at
                 WHERE excluded.labeled_at >= ledger.labeled_at",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    hash(&record_key(&outcome.bucket, &outcome.key)),
                    kind,
                    version(outcome.etag.as_deref(), outcome.version_id.as_deref()),
                    labeler,
                    outcome.labeled_at
                ])
            })
            .map_err(|e| self.store.err(e))?;
        }
        tx.commit().map_err(|e| self.store.err(e))
    }

    /// How many times labeling `change`'s version started without finishing: each is a
    /// labeler process that died with it in flight.
    pub fn crashes(&self, change: &ObjectChanged) -> Result<u32, StoreError> {
        let conn = self.store.lock()?;
        let starts: Option<i64> = conn
            .query_row(
                "SELECT starts FROM ledger_attempts WHERE object = ?1 AND version IS ?2",
                params![attempt_object(change), version(change.etag.as_deref(), change.version_id.as_deref())],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.store.err(e))?;
        Ok(starts.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Notes, durably, that labeling `change` starts (a different version starts over).
    pub fn begin(&self, change: &ObjectChanged) -> Result<(), StoreError> {
        self.store
            .lock()?
            .execute(
                "INSERT INTO ledger_attempts (object, version, starts) VALUES (?1, ?2, 1)
                 ON CONFLICT (object) DO UPDATE SET
                   starts = CASE WHEN version IS excluded.version THEN starts + 1 ELSE 1 END,
                   version = excluded.version",
                params![attempt_object(change), version(change.etag.as_deref(), change.version_id.as_deref())],
            )
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    /// Notes that labeling `change` ended, whatever its outcome: the process survived it.
    pub fn end(&self, change: &ObjectChanged) -> Result<(), StoreError> {
        self.store
            .lock()?
            .execute("DELETE FROM ledger_attempts WHERE object = ?1", params![attempt_object(change)])
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    /// Counts `n` more skips of unchanged objects.
    pub fn count_skips(&self, n: u64) -> Result<(), StoreError> {
        self.count("skipped", n)
    }

    /// Adds `n` to the count `name` (`skipped`, `archived`).
    pub fn count(&self, name: &str, n: u64) -> Result<(), StoreError> {
        self.store
            .lock()?
            .execute(
                "INSERT INTO ledger_meta (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                params![name, n as i64],
            )
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    /// Notes that the last run stopped at a budget of `budget` images, or (`None`) that
    /// it did not.
    pub fn set_budget_spent(&self, budget: Option<u64>) -> Result<(), StoreError> {
        let conn = self.store.lock()?;
        let result = match budget {
            Some(n) => conn.execute(
                "INSERT INTO ledger_meta (name, value) VALUES ('budget_spent', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![n as i64],
            ),
            None => conn.execute("DELETE FROM ledger_meta WHERE name = 'budget_spent'", []),
        };
        result.map(|_| ()).map_err(|e| self.store.err(e))
    }

    /// How far the follower has read `images.labeled.v1`: (partition, next offset).
    pub fn followed(&self) -> Result<Vec<(i32, i64)>, StoreError> {
        let conn = self.store.lock()?;
        let mut stmt = conn
            .prepare("SELECT partition, next_offset FROM ledger_followed ORDER BY partition")
            .map_err(|e| self.store.err(e))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.store.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.store.err(e))
    }

    /// What the ledger holds.
    pub fn totals(&self) -> Result<Totals, StoreError> {
        let conn = self.store.lock()?;
        let (objects, labeled): (i64, i64) = conn
            .query_row("SELECT COUNT(*), COALESCE(SUM(kind = 0), 0) FROM ledger", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.store.err(e))?;
        let skipped = self.meta(&conn, "skipped")?.unwrap_or(0);
        let archived = self.meta(&conn, "archived")?.unwrap_or(0);
        let budget_spent = self.meta(&conn, "budget_spent")?.map(|n| n as u64);
        Ok(Totals {
            labeled: labeled as u64,
            objects: objects as u64,
            skipped: skipped as u64,
            archived: archived as u64,
            budget_spent,
        })
    }

    /// Runs `f` on this ledger on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Ledger) -> Result<T, StoreError> + Send + 'static,
    {
        let ledger = self.clone();
        self.store.run(move |_| f(&ledger)).await
    }
}

/// The follower: reads `images.labeled.v1` into the ledger until `shutdown`. It says
/// `true` on `caught_up` once it has read what the topic held when it started (at
/// once if it stops for an error: the ledger then only knows this stage's own work,
/// which costs labeling again, never a wrong skip).
pub async fn follow(
    log: Arc<dyn Log>,
    ledger: Ledger,
    group: String,
    caught_up: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    match follow_until_shutdown(&*log, &ledger, &group, &caught_up, &shutdown).await {
        Ok(read) => debug!(group = %group, read, "the labeler ledger stopped following images.labeled.v1"),
        Err(e) => {
            warn!(group = %group, error = %e, "the labeler ledger stopped following images.labeled.v1; objects other members labeled may be labeled again");
        }
    }
    let _ = caught_up.send(true);
}

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn follow_until_shutdown(
    log: &dyn Log,
    ledger: &Ledger,
    group: &str,
    caught_up: &watch::Sender<bool>,
    shutdown: &CancellationToken,
) -> Result<u64, FollowError> {
    let topic = topics::IMAGES_LABELED;
    let marks = log.watermarks(topic).await?;
    // The group is new (one per process start): it starts where this ledger's
    // followers have read to, so a restart reads only what was labeled since.
    let resume = ledger.run(Ledger::followed).await?;
    let resumed = log.reset_group(group, topic, Position::Resume(resume)).await?;
    // The stage waits for this: nothing new (an empty topic, a restart with nothing
    // labeled meanwhile) is caught up at once.
    if marks.iter().all(|m| m.lag(&resumed) == 0) {
        let _ = caught_up.send(true);
    }
    let start = Until::EndOffsets(marks);
    let mut consumer = log.subscribe(group, topic).await?;
    let mut read = 0u64;
    loop {
        // Until caught up, a poll that finds nothing more ends soon, so the stage
        // starts once the backlog is read, not a long wait after it.
        let wait = if *caught_up.borrow() { FOLLOW_WAIT } else { CATCH_UP_WAIT };
        let polled = tokio::select! {
            polled = consumer.poll(1000, wait) => polled?,
            () = shutdown.cancelled() => return Ok(read),
        };
        // Whatever was read is applied and committed below, before the next poll:
        // a rebalance has nothing to wait for.
        drop(consumer.take_revocation());
        if polled.is_empty() {
            if !*caught_up.borrow() && start.reached(log, group, topic).await? {
                debug!(group = %group, read, "the labeler ledger caught up with images.labeled.v1");
                let _ = caught_up.send(true);
            }
            continue;
        }
        let mut next: Vec<(i32, i64)> = Vec::new();
        for record in &polled {
            match next.iter_mut().find(|(p, _)| *p == record.partition) {
                Some(at) => at.1 = at.1.max(record.offset + 1),
                None => next.push((record.partition, record.offset + 1)),
            }
        }
        // An undecodable record is the sink's to dead-letter; here it teaches nothing.
        let outcomes: Vec<ImageLabeled> =
            polled.iter().filter_map(|r| ImageLabeled::from_bytes(&r.value).ok()).collect();
        read += polled.len() as u64;
        let followed = next.clone();
        ledger.run(move |l| l.record_followed(&outcomes, &followed)).await?;
        bucketlens_runtime::log::commit_or_defer(&mut *consumer, &next).await?;
    }
}

#[cfg(test)]
mod tests;

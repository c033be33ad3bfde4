//! What `act` did, in SQLite in the data dir: per rule and object, the newest label
//! record it decided on and the version the rule matches now; per record, the
//! actions already done. It is what makes a match act once:
//!
//! - a redelivery (the same record: same `labeled_at`) does only what is not done;
//! - a replay (records older than the one decided on last) does nothing;
//! - a relabel of the version that matched, still matching, does nothing;
//! - actions that failed for good (dead-lettered) are kept, and done again when
//!   that same record comes back (a dead-letter redrive), not otherwise.
//!
//! Its calls block: the stage runs them on the blocking pool. It never decides
//! whether a record matches.

use std::path::Path;

use bucketlens_runtime::sqlite::{Store, StoreError};
use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS act_state (
    rule TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    version TEXT,
    version_id TEXT,
    failed TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rule, bucket, key)
);
CREATE INDEX IF NOT EXISTS act_state_by_object ON act_state (bucket, key);
CREATE TABLE IF NOT EXISTS act_done (
    rule TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    labeled_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    PRIMARY KEY (rule, bucket, key, labeled_at, action)
);
";

/// A rule's state for one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// `labeled_at` of the newest record decided on.
    pub seen_at: i64,
    /// The object version the rule matches now (version id, else ETag), if it does.
    pub version: Option<String>,
    /// Its S3 version id, for the tags.
    pub version_id: Option<String>,
    /// Actions of the last decision that were dead-lettered.
    pub failed: Vec<String>,
}

/// One action of a rule on the record of one object labeled at `labeled_at`.
#[derive(Debug, Clone)]
pub struct ActionAt {
    pub rule: String,
    pub bucket: String,
    pub key: String,
    pub labeled_at: i64,
    pub action: &'static str,
}

/// Matches per rule: the objects each rule matches now.
pub type Counts = Vec<(String, u64)>;

#[derive(Clone)]
pub struct Ledger {
    store: Store,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`; `None` keeps it in memory.
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        Ok(Self { store: Store::open("act ledger", path, SCHEMA)? })
    }

    /// Every rule's state for one object, by rule name: one look-up per record. A
    /// rule that never matched the object has none.
    pub fn states(&self, bucket: &str, key: &str) -> Result<HashMap<String, State>, StoreError> {
        let conn = self.store.lock()?;
        let mut statement = conn
            .prepare_cached(
                "SELECT rule, seen_at, version, version_id, failed FROM act_state WHERE bucket = ?1 AND key = ?2",
            )
            .map_err(|e| self.store.err(e))?;
        let rows = statement
            .query_map(params![bucket, key], |r| {
                let failed: String = r.get(4)?;
                let state = State {
                    seen_at: r.get(1)?,
                    version: r.get(2)?,
                    version_id: r.get(3)?,
                    failed: failed.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
                };
                Ok((r.get::<_, String>(0)?, state))
            })
            .map_err(|e| self.store.err(e))?;
        rows.collect::<Result<HashMap<_, _>, _>>().map_err(|e| self.store.err(e))
    }

    /// Whether `at.action` was done for the record of `at.labeled_at`.
    pub fn done(&self, at: &ActionAt) -> Result<bool, StoreError> {
        let conn = self.store.lock()?;
        let found: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM act_done WHERE rule = ?1 AND bucket = ?2 AND key = ?3 AND labeled_at = ?4 AND action = ?5",
                params![at.rule, at.bucket, at.key, at.labeled_at, at.action],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.store.err(e))?;
        Ok(found.is_some())
    }

    pub fn mark_done(&self, at: &ActionAt) -> Result<(), StoreError> {
        let conn = self.store.lock()?;
        conn.execute(
            "INSERT OR IGNORE INTO act_done (rule, bucket, key, labeled_at, action) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![at.rule, at.bucket, at.key, at.labeled_at, at.action],
        )
        .map_err(|e| self.store.err(e))?;
        Ok(())
    }

    /// Records the decision on the record of `labeled_at`, and forgets the actions
    /// done for earlier records of the object.
    pub fn decided(
        &self,
        (rule, bucket, key): (&str, &str, &str),
        labeled_at: i64,
        state: &State,
    ) -> Result<(), StoreError> {
        let mut conn = self.store.lock()?;
        let tx = conn.transaction().map_err(|e| self.store.err(e))?;
        tx.execute(
            "INSERT INTO act_state (rule, bucket, key, seen_at, version, version_id, failed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (rule, bucket, key) DO UPDATE SET seen_at = excluded.seen_at, version = excluded.version,
               version_id = excluded.version_id, failed = excluded.failed",
            params![rule, bucket, key, labeled_at, state.version, state.version_id, state.failed.join(",")],
        )
        .map_err(|e| self.store.err(e))?;
        tx.execute(
            "DELETE FROM act_done WHERE rule = ?1 AND bucket = ?2 AND key = ?3 AND labeled_at < ?4",
            params![rule, bucket, key, labeled_at],
        )
        .map_err(|e| self.store.err(e))?;
        tx.commit().map_err(|e| self.store.err(e))
    }

    /// The objects each rule matches now, by rule name.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.store.lock()?;
        let mut statement = conn
            .prepare("SELECT rule, COUNT(version) FROM act_state GROUP BY rule ORDER BY rule")
            .map_err(|e| self.store.err(e))?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(|e| self.store.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.store.err(e))
    }
}

/// The ledger's calls on the blocking pool, for the stage.
impl Ledger {
    pub async fn run_states(&self, bucket: &str, key: &str) -> Result<HashMap<String, State>, StoreError> {
        let (ledger, bucket, key) = (self.clone(), bucket.to_string(), key.to_string());
        blocking(move || ledger.states(&bucket, &key)).await
    }

    pub async fn run_done(&self, at: ActionAt) -> Result<bool, StoreError> {
        let ledger = self.clone();
        blocking(move || ledger.done(&at)).await
    }

    pub async fn run_mark_done(&self, at: ActionAt) -> Result<(), StoreError> {
        let ledger = self.clone();
        blocking(move || ledger.mark_done(&at)).await
    }

    pub async fn run_decided(
        &self,
        (rule, bucket, key): (&str, &str, &str),
        at: i64,
        state: State,
    ) -> Result<(), StoreError> {
        let (ledger, r, b, k) = (self.clone(), rule.to_string(), bucket.to_string(), key.to_string());
        blocking(move || ledger.decided((&r, &b, &k), at, &state)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError {
        what: "act ledger",
        path: String::new(),
        reason: format!("ledger task failed: {e}"),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_is_kept_and_forgets_the_actions_of_earlier_records() {
        let ledger = Ledger::open(None).unwrap();
        let at = ("weapons", "photos", "a.jpg");
        assert!(ledger.states(at.1, at.2).unwrap().is_empty());
        let webhook =
            ActionAt { rule: at.0.into(), bucket: at.1.into(), key: at.2.into(), labeled_at: 10, action: "webhook" };
        ledger.mark_done(&webhook).unwrap();
        assert!(ledger.done(&webhook).unwrap());
        let matched = State {
            seen_at: 10,
            version: Some("v1".into()),
            version_id: Some("v1".into()),
            failed: vec!["tags".into()],
        };
        ledger.decided(at, 10, &matched).unwrap();
        assert_eq!(ledger.states(at.1, at.2).unwrap().remove(at.0), Some(matched));
        assert!(ledger.done(&webhook).unwrap(), "the record's own actions are kept");
        assert_eq!(ledger.counts().unwrap(), vec![("weapons".to_string(), 1)]);
        ledger.decided(at, 20, &State { seen_at: 20, ..State::default() }).unwrap();
        assert!(!ledger.done(&webhook).unwrap());
        assert_eq!(ledger.counts().unwrap(), vec![("weapons".to_string(), 0)]);
    }
}

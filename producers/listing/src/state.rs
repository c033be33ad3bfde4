//! What the producer has produced, per key: the etag of the last upsert. A sync
//! stamps every key it sees with its generation; keys in the synced scope left with
//! an older generation have vanished.

use std::path::Path;

use bucketlens_runtime::sqlite::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS listing_state (
        bucket TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL, generation INTEGER NOT NULL,
        PRIMARY KEY (bucket, key)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS roots (bucket TEXT PRIMARY KEY, root TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS listed_for (listing TEXT PRIMARY KEY, grp TEXT NOT NULL, labeler TEXT NOT NULL);";

/// The producer's memory, in SQLite. Its calls block: async code runs them through
/// [`State::run`].
#[derive(Clone)]
pub struct State {
    store: Store,
}

/// The keys of `bucket` in a scope.
#[derive(Debug, Clone)]
pub struct Scope {
    pub bucket: String,
    pub keys: Keys,
}

/// Which keys of a bucket a sync covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    /// Every key.
    All,
    /// One key and the keys under `key/` (a file or folder of a local directory).
    Path(String),
    /// The keys that start with a prefix (S3 prefix semantics).
    Prefix(String),
}

impl State {
    /// Opens the state at `path` (`None`: in memory, for `--print`).
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        Ok(Self { store: Store::open("listing state", path, SCHEMA)? })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        self.store.err(e)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, rusqlite::Connection>, StoreError> {
        self.store.lock()
    }

    /// Runs `f` on this state on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> Result<T, StoreError> + Send + 'static,
    {
        let state = self.clone();
        self.store.run(move |_| f(&state)).await
    }

    /// Remembers which folder serves `bucket` (for replays that re-read objects).
    pub fn remember_root(&self, bucket: &str, root: &Path) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO roots (bucket, root) VALUES (?1, ?2) ON CONFLICT (bucket) DO UPDATE SET root = excluded.root",
            params![bucket, root.to_string_lossy()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every `(bucket, folder)` indexed so far.
    pub fn roots(&self) -> Result<Vec<(String, std::path::PathBuf)>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT bucket, root FROM roots ORDER BY bucket").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, std::path::PathBuf::from(r.get::<_, String>(1)?))))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>();
        rows.map_err(|e| self.err(e))
    }

    /// The folder `bucket` was last read from, if it was a folder.
    pub fn root(&self, bucket: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT root FROM roots WHERE bucket = ?1", params![bucket], |r| r.get::<_, String>(0))
            .optional()
            .map(|root| root.map(std::path::PathBuf::from))
            .map_err(|e| self.err(e))
    }

    /// Which labeler (its group, and its fingerprint) last labeled everything
    /// `index` listed in `listing` (a folder, an `s3://` URL): when the settings
    /// change, the next `index` lists it all again.
    pub fn listed_for(&self, listing: &str) -> Result<Option<(String, String)>, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT grp, labeler FROM listed_for WHERE listing = ?1", params![listing], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Records that the labeler of `group` with the fingerprint `labeler` has seen
    /// every image listed in `listing`.
    pub fn set_listed_for(&self, listing: &str, group: &str, labeler: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO listed_for (listing, grp, labeler) VALUES (?1, ?2, ?3)
             ON CONFLICT (listing) DO UPDATE SET grp = excluded.grp, labeler = excluded.labeler",
            params![listing, group, labeler],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// How many keys of `bucket` are known.
    pub fn known(&self, bucket: &str) -> Result<u64, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT COUNT(*) FROM listing_state WHERE bucket = ?1", params![bucket], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The highest generation used so far.
    pub fn last_generation(&self) -> Result<i64, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT COALESCE(MAX(generation), 0) FROM listing_state", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The etag last produced for `key`, if any.
    pub fn etag(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT etag FROM listing_state WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Stamps keys as seen in `generation`, with their etag (after producing them).
    pub fn mark_seen(&self, bucket: &str, keys: &[(String, String)], generation: i64) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO listing_state (bucket, key, etag, generation) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (bucket, key) DO UPDATE SET etag = excluded.etag, generation = excluded.generation",
                )
                .map_err(|e| self.err(e))?;
            for (key, etag) in keys {
                stmt.execute(params![bucket, key, etag, generation]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Stamps the known keys at `key` and under `key/` as seen in `generation`: a
    /// folder (or file) that could not be read is unknown, not gone. The empty key
    /// keeps the whole bucket.
    pub fn keep(&self, bucket: &str, key: &str, generation: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let sql = if key.is_empty() {
            "UPDATE listing_state SET generation = ?2 WHERE bucket = ?1 AND ?3 = ''"
        } else {
            "UPDATE listing_state SET generation = ?2
             WHERE bucket = ?1 AND (key = ?3 OR (key >= ?3 || '/' AND key < ?3 || '0'))"
        };
        conn.execute(sql, params![bucket, generation, key]).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Up to `limit` keys in `scope` not seen in `generation` (vanished).
    pub fn unseen(&self, scope: &Scope, generation: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        const UNDER_PATH: &str = "SELECT key FROM listing_state WHERE bucket = ?1 AND generation < ?2
             AND (key = ?3 OR (key >= ?3 || '/' AND key < ?3 || '0')) LIMIT ?4";
        const WITH_PREFIX: &str = "SELECT key FROM listing_state WHERE bucket = ?1 AND generation < ?2
             AND key >= ?3 AND substr(key, 1, length(?3)) = ?3 LIMIT ?4";
        // Keys under `key/` sort between `key/` and `key0` ('0' follows '/'); every
        // key starts with the empty prefix.
        let (sql, key) = match &scope.keys {
            Keys::All => (WITH_PREFIX, ""),
            Keys::Path(key) => (UNDER_PATH, key.as_str()),
            Keys::Prefix(prefix) => (WITH_PREFIX, prefix.as_str()),
        };
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![scope.bucket, generation, key, limit as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<String>, _>>();
        rows.map_err(|e| self.err(e))
    }

    /// Forgets keys (after their deletes were produced).
    pub fn forget(&self, bucket: &str, keys: &[String]) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for key in keys {
            tx.execute("DELETE FROM listing_state WHERE bucket = ?1 AND key = ?2", params![bucket, key])
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

//! What the producer has produced, per key: the etag of the last upsert. A sync
//! stamps every key it sees with its generation; keys in the synced scope left with
//! an older generation have vanished.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
#[error("listing state at {path}: {reason}")]
pub struct StateError {
    path: String,
    reason: String,
}

/// The producer's memory, in SQLite.
#[derive(Clone)]
pub struct State {
    path: String,
    conn: Arc<Mutex<Connection>>,
}

/// The keys of `bucket` in a scope: everything, or one key and what is under it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub bucket: String,
    /// `None` = the whole bucket; `Some(k)` = `k` itself and keys under `k/`.
    pub key: Option<String>,
}

impl State {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |e: rusqlite::Error| StateError { path: path.display().to_string(), reason: e.to_string() };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS listing_state (
                bucket TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL, generation INTEGER NOT NULL,
                PRIMARY KEY (bucket, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS roots (bucket TEXT PRIMARY KEY, root TEXT NOT NULL);",
        )
        .map_err(err)?;
        Ok(Self { path: path.display().to_string(), conn: Arc::new(Mutex::new(conn)) })
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError { path: self.path.clone(), reason: e.to_string() }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| self.err("poisoned by a panic"))
    }

    /// Remembers which folder serves `bucket` (for replays that re-read objects).
    pub fn remember_root(&self, bucket: &str, root: &Path) -> Result<(), StateError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO roots (bucket, root) VALUES (?1, ?2) ON CONFLICT (bucket) DO UPDATE SET root = excluded.root",
            params![bucket, root.to_string_lossy()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every `(bucket, folder)` indexed so far.
    pub fn roots(&self) -> Result<Vec<(String, std::path::PathBuf)>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT bucket, root FROM roots ORDER BY bucket").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, std::path::PathBuf::from(r.get::<_, String>(1)?))))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>();
        rows.map_err(|e| self.err(e))
    }

    /// The highest generation used so far.
    pub fn last_generation(&self) -> Result<i64, StateError> {
        let conn = self.lock()?;
        conn.query_row("SELECT COALESCE(MAX(generation), 0) FROM listing_state", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The etag last produced for `key`, if any.
    pub fn etag(&self, bucket: &str, key: &str) -> Result<Option<String>, StateError> {
        let conn = self.lock()?;
        conn.query_row("SELECT etag FROM listing_state WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Stamps keys as seen in `generation`, with their etag (after producing them).
    pub fn mark_seen(&self, bucket: &str, keys: &[(String, String)], generation: i64) -> Result<(), StateError> {
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

    /// Up to `limit` keys in `scope` not seen in `generation` (vanished).
    pub fn unseen(&self, scope: &Scope, generation: i64, limit: usize) -> Result<Vec<String>, StateError> {
        let conn = self.lock()?;
        let limit = limit as i64;
        let rows: Result<Vec<String>, rusqlite::Error> = match &scope.key {
            None => {
                let mut stmt = conn
                    .prepare_cached("SELECT key FROM listing_state WHERE bucket = ?1 AND generation < ?2 LIMIT ?3")
                    .map_err(|e| self.err(e))?;
                let rows = stmt
                    .query_map(params![scope.bucket, generation, limit], |r| r.get(0))
                    .map_err(|e| self.err(e))?
                    .collect();
                rows
            }
            Some(key) => {
                // Keys under `key/` sort between `key/` and `key0` ('0' follows '/').
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT key FROM listing_state WHERE bucket = ?1 AND generation < ?2
                         AND (key = ?3 OR (key >= ?3 || '/' AND key < ?3 || '0')) LIMIT ?4",
                    )
                    .map_err(|e| self.err(e))?;
                let rows = stmt
                    .query_map(params![scope.bucket, generation, key, limit], |r| r.get(0))
                    .map_err(|e| self.err(e))?
                    .collect();
                rows
            }
        };
        rows.map_err(|e| self.err(e))
    }

    /// Up to `limit` keys of `bucket` starting with `prefix` (S3 prefix semantics)
    /// not seen in `generation`.
    pub fn unseen_with_prefix(
        &self,
        bucket: &str,
        prefix: &str,
        generation: i64,
        limit: usize,
    ) -> Result<Vec<String>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT key FROM listing_state WHERE bucket = ?1 AND generation < ?2
                 AND key >= ?3 AND substr(key, 1, length(?3)) = ?3 LIMIT ?4",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![bucket, generation, prefix, limit as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<String>, _>>();
        rows.map_err(|e| self.err(e))
    }

    /// Forgets keys (after their deletes were produced).
    pub fn forget(&self, bucket: &str, keys: &[String]) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for key in keys {
            tx.execute("DELETE FROM listing_state WHERE bucket = ?1 AND key = ?2", params![bucket, key])
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

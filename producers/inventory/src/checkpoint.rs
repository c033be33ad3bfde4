//! How far each inventory report was produced: per data file, the last line whose
//! records the log has, and whether the file (and the report) is done. A restart
//! skips finished files and resumes a file after its last checkpointed line.
//!
//! And what the reports of one inventory configuration (its *scope*) listed: each
//! report stamps the keys it lists with its generation; once a report is produced to
//! the end, the keys of its scope left with an older generation have vanished from
//! the bucket, and become deletes.

use std::path::Path;

use bucketlens_runtime::sqlite::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS inventory_files (
        report TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL, done INTEGER NOT NULL,
        PRIMARY KEY (report, file)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS inventory_reports (report TEXT PRIMARY KEY, finished_at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS inventory_generations (report TEXT PRIMARY KEY, scope TEXT NOT NULL,
        generation INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS inventory_keys (scope TEXT NOT NULL, key TEXT NOT NULL, generation INTEGER NOT NULL,
        PRIMARY KEY (scope, key)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS inventory_scopes (scope TEXT PRIMARY KEY, created INTEGER NOT NULL);";

/// The checkpoint, in SQLite; every call runs on the blocking pool.
#[derive(Clone)]
pub struct Checkpoint {
    store: Store,
}

/// Where a data file stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileProgress {
    pub line: u64,
    pub done: bool,
}

impl Checkpoint {
    /// `None` keeps the checkpoint in memory (`--print` remembers nothing).
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        Ok(Self { store: Store::open("inventory checkpoint", path, SCHEMA)? })
    }

    pub async fn file(&self, report: &str, file: &str) -> Result<FileProgress, StoreError> {
        let (report, file) = (report.to_string(), file.to_string());
        self.store
            .run(move |s| {
                s.lock()?
                    .query_row(
                        "SELECT line, done FROM inventory_files WHERE report = ?1 AND file = ?2",
                        params![report, file],
                        |r| Ok(FileProgress { line: r.get::<_, i64>(0)? as u64, done: r.get(1)? }),
                    )
                    .optional()
                    .map(Option::unwrap_or_default)
                    .map_err(|e| s.err(e))
            })
            .await
    }

    pub async fn save(&self, report: &str, file: &str, progress: FileProgress) -> Result<(), StoreError> {
        let (report, file) = (report.to_string(), file.to_string());
        self.store
            .run(move |s| {
                s.lock()?
                    .execute(
                        "INSERT INTO inventory_files (report, file, line, done) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (report, file) DO UPDATE SET line = excluded.line, done = excluded.done",
                        params![report, file, progress.line as i64, progress.done],
                    )
                    .map(|_| ())
                    .map_err(|e| s.err(e))
            })
            .await
    }

    /// The generation of `report` in `scope`: the one it was given when first
    /// started (a resumed report keeps it), else the next one.
    pub async fn generation(&self, report: &str, scope: &str) -> Result<i64, StoreError> {
        let (report, scope) = (report.to_string(), scope.to_string());
        self.store
            .run(move |s| {
                let conn = s.lock()?;
                conn.execute(
                    "INSERT OR IGNORE INTO inventory_generations (report, scope, generation)
                     SELECT ?1, ?2, COALESCE(MAX(generation), 0) + 1 FROM inventory_generations",
                    params![report, scope],
                )
                .map_err(|e| s.err(e))?;
                conn.query_row("SELECT generation FROM inventory_generations WHERE report = ?1", params![report], |r| {
                    r.get(0)
                })
                .map_err(|e| s.err(e))
            })
            .await
    }

    /// Stamps `listed` keys of `scope` with `generation` and forgets `deleted` ones
    /// (delete markers: their delete is produced already).
    pub async fn listed(
        &self,
        scope: &str,
        listed: Vec<String>,
        deleted: Vec<String>,
        generation: i64,
    ) -> Result<(), StoreError> {
        let scope = scope.to_string();
        self.store
            .run(move |s| {
                let mut conn = s.lock()?;
                let tx = conn.transaction().map_err(|e| s.err(e))?;
                {
                    let mut stamp = tx
                        .prepare_cached(
                            "INSERT INTO inventory_keys (scope, key, generation) VALUES (?1, ?2, ?3)
                             ON CONFLICT (scope, key) DO UPDATE SET generation = excluded.generation",
                        )
                        .map_err(|e| s.err(e))?;
                    for key in &listed {
                        stamp.execute(params![scope, key, generation]).map_err(|e| s.err(e))?;
                    }
                    let mut forget = tx
                        .prepare_cached("DELETE FROM inventory_keys WHERE scope = ?1 AND key = ?2")
                        .map_err(|e| s.err(e))?;
                    for key in &deleted {
                        forget.execute(params![scope, key]).map_err(|e| s.err(e))?;
                    }
                }
                tx.commit().map_err(|e| s.err(e))
            })
            .await
    }

    /// Up to `limit` keys of `scope` that no report since `generation` listed.
    pub async fn vanished(&self, scope: &str, generation: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let scope = scope.to_string();
        self.store
            .run(move |s| {
                let conn = s.lock()?;
                let mut stmt = conn
                    .prepare_cached("SELECT key FROM inventory_keys WHERE scope = ?1 AND generation < ?2 LIMIT ?3")
                    .map_err(|e| s.err(e))?;
                let keys = stmt
                    .query_map(params![scope, generation, limit as i64], |r| r.get(0))
                    .map_err(|e| s.err(e))?
                    .collect::<Result<Vec<String>, _>>();
                keys.map_err(|e| s.err(e))
            })
            .await
    }

    /// Forgets keys of `scope` (once their deletes are produced).
    pub async fn forget(&self, scope: &str, keys: Vec<String>) -> Result<(), StoreError> {
        self.listed(scope, Vec::new(), keys, 0).await
    }

    /// When the newest report of `scope` synced so far was made (ms), if any.
    pub async fn synced(&self, scope: &str) -> Result<Option<i64>, StoreError> {
        let scope = scope.to_string();
        self.store
            .run(move |s| {
                s.lock()?
                    .query_row("SELECT created FROM inventory_scopes WHERE scope = ?1", params![scope], |r| r.get(0))
                    .optional()
                    .map_err(|e| s.err(e))
            })
            .await
    }

    /// Records that `scope` is synced up to a report made at `created` (ms).
    pub async fn sync_done(&self, scope: &str, created: i64) -> Result<(), StoreError> {
        let scope = scope.to_string();
        self.store
            .run(move |s| {
                s.lock()?
                    .execute(
                        "INSERT INTO inventory_scopes (scope, created) VALUES (?1, ?2)
                         ON CONFLICT (scope) DO UPDATE SET created = MAX(created, excluded.created)",
                        params![scope, created],
                    )
                    .map(|_| ())
                    .map_err(|e| s.err(e))
            })
            .await
    }

    pub async fn finished(&self, report: &str) -> Result<bool, StoreError> {
        let report = report.to_string();
        self.store
            .run(move |s| {
                s.lock()?
                    .query_row("SELECT 1 FROM inventory_reports WHERE report = ?1", params![report], |_| Ok(()))
                    .optional()
                    .map(|r| r.is_some())
                    .map_err(|e| s.err(e))
            })
            .await
    }

    pub async fn finish(&self, report: &str) -> Result<(), StoreError> {
        let report = report.to_string();
        self.store
            .run(move |s| {
                s.lock()?
                    .execute(
                        "INSERT OR REPLACE INTO inventory_reports (report, finished_at) VALUES (?1, ?2)",
                        params![report, bucketlens_runtime::now_ms()],
                    )
                    .map(|_| ())
                    .map_err(|e| s.err(e))
            })
            .await
    }
}

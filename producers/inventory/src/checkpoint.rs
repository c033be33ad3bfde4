//! How far each inventory report was produced: per data file, the last line whose
//! records the log has, and whether the file (and the report) is done. A restart
//! skips finished files and resumes a file after its last checkpointed line.

use std::path::Path;

use bucketlens_runtime::sqlite::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS inventory_files (
        report TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL, done INTEGER NOT NULL,
        PRIMARY KEY (report, file)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS inventory_reports (report TEXT PRIMARY KEY, finished_at INTEGER NOT NULL);";

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

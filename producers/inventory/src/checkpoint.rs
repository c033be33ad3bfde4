//! How far each inventory report was produced: per data file, the last line whose
//! records the log has, and whether the file (and the report) is done. A restart
//! skips finished files and resumes a file after its last checkpointed line.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Clone)]
pub struct Checkpoint {
    path: String,
    conn: Arc<Mutex<Connection>>,
}

#[derive(Debug, thiserror::Error)]
#[error("inventory checkpoint at {path}: {reason}")]
pub struct CheckpointError {
    path: String,
    reason: String,
}

/// Where a data file stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileProgress {
    pub line: u64,
    pub done: bool,
}

impl Checkpoint {
    /// `None` keeps the checkpoint in memory (`--print` remembers nothing).
    pub fn open(path: Option<&Path>) -> Result<Self, CheckpointError> {
        let name = path.map_or_else(|| ":memory:".to_string(), |p| p.display().to_string());
        let err = |e: rusqlite::Error| CheckpointError { path: name.clone(), reason: e.to_string() };
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        // As the embedded log: WAL without an fsync per batch. A power cut may lose the
        // last few saves, which only means producing those batches again.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS inventory_files (
                report TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL, done INTEGER NOT NULL,
                PRIMARY KEY (report, file)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS inventory_reports (report TEXT PRIMARY KEY, finished_at INTEGER NOT NULL);",
        )
        .map_err(err)?;
        Ok(Self { path: name, conn: Arc::new(Mutex::new(conn)) })
    }

    fn err(&self, e: impl std::fmt::Display) -> CheckpointError {
        CheckpointError { path: self.path.clone(), reason: e.to_string() }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, CheckpointError> {
        self.conn.lock().map_err(|_| self.err("poisoned by a panic"))
    }

    pub fn file(&self, report: &str, file: &str) -> Result<FileProgress, CheckpointError> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT line, done FROM inventory_files WHERE report = ?1 AND file = ?2",
            params![report, file],
            |r| Ok(FileProgress { line: r.get::<_, i64>(0)? as u64, done: r.get(1)? }),
        )
        .optional()
        .map(Option::unwrap_or_default)
        .map_err(|e| self.err(e))
    }

    pub fn save(&self, report: &str, file: &str, progress: FileProgress) -> Result<(), CheckpointError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO inventory_files (report, file, line, done) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (report, file) DO UPDATE SET line = excluded.line, done = excluded.done",
            params![report, file, progress.line as i64, progress.done],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn finished(&self, report: &str) -> Result<bool, CheckpointError> {
        let conn = self.lock()?;
        conn.query_row("SELECT 1 FROM inventory_reports WHERE report = ?1", params![report], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    pub fn finish(&self, report: &str) -> Result<(), CheckpointError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT OR REPLACE INTO inventory_reports (report, finished_at) VALUES (?1, ?2)",
            params![report, bucketlens_runtime::now_ms()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

//! A stage's own small SQLite store (the listing state, the inventory checkpoint):
//! one connection behind a mutex, WAL without an fsync per transaction (a power cut
//! may lose the last few writes, which only means producing those records again),
//! a busy timeout so that two processes on one data dir wait for each other, and
//! errors that name the store and its file.
//!
//! Every call on the connection blocks: async code goes through [`Store::run`],
//! which runs it on the blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// Why a store call failed, naming the store and its file.
#[derive(Debug, thiserror::Error)]
#[error("{what} at {path}: {reason}")]
pub struct StoreError {
    pub what: &'static str,
    pub path: String,
    pub reason: String,
}

/// SQLite's words for `SQLITE_FULL`, as `sqlite3_errstr` has them.
const DISK_FULL: &str = "database or disk is full";

/// The reason to give for a SQLite failure: a full disk says what to do about it
/// (once, not SQLite's words after ours).
pub fn reason(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    if text.contains(DISK_FULL) {
        "the disk is full: free space where the data dir is, then run again (what was written is kept, the rest is \
         redone)"
            .into()
    } else {
        text
    }
}

#[derive(Clone)]
pub struct Store {
    what: &'static str,
    path: String,
    conn: Arc<Mutex<Connection>>,
}

/// Whether `e` is SQLite's "database is busy / locked".
fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Store {
    /// Opens (or creates) the store `what` at `path`, in memory when `None`, and
    /// runs `schema` (idempotent `CREATE … IF NOT EXISTS` statements).
    pub fn open(what: &'static str, path: Option<&Path>, schema: &str) -> Result<Self, StoreError> {
        let name = path.map_or_else(|| ":memory:".to_string(), |p| p.display().to_string());
        let err = |e: rusqlite::Error| StoreError { what, path: name.clone(), reason: reason(e) };
        if let Some(parent) = path.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()) {
            // A fresh data dir (a labeler's first start on Kafka) is made here.
            std::fs::create_dir_all(parent).map_err(|e| StoreError {
                what,
                path: name.clone(),
                reason: format!("cannot create {}: {e}", parent.display()),
            })?;
        }
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        // Switching a new file to WAL, and creating its tables, can meet another
        // process doing the same (members starting together on one data dir): SQLite
        // answers "database is locked" at once there, without its busy handler.
        let set_up = |conn: &Connection| {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(schema)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match set_up(&conn) {
                Ok(()) => break,
                Err(e) if busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(Self { what, path: name, conn: Arc::new(Mutex::new(conn)) })
    }

    /// An error of this store.
    pub fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError { what: self.what, path: self.path.clone(), reason: reason(e) }
    }

    /// The connection (blocking: call from the blocking pool, or via [`Store::run`]).
    pub fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| self.err("poisoned by a panic"))
    }

    /// Runs `f` with a handle on this store, on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| self.err(format!("store task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_is_shared_across_handles_and_names_itself_in_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.sqlite");
        let store = Store::open("test state", Some(&path), "CREATE TABLE IF NOT EXISTS t (v INTEGER);").unwrap();
        store
            .run(|s| s.lock()?.execute("INSERT INTO t VALUES (7)", []).map(|_| ()).map_err(|e| s.err(e)))
            .await
            .unwrap();
        let again = Store::open("test state", Some(&path), "CREATE TABLE IF NOT EXISTS t (v INTEGER);").unwrap();
        let v: i64 = again.lock().unwrap().query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 7);
        let e = again.lock().unwrap().execute("INSERT INTO missing VALUES (1)", []).map_err(|e| again.err(e));
        let message = e.unwrap_err().to_string();
        assert!(message.starts_with(&format!("test state at {}: ", path.display())), "{message}");
    }

    #[test]
    fn a_store_in_a_data_dir_not_made_yet_makes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fresh/data/dir/state.sqlite");
        Store::open("test state", Some(&path), "CREATE TABLE IF NOT EXISTS t (v INTEGER);").unwrap();
        assert!(path.is_file());
    }
}

//! The embedded log: Kafka's topic/partition/offset/group model in one SQLite file
//! in the data dir, so `bucketlens index` runs with no servers.
//!
//! Durability: WAL journal with `synchronous=NORMAL`; a committed transaction survives
//! the process being killed (a power cut may lose the last few). Every call runs in
//! `spawn_blocking`, never on the async runtime's threads.
//!
//! In-process consumers are woken the moment a producer appends; consumers in another
//! process see new records on their next poll tick (every 100 ms).
//!
//! Limits (documented in the README): one member per group (it takes every partition);
//! records are kept forever (no retention or compaction yet).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::Notify;

use super::{partition_for_key, Consumer, GroupOffset, Log, LogError, LogRecord, OutRecord, Position, Watermarks};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_time ON records (topic, partition, timestamp_ms);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
";

const IDLE_TICK: Duration = Duration::from_millis(100);

/// The log in one SQLite file.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    appended: Notify,
}

fn storage(e: rusqlite::Error) -> LogError {
    if let rusqlite::Error::SqliteFailure(code, _) = &e {
        if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) {
            return LogError::Unavailable { reason: e.to_string() };
        }
    }
    LogError::Storage { reason: crate::sqlite::reason(e) }
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log file at `path`.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let open_err = |reason: String| LogError::Open { location: path.display().to_string(), reason };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| open_err(e.to_string()))?;
        // Switching to WAL (once per file: it persists) and creating the tables can
        // meet another process doing the same at that moment; SQLite answers "locked"
        // at once there, without its busy handler, so try again for a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let setup = conn
                .pragma_update(None, "journal_mode", "WAL")
                .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
                .and_then(|()| conn.execute_batch(SCHEMA));
            match setup {
                Ok(()) => break,
                Err(e) => {
                    let busy = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked));
                    if !busy || Instant::now() >= deadline {
                        return Err(open_err(e.to_string()));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(Self {
            inner: Arc::new(Inner { path: path.to_path_buf(), conn: Mutex::new(conn), appended: Notify::new() }),
        })
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the connection off the async runtime.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, LogError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .conn
                .lock()
                .map_err(|_| LogError::Storage { reason: "log connection poisoned by a panic".into() })?;
            f(&mut conn)
        })
        .await
        .map_err(|e| LogError::Storage { reason: format!("log task failed: {e}") })?
    }
}

fn partition_count(conn: &Connection, topic: &str) -> Result<u32, LogError> {
    let n: i64 =
        conn.query_row("SELECT COUNT(*) FROM partitions WHERE topic = ?1", [topic], |r| r.get(0)).map_err(storage)?;
    if n == 0 {
        return Err(LogError::UnknownTopic { topic: topic.to_string() });
    }
    Ok(n as u32)
}

fn watermarks_of(conn: &Connection, topic: &str) -> Result<Vec<Watermarks>, LogError> {
    let mut stmt = conn
        .prepare(
            "SELECT p.partition, COALESCE((SELECT MIN(offset) FROM records r WHERE r.topic = p.topic AND r.partition = p.partition), p.next_offset), p.next_offset
             FROM partitions p WHERE p.topic = ?1 ORDER BY p.partition",
        )
        .map_err(storage)?;
    let rows = stmt
        .query_map([topic], |r| Ok(Watermarks { partition: r.get(0)?, low: r.get(1)?, high: r.get(2)? }))
        .map_err(storage)?;
    let marks = rows.collect::<Result<Vec<_>, _>>().map_err(storage)?;
    if marks.is_empty() {
        return Err(LogError::UnknownTopic { topic: topic.to_string() });
    }
    Ok(marks)
}

fn offset_for(conn: &Connection, topic: &str, mark: &Watermarks, to: &Position) -> Result<i64, LogError> {
    match to {
        Position::Earliest => Ok(mark.low),
        Position::End => Ok(mark.high),
        Position::Resume(at) => Ok(Position::resumed(at, mark)),
        Position::Timestamp(ms) => {
            let found: Option<i64> = conn
                .query_row(
                    "SELECT MIN(offset) FROM records WHERE topic = ?1 AND partition = ?2 AND timestamp_ms >= ?3",
                    params![topic, mark.partition, ms],
                    |r| r.get(0),
                )
                .map_err(storage)?;
            Ok(found.unwrap_or(mark.high))
        }
    }
}

fn committed_of(conn: &Connection, group: &str, topic: &str) -> Result<Vec<GroupOffset>, LogError> {
    let marks = watermarks_of(conn, topic)?;
    let mut out = Vec::with_capacity(marks.len());
    for mark in marks {
        let committed: Option<i64> = conn
            .query_row(
                "SELECT next_offset FROM group_offsets WHERE grp = ?1 AND topic = ?2 AND partition = ?3",
                params![group, topic, mark.partition],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        out.push(GroupOffset { partition: mark.partition, committed });
    }
    Ok(out)
}

fn store_offsets(conn: &mut Connection, group: &str, topic: &str, offsets: &[(i32, i64)]) -> Result<(), LogError> {
    let tx = conn.transaction().map_err(storage)?;
    for (partition, next) in offsets {
        tx.execute(
            "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            params![group, topic, partition, next],
        )
        .map_err(storage)?;
    }
    tx.commit().map_err(storage)
}

fn encode_headers(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".into())
}

fn decode_headers(text: &str) -> Vec<(String, String)> {
    serde_json::from_str(text).unwrap_or_default()
}

#[async_trait]
impl Log for EmbeddedLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32, _compacted: bool) -> Result<(), LogError> {
        let topic = topic.to_string();
        self.with_conn(move |conn| {
            // Immediate: a read that later upgrades to a write fails at once with
            // "database is locked" when another process writes; this one waits.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
            let existing: i64 = tx
                .query_row("SELECT COUNT(*) FROM partitions WHERE topic = ?1", [&topic], |r| r.get(0))
                .map_err(storage)?;
            if existing == 0 {
                for p in 0..partitions.max(1) {
                    tx.execute(
                        "INSERT INTO partitions (topic, partition, next_offset) VALUES (?1, ?2, 0)",
                        params![topic, p],
                    )
                    .map_err(storage)?;
                }
            }
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn produce(&self, topic: &str, records: Vec<OutRecord>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let topic = topic.to_string();
        let now = crate::now_ms();
        self.with_conn(move |conn| {
            let partitions = partition_count(conn, &topic)?;
            // Immediate: the first statement reads, and a read that upgrades to a write
            // fails at once when another process wrote in between; this one waits.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(storage)?;
            {
                // Offsets are read once per partition and handed out here; one UPDATE
                // per partition at the end (one per record was half the cost).
                let mut next: Vec<Option<i64>> = vec![None; partitions as usize];
                let mut read_next = tx
                    .prepare_cached("SELECT next_offset FROM partitions WHERE topic = ?1 AND partition = ?2")
                    .map_err(storage)?;
                let mut insert = tx
                    .prepare_cached("INSERT INTO records (topic, partition, offset, key, value, headers, timestamp_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                    .map_err(storage)?;
                for record in &records {
                    let partition = partition_for_key(&record.key, partitions);
                    let slot = &mut next[partition as usize];
                    let offset = match *slot {
                        Some(offset) => offset,
                        None => read_next.query_row(params![topic, partition], |r| r.get(0)).map_err(storage)?,
                    };
                    *slot = Some(offset + 1);
                    insert
                        .execute(params![topic, partition, offset, record.key, record.value, encode_headers(&record.headers), now])
                        .map_err(storage)?;
                }
                let mut update = tx
                    .prepare_cached("UPDATE partitions SET next_offset = ?3 WHERE topic = ?1 AND partition = ?2")
                    .map_err(storage)?;
                for (partition, offset) in next.iter().enumerate() {
                    if let Some(offset) = offset {
                        update.execute(params![topic, partition as u32, offset]).map_err(storage)?;
                    }
                }
            }
            tx.commit().map_err(storage)
        })
        .await?;
        self.inner.appended.notify_waiters();
        Ok(())
    }

    async fn subscribe(&self, group: &str, topic: &str) -> Result<Box<dyn Consumer>, LogError> {
        let (group_name, topic_name) = (group.to_string(), topic.to_string());
        let positions = self
            .with_conn(move |conn| {
                let marks = watermarks_of(conn, &topic_name)?;
                let committed = committed_of(conn, &group_name, &topic_name)?;
                Ok(marks
                    .iter()
                    .zip(committed)
                    // A committed offset below the first record (or none) starts at the first record.
                    .map(|(mark, c)| (mark.partition, c.committed.unwrap_or(mark.low).max(mark.low)))
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(Box::new(EmbeddedConsumer {
            log: self.clone(),
            group: group.to_string(),
            topic: topic.to_string(),
            positions,
            next_partition: 0,
        }))
    }

    async fn watermarks(&self, topic: &str) -> Result<Vec<Watermarks>, LogError> {
        let topic = topic.to_string();
        self.with_conn(move |conn| watermarks_of(conn, &topic)).await
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<GroupOffset>, LogError> {
        let (group, topic) = (group.to_string(), topic.to_string());
        self.with_conn(move |conn| committed_of(conn, &group, &topic)).await
    }

    async fn reset_group(&self, group: &str, topic: &str, to: Position) -> Result<Vec<GroupOffset>, LogError> {
        let (group, topic) = (group.to_string(), topic.to_string());
        self.with_conn(move |conn| {
            let marks = watermarks_of(conn, &topic)?;
            let mut offsets = Vec::with_capacity(marks.len());
            for mark in &marks {
                offsets.push((mark.partition, offset_for(conn, &topic, mark, &to)?));
            }
            store_offsets(conn, &group, &topic, &offsets)?;
            Ok(offsets.into_iter().map(|(partition, o)| GroupOffset { partition, committed: Some(o) }).collect())
        })
        .await
    }
}

/// The single member of a group on the embedded log: it owns every partition.
struct EmbeddedConsumer {
    log: EmbeddedLog,
    group: String,
    topic: String,
    /// Next offset to read, per partition.
    positions: Vec<(i32, i64)>,
    /// Round-robin start, so one busy partition does not starve the others.
    next_partition: usize,
}

impl EmbeddedConsumer {
    async fn read(&mut self, max: usize) -> Result<Vec<LogRecord>, LogError> {
        let topic = self.topic.clone();
        let mut order = self.positions.clone();
        let start = self.next_partition % order.len().max(1);
        order.rotate_left(start);
        self.next_partition = self.next_partition.wrapping_add(1);
        let records = self
            .log
            .with_conn(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT offset, key, value, headers, timestamp_ms FROM records
                         WHERE topic = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
                    )
                    .map_err(storage)?;
                let mut out = Vec::new();
                for (partition, from) in order {
                    let room = max - out.len();
                    if room == 0 {
                        break;
                    }
                    let rows = stmt
                        .query_map(params![topic, partition, from, room as i64], |r| {
                            Ok(LogRecord {
                                topic: topic.clone(),
                                partition,
                                offset: r.get(0)?,
                                key: r.get(1)?,
                                value: r.get(2)?,
                                headers: decode_headers(&r.get::<_, String>(3)?),
                                timestamp_ms: r.get(4)?,
                            })
                        })
                        .map_err(storage)?;
                    for row in rows {
                        out.push(row.map_err(storage)?);
                    }
                }
                Ok(out)
            })
            .await?;
        for record in &records {
            if let Some(pos) = self.positions.iter_mut().find(|(p, _)| *p == record.partition) {
                pos.1 = pos.1.max(record.offset + 1);
            }
        }
        Ok(records)
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogRecord>, LogError> {
        let deadline = Instant::now() + wait;
        loop {
            // Register interest before reading, so an append between the read and the
            // wait still wakes us.
            let inner = Arc::clone(&self.log.inner);
            let appended = inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let records = self.read(max.max(1)).await?;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(records);
            }
            let tick = (deadline - now).min(IDLE_TICK);
            let _ = tokio::time::timeout(tick, appended).await;
        }
    }

    async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<(), LogError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let (group, topic, offsets) = (self.group.clone(), self.topic.clone(), offsets.to_vec());
        self.log.with_conn(move |conn| store_offsets(conn, &group, &topic, &offsets)).await
    }
}

#[cfg(test)]
mod tests;

//! The log seam: keyed records on partitioned topics, read by named consumer groups
//! with committed offsets — Kafka's model, so the stages run unchanged on Kafka.
//!
//! Semantics every implementation keeps:
//! - a record's partition is chosen from its key with Kafka's default partitioner, so
//!   all records of one object stay in order on one partition;
//! - `produce` returns only once the records are durable (acknowledged);
//! - a group's committed offset is the *next* offset to read; a consumer never commits
//!   by itself — stages commit the contiguous finished prefix ([`OffsetTracker`]).

mod dead_letter;
mod embedded;
mod kafka;
pub mod msk_iam;
mod offsets;
mod output;
mod partitioner;
pub mod registry;
mod until;

use std::time::Duration;

use async_trait::async_trait;

pub use dead_letter::dead_letter;
pub use embedded::EmbeddedLog;
pub use kafka::{KafkaConfig, KafkaLog};
pub use offsets::OffsetTracker;
pub use output::Output;
pub use partitioner::partition_for_key;
pub use until::Until;

/// A record to append to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl OutRecord {
    pub fn new(key: impl Into<String>, value: Vec<u8>) -> Self {
        Self { key: key.into(), value, headers: Vec::new() }
    }
}

/// A record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// Milliseconds since the Unix epoch, set when the record was appended.
    pub timestamp_ms: i64,
}

impl LogRecord {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Where to (re)position a group or a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The oldest record still on the log.
    Earliest,
    /// The first record appended at or after this time (ms since the epoch).
    Timestamp(i64),
    /// After the last record: only new records are read.
    End,
    /// Where a reader kept elsewhere left off: `(partition, next offset)`. A partition
    /// not named, or named with an offset past its end (the topic was made again),
    /// starts at its oldest record; one below the oldest (compacted or expired since)
    /// starts there too.
    Resume(Vec<(i32, i64)>),
}

impl Position {
    /// Where `mark`'s partition starts when resumed at `at`: its offset there when
    /// the partition holds it (its end included), else the oldest record.
    pub fn resumed(at: &[(i32, i64)], mark: &Watermarks) -> i64 {
        match at.iter().find(|(p, _)| *p == mark.partition) {
            Some(&(_, next)) if (mark.low..=mark.high).contains(&next) => next,
            _ => mark.low,
        }
    }
}

/// Offsets of one partition: `low` is the first readable offset, `high` the next
/// offset to be written (Kafka's high watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

impl Watermarks {
    /// Records of this partition a group has not committed yet, given its offsets
    /// (a group that never committed starts at the first readable offset).
    pub fn lag(&self, committed: &[GroupOffset]) -> i64 {
        let at = committed.iter().find(|c| c.partition == self.partition).and_then(|c| c.committed);
        (self.high - at.unwrap_or(self.low).max(self.low)).max(0)
    }
}

/// A group's position on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOffset {
    pub partition: i32,
    /// The next offset the group will read; `None` if it never committed.
    pub committed: Option<i64>,
}

/// Log failures. `Unavailable` is worth retrying; the others are not.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the log at {location} cannot be opened: {reason}; check the path and its permissions")]
    Open { location: String, reason: String },
    #[error("the log is unavailable ({reason}); retrying may help")]
    Unavailable { reason: String },
    #[error("topic {topic} does not exist; create it first (bucketlens creates its topics at start-up)")]
    UnknownTopic { topic: String },
    #[error("log storage failed: {reason}")]
    Storage { reason: String },
    /// A topic bucketlens may not create (MSK with IAM): someone must, once.
    #[error(
        "topic {topic} does not exist, and bucketlens cannot create topics with MSK IAM (rdkafka's admin \
         client cannot sign in with IAM tokens); create it once, e.g. {create}"
    )]
    MissingTopic { topic: String, create: String },
    /// A request this broker does not serve (tansu does not describe groups it has seen).
    #[error("{reason}")]
    Unsupported { reason: String },
}

impl LogError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A topic log: Kafka, or the embedded one.
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Creates `topic` with `partitions` partitions unless it exists. A `compacted`
    /// topic keeps at least the last record of every key (the state topics).
    async fn ensure_topic(&self, topic: &str, partitions: u32, compacted: bool) -> Result<(), LogError>;

    /// Appends `records`, each to the partition of its key; returns once durable.
    async fn produce(&self, topic: &str, records: Vec<OutRecord>) -> Result<(), LogError>;

    /// Joins `group` on `topic`, starting from the group's committed offsets (or the
    /// earliest offset where it has none).
    async fn subscribe(&self, group: &str, topic: &str) -> Result<Box<dyn Consumer>, LogError>;

    /// First and next offsets of every partition of `topic`.
    async fn watermarks(&self, topic: &str) -> Result<Vec<Watermarks>, LogError>;

    /// `group`'s committed offsets on every partition of `topic`.
    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<GroupOffset>, LogError>;

    /// Moves `group`'s committed offsets on `topic` to `to` (for replays). The group
    /// must have no running member. Returns the new offsets.
    async fn reset_group(&self, group: &str, topic: &str, to: Position) -> Result<Vec<GroupOffset>, LogError>;

    /// [`Self::reset_group`] without looking for running members first (an operator
    /// who knows better: `replay --ignore-members`). Members that run on may commit
    /// their own positions over the move.
    async fn reset_group_anyway(&self, group: &str, topic: &str, to: Position) -> Result<Vec<GroupOffset>, LogError> {
        self.reset_group(group, topic, to).await
    }

    /// The members of `group` the broker knows, with the partitions each holds;
    /// `None` where the log has no members of its own (the embedded log runs its
    /// stages in the process that opened it).
    async fn members(&self, _group: &str) -> Result<Option<Vec<Member>>, LogError> {
        Ok(None)
    }
}

/// A member of a consumer group, as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the broker gave it.
    pub id: String,
    /// Its client id: bucketlens sets `bucketlens-<pid>-since-<start, UTC>`.
    pub client_id: String,
    /// The address the broker sees it connect from.
    pub host: String,
    /// `(topic, partitions)` assigned to it.
    pub partitions: Vec<(String, Vec<i32>)>,
}

impl Member {
    /// Decodes a consumer-protocol assignment (Kafka's `ConsumerProtocolAssignment`:
    /// version, then per topic its name and partitions, then user data).
    pub fn assignment(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
        struct Reader<'a>(&'a [u8]);
        impl<'a> Reader<'a> {
            fn take(&mut self, n: usize) -> Option<&'a [u8]> {
                let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
                self.0 = rest;
                Some(head)
            }
            fn int(&mut self, n: usize) -> Option<i64> {
                self.take(n).map(|b| b.iter().fold(0i64, |acc, &x| (acc << 8) | i64::from(x)))
            }
        }
        let mut r = Reader(bytes);
        r.take(2)?; // the version
        let mut out = Vec::new();
        for _ in 0..r.int(4)?.clamp(0, 10_000) {
            let len = usize::try_from(r.int(2)?).ok()?;
            let name = String::from_utf8_lossy(r.take(len)?).into_owned();
            let count = r.int(4)?.clamp(0, 1 << 20);
            let partitions = (0..count).map(|_| r.int(4).map(|p| p as i32)).collect::<Option<Vec<_>>>()?;
            out.push((name, partitions));
        }
        Some(out)
    }
}

/// One member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// Returns the next records (at most `max`), waiting up to `wait` for the first.
    /// An empty result means nothing arrived in time.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogRecord>, LogError>;

    /// Partitions taken from this member by a rebalance, as soon as it comes: records
    /// of them that `poll` has not handed out yet are dropped (their next owner reads
    /// them from the committed offsets). The stage stops taking work from them,
    /// finishes (or gives up) what is in flight, commits, forgets them, then drops the
    /// revocation to let the rebalance go on. `poll` returns nothing meanwhile.
    fn take_revocation(&mut self) -> Option<Revocation> {
        None
    }

    /// Commits `(partition, next offset)` pairs for this group. A retryable error
    /// leaves them pending: the next call commits them with its own.
    async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<(), LogError>;
}

/// Commits `offsets`; a retryable failure (the cluster is unreachable) is logged and
/// left to the next commit, since the records are safe either way: uncommitted ones
/// are redone. Other failures are returned.
pub async fn commit_or_defer(consumer: &mut dyn Consumer, offsets: &[(i32, i64)]) -> Result<(), LogError> {
    match consumer.commit(offsets).await {
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "commit deferred");
            Ok(())
        }
        other => other,
    }
}

/// Partitions a rebalance takes away; dropping it lets the rebalance proceed.
#[derive(Debug)]
pub struct Revocation {
    partitions: Vec<i32>,
    _release: std::sync::mpsc::SyncSender<()>,
}

impl Revocation {
    pub fn new(partitions: Vec<i32>, release: std::sync::mpsc::SyncSender<()>) -> Self {
        Self { partitions, _release: release }
    }

    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }
}

#[cfg(test)]
mod tests {
    use super::Member;

    #[test]
    fn a_consumer_protocol_assignment_decodes_to_topics_and_partitions() {
        // Version 1, two topics ("a.t" with partitions 0 and 3, "b" with none), null user data.
        let mut bytes = vec![0, 1, 0, 0, 0, 2];
        bytes.extend([0, 3]);
        bytes.extend(b"a.t");
        bytes.extend([0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
        bytes.extend([0, 1, b'b', 0, 0, 0, 0]);
        bytes.extend([0xFF, 0xFF, 0xFF, 0xFF]);
        let expected = vec![("a.t".to_string(), vec![0, 3]), ("b".to_string(), vec![])];
        assert_eq!(Member::assignment(&bytes), Some(expected));
        // Cut anywhere inside the topics, it is refused rather than misread.
        for cut in 3..bytes.len() - 4 {
            assert_eq!(Member::assignment(&bytes[..cut]), None, "cut at {cut}");
        }
        // A member that has not been given partitions yet sends no assignment at all.
        assert_eq!(Member::assignment(&[]), None);
    }
}

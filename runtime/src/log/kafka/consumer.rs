//! A consumer-group member on Kafka. One thread per consumer polls librdkafka
//! (which also runs the rebalance callbacks) and hands records to the stage through
//! a bounded channel; on a revoke it hands over a [`Revocation`] on a channel of its
//! own and waits, up to `drain-timeout`, while the stage finishes and commits.
//!
//! The revocation overtakes the records: those of the revoked partitions still
//! waiting in the channel (up to its 1,024, fetched before the revoke) are dropped
//! unstarted for the partitions' next owner, so the stage drains only what it has in
//! flight. (Queued behind them, a revocation waited while a labeler labeled them all,
//! past the drain timeout, and the next owner labeled some of them again.)

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::super::registry::SchemaRegistry;
use super::super::{Consumer, LogError, LogRecord, Revocation};
use super::auth::Auth;
use super::config::{client_config, KafkaConfig};
use super::errors::{blocking, kafka_error, unavailable};

/// Joins `group` on the (prefixed) topic `full`: a consumer whose own thread polls
/// librdkafka and hands records and revocations to the stage.
pub(super) fn subscribe(
    config: &KafkaConfig,
    auth: &Auth,
    registry: Option<Arc<SchemaRegistry>>,
    group: &str,
    full: String,
) -> Result<Box<dyn Consumer>, LogError> {
    let (tx, rx) = mpsc::channel(1024);
    // One revocation at a time: the callback waits for it to be released.
    let (revoke_tx, revoke_rx) = mpsc::channel(1);
    let context = GroupContext {
        auth: auth.clone(),
        events: tx,
        revocations: revoke_tx,
        drain_timeout: config.drain_timeout,
        group: group.to_string(),
    };
    let properties = client_config(
        config,
        &[
            ("group.id", group),
            ("client.id", client_id()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    let consumer: BaseConsumer<GroupContext> =
        properties.create_with_context(context).map_err(|e| kafka_error("creating a consumer", &e))?;
    consumer.subscribe(&[&full]).map_err(|e| kafka_error(&format!("subscribing to {full}"), &e))?;
    let consumer = Arc::new(consumer);
    let prefix = config.topic_prefix.clone();
    let thread = {
        let consumer = Arc::clone(&consumer);
        let watch = StallWatch::new(full.clone(), config.request_timeout);
        std::thread::Builder::new()
            .name(format!("kafka-{group}"))
            .spawn(move || poll_loop(&consumer, &prefix, registry.as_deref(), watch))
            .map_err(|e| LogError::Storage { reason: format!("cannot start the consumer thread: {e}") })?
    };
    Ok(Box::new(KafkaConsumer {
        consumer,
        topic: full,
        events: rx,
        revocations: revoke_rx,
        buffered: VecDeque::new(),
        revocation: None,
        uncommitted: false,
        thread: Some(thread),
    }))
}

/// Runs on the consumer's polling thread: turns rebalances into [`Revocation`]s.
struct GroupContext {
    auth: Auth,
    events: mpsc::Sender<LogRecord>,
    revocations: mpsc::Sender<Revocation>,
    drain_timeout: Duration,
    /// Named in the rebalance lines: a labeler is a member of two groups (its own and
    /// its ledger follower's).
    group: String,
}

impl ClientContext for GroupContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = Auth::ENABLE_REFRESH_OAUTH_TOKEN;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.auth.generate_oauth_token(config)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.auth.error(error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.auth.log(level, fac, message);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            if let Rebalance::Assign(tpl) = rebalance {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(group = %self.group, ?partitions, "partitions assigned");
            }
            return;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        if partitions.is_empty() {
            return;
        }
        let (ack, released) = sync_channel(1);
        let revocation = Revocation::new(partitions.clone(), ack);
        // The stage is gone (shutting down): nothing to drain.
        if !send_waiting(&self.revocations, revocation) {
            return;
        }
        match released.recv_timeout(self.drain_timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                info!(group = %self.group, ?partitions, "partitions revoked after draining");
            }
            Err(RecvTimeoutError::Timeout) => {
                warn!(group = %self.group, ?partitions, timeout = ?self.drain_timeout, "revoked partitions not drained in time; their unfinished records will be redone by the next owner");
            }
        }
    }
}

/// Sends, waiting while the channel is full; `false` once the stage is gone. (Not
/// `blocking_send`: the callback also runs when the consumer is closed, which may
/// happen on an async thread.)
fn send_waiting<T>(events: &mpsc::Sender<T>, mut event: T) -> bool {
    loop {
        match events.try_send(event) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                event = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The client id a group member shows the broker (`status` prints it as the owner
/// of its partitions): `bucketlens-<pid>-since-<when this process started, UTC>`.
fn client_id() -> &'static str {
    static ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        format!("bucketlens-{}-since-{since}", std::process::id())
    });
    &ID
}

/// A payload as the codecs read it: Confluent framing turned into single-object
/// framing when a registry is configured. When the registry cannot name the schema,
/// the payload stays as it is and decoding it fails with a clear error (DLQ).
fn readable(payload: &[u8], registry: Option<&SchemaRegistry>) -> Vec<u8> {
    match registry.and_then(|r| r.to_single_object(payload)) {
        Some(Ok(single)) => single,
        Some(Err(e)) => {
            warn!(error = %e, "a Confluent-framed record names a schema the registry cannot give");
            payload.to_vec()
        }
        None => payload.to_vec(),
    }
}

/// Notices partitions of its group that nobody consumes, and rejoins.
///
/// A broker that never ends a killed member's session (tansu 0.6.0) keeps the
/// killed member's partitions assigned to it: a survivor keeps its own and the
/// killed member's lag grows; a replacement that joins is given nothing while the
/// rebalance waits on the dead member. A join completes such a rebalance, so a
/// member that sees, for [`STALL`] and again at the next check, partitions it does
/// not hold with lag and no commit leaves and joins again. A healthy group (making
/// progress, or with nothing to do) is never disturbed, even if this member has no
/// partition of it (more members than partitions).
struct StallWatch {
    topic: String,
    timeout: Duration,
    checked: Instant,
    /// The committed offsets of the partitions this member did not hold and that had
    /// lag, at the last check.
    seen: Option<Vec<(i32, i64)>>,
}

/// How long a stuck group is watched before a member with no partition rejoins.
const STALL: Duration = Duration::from_secs(45);

impl StallWatch {
    fn new(topic: String, timeout: Duration) -> Self {
        Self { topic, timeout, checked: Instant::now(), seen: None }
    }

    fn check(&mut self, consumer: &BaseConsumer<GroupContext>) {
        if self.checked.elapsed() < STALL {
            return;
        }
        self.checked = Instant::now();
        let Ok(held) = consumer.assignment() else { return };
        let held: Vec<i32> =
            held.elements().iter().map(rdkafka::topic_partition_list::TopicPartitionListElem::partition).collect();
        let Some(positions) = self.position(consumer) else { return };
        // Partitions of others (or of no one) that are behind: who holds them must commit.
        let waiting: Vec<(i32, i64)> =
            positions.iter().filter(|(p, _, lag)| *lag > 0 && !held.contains(p)).map(|&(p, at, _)| (p, at)).collect();
        if waiting.is_empty() {
            self.seen = None;
            return;
        }
        if self.seen.as_ref() == Some(&waiting) {
            let lag: i64 = positions.iter().filter(|(p, _, _)| !held.contains(p)).map(|(_, _, lag)| lag).sum();
            let stuck: Vec<i32> = waiting.iter().map(|(p, _)| *p).collect();
            warn!(group = %consumer.context().group, topic = %self.topic, lag, partitions = ?stuck, waited = ?STALL,
                "partitions of the group made no progress and this member does not hold them: rejoining the group");
            consumer.unsubscribe();
            if let Err(e) = consumer.subscribe(&[&self.topic]) {
                warn!(error = %e, "rejoining the group failed; librdkafka retries");
            }
            self.seen = None;
        } else {
            self.seen = Some(waiting);
        }
    }

    /// Each partition's committed offset and lag.
    fn position(&self, consumer: &BaseConsumer<GroupContext>) -> Option<Vec<(i32, i64, i64)>> {
        let metadata = consumer.fetch_metadata(Some(&self.topic), self.timeout).ok()?;
        let partitions: Vec<i32> = metadata.topics().first()?.partitions().iter().map(|p| p.id()).collect();
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            tpl.add_partition(&self.topic, p);
        }
        let committed = consumer.committed_offsets(tpl, self.timeout).ok()?;
        let mut positions = Vec::new();
        for &p in &partitions {
            let (low, high) = consumer.fetch_watermarks(&self.topic, p, self.timeout).ok()?;
            let at = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => low,
            };
            positions.push((p, at, (high - at).max(0)));
        }
        Some(positions)
    }
}

fn poll_loop(
    consumer: &BaseConsumer<GroupContext>,
    prefix: &str,
    registry: Option<&SchemaRegistry>,
    mut watch: StallWatch,
) {
    let events = consumer.context().events.clone();
    // Runs until the stage closes the channel (drops its consumer).
    while !events.is_closed() {
        watch.check(consumer);
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                let record = LogRecord {
                    topic: message.topic().strip_prefix(prefix).unwrap_or(message.topic()).to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    value: readable(message.payload().unwrap_or_default(), registry),
                    headers: message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
                };
                if !send_waiting(&events, record) {
                    break;
                }
            }
            // Transport errors are reported here and retried by librdkafka.
            Some(Err(e)) => warn!(error = %e, "kafka consumer"),
        }
    }
}

/// One group member on Kafka.
struct KafkaConsumer {
    consumer: Arc<BaseConsumer<GroupContext>>,
    topic: String,
    events: mpsc::Receiver<LogRecord>,
    revocations: mpsc::Receiver<Revocation>,
    /// Records taken from the channel when a revocation came, of partitions kept.
    buffered: VecDeque<LogRecord>,
    revocation: Option<Revocation>,
    /// Offsets are stored but their last commit failed: commit again next time.
    uncommitted: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogRecord>, LogError> {
        if self.revocation.is_some() || self.revoked() {
            return Ok(Vec::new());
        }
        let first = match self.buffered.pop_front() {
            Some(record) => record,
            None => tokio::select! {
                biased;
                Some(revocation) = self.revocations.recv() => {
                    self.revoke(revocation);
                    return Ok(Vec::new());
                }
                got = tokio::time::timeout(wait, self.events.recv()) => match got {
                    Ok(Some(record)) => record,
                    Ok(None) => return Err(unavailable("the kafka consumer thread stopped")),
                    Err(_) => return Ok(Vec::new()),
                },
            },
        };
        let mut out = vec![first];
        while out.len() < max {
            match self.buffered.pop_front().map_or_else(|| self.events.try_recv().ok(), Some) {
                Some(record) => out.push(record),
                None => break,
            }
        }
        Ok(out)
    }

    fn take_revocation(&mut self) -> Option<Revocation> {
        if self.revocation.is_none() {
            self.revoked();
        }
        self.revocation.take()
    }

    async fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<(), LogError> {
        if offsets.is_empty() && !self.uncommitted {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in offsets {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(o)).map_err(|e| kafka_error("commit", &e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        let result = blocking(move || {
            if tpl.count() > 0 {
                // Fails only for partitions no longer assigned: their new owner redoes them.
                if let Err(e) = consumer.store_offsets(&tpl) {
                    warn!(error = %e, "offsets of partitions no longer assigned were not stored");
                }
            }
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(Code::NoOffset)) => Ok(()),
                // Not allowed: an operator must fix the ACLs or the group id.
                Err(e @ KafkaError::ConsumerCommit(Code::GroupAuthorizationFailed | Code::InvalidGroupId)) => {
                    Err(LogError::Storage { reason: format!("committing offsets: {e}") })
                }
                // Anything else (coordinator moving or unreachable, a rebalance) is
                // safe to defer: the stored offsets go with the next commit, and
                // records not committed are redone, never lost.
                Err(e) => Err(unavailable(format!("committing offsets: {e}"))),
            }
        })
        .await;
        self.uncommitted = result.is_err();
        result
    }
}

impl KafkaConsumer {
    /// Whether a revocation has come (and is now held).
    fn revoked(&mut self) -> bool {
        match self.revocations.try_recv() {
            Ok(revocation) => {
                self.revoke(revocation);
                true
            }
            Err(_) => false,
        }
    }

    /// Holds `revocation` for the stage, and drops the records of its partitions that
    /// wait unstarted: the polling thread is held in the callback, so every record
    /// fetched before the revoke is in the channel already; the partitions' next
    /// owner reads them from the committed offsets.
    fn revoke(&mut self, revocation: Revocation) {
        while let Ok(record) = self.events.try_recv() {
            self.buffered.push_back(record);
        }
        let gone = revocation.partitions();
        self.buffered.retain(|record| !gone.contains(&record.partition));
        self.revocation = Some(revocation);
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.events.close();
        self.revocations.close();
        // A revocation the stage never took (it stopped first, its offsets committed)
        // is released here: the polling thread waits in the callback until it is.
        self.revocation = None;
        while self.revocations.try_recv().is_ok() {}
        // The thread stops within one poll interval; dropping the last reference
        // then closes the consumer, which leaves the group at once.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

//! The log on Kafka (Apache Kafka, MSK, Redpanda…) through rdkafka.
//!
//! - Producer: idempotent, `acks=all`, Java-compatible key hashing (`murmur2_random`),
//!   so a key lands on the same partition as with the embedded log or a Java client.
//!   `produce` returns once every record's delivery report says it is written.
//! - Consumers: no auto-commit and no automatic offset store; stages commit the
//!   contiguous finished prefix. One thread per consumer polls librdkafka (which
//!   also runs the rebalance callbacks) and hands records to the stage through a
//!   bounded channel. On a revoke, the thread hands the stage a [`Revocation`] and
//!   waits, up to `drain-timeout`, while the stage stops taking work from those
//!   partitions, finishes what is in flight and commits; then the rebalance goes on.
//! - Every librdkafka property in `properties` is passed through (security.protocol,
//!   sasl.*, ssl.*, …), so TLS and SASL brokers need no code change. MSK's IAM
//!   access control, which librdkafka cannot do alone, is `msk-iam = true`: every
//!   client then signs its SASL/OAUTHBEARER tokens with AWS credentials
//!   ([`super::msk_iam`]).
//! - Topic names carry an optional prefix; stages see the unprefixed names.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::OAuthToken;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::msk_iam::MskIam;
use super::registry::{fingerprint, to_confluent, SchemaRegistry};
use super::{Consumer, GroupOffset, Log, LogError, LogRecord, OutRecord, Position, Revocation, Watermarks};

/// How bucketlens reaches Kafka (`[log.kafka]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct KafkaConfig {
    /// `host:port,host:port` (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    /// Prepended to every topic name: `prod.` gives `prod.objects.changed.v1`.
    pub topic_prefix: String,
    /// Replication factor of the topics bucketlens creates (3 on a production cluster).
    pub replication_factor: i32,
    /// How long a revoked member may spend finishing its in-flight work before the
    /// rebalance goes on without it (the new owner then redoes that work).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Timeout of admin and metadata requests.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Any librdkafka property, passed through as it is: `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, `client.id`, …
    pub properties: BTreeMap<String, String>,
    /// A Confluent-compatible schema registry: the state topics are then written in
    /// Confluent's wire format with registered schemas (empty: Avro single-object
    /// encoding, no registry).
    pub schema_registry_url: String,
    /// Basic authentication for the registry (Confluent Cloud: API key and secret).
    pub schema_registry_username: String,
    pub schema_registry_password: String,
    /// Amazon MSK with IAM access control (port 9098): SASL/OAUTHBEARER tokens signed
    /// with the default AWS credential chain. Implies `security.protocol=SASL_SSL`
    /// and `sasl.mechanism=OAUTHBEARER` unless `properties` say otherwise.
    pub msk_iam: bool,
    /// The cluster's region for MSK IAM (empty: read from the brokers' names, else
    /// `AWS_REGION` or the profile).
    pub msk_iam_region: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            topic_prefix: String::new(),
            replication_factor: 1,
            drain_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            properties: BTreeMap::new(),
            schema_registry_url: String::new(),
            schema_registry_username: String::new(),
            schema_registry_password: String::new(),
            msk_iam: false,
            msk_iam_region: String::new(),
        }
    }
}

/// The log on a Kafka cluster.
pub struct KafkaLog {
    config: KafkaConfig,
    producer: FutureProducer<Auth>,
    /// None with MSK IAM: rdkafka's admin client cannot authenticate with tokens.
    admin: Option<AdminClient<Auth>>,
    /// A group-less consumer for metadata and watermarks.
    meta: Arc<BaseConsumer<Auth>>,
    auth: Auth,
    /// Serves `meta`'s token refreshes (MSK IAM) until the log is dropped.
    _pump: Option<TokenPump>,
    registry: Option<Arc<SchemaRegistry>>,
    /// Topic (without prefix) → its registered schema id and that schema's fingerprint.
    framed: std::sync::RwLock<HashMap<String, (u32, [u8; 8])>>,
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable { reason: e.to_string() }
}

/// Sorts a client error into retryable (the cluster is unreachable or busy) or not.
fn kafka_error(what: &str, e: &KafkaError) -> LogError {
    let code = e.rdkafka_error_code();
    let retryable = matches!(
        code,
        None | Some(
            Code::MessageTimedOut
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::NetworkException
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::CoordinatorNotAvailable
                | Code::NotCoordinator
                | Code::CoordinatorLoadInProgress
                | Code::RebalanceInProgress
                // The group moved on (a rebalance, an expired session): uncommitted
                // records are redone by their next owner.
                | Code::AssignmentLost
                | Code::UnknownMemberId
                | Code::IllegalGeneration
                | Code::NotEnoughReplicas
                | Code::NotEnoughReplicasAfterAppend
                | Code::QueueFull
                | Code::UnknownTopicOrPartition
        )
    );
    let reason = format!("{what}: {e}");
    match code {
        Some(Code::UnknownTopic | Code::UnknownTopicOrPartition) if what.starts_with("topic") => {
            LogError::UnknownTopic { topic: what.trim_start_matches("topic ").to_string() }
        }
        _ if retryable => LogError::Unavailable { reason },
        _ => LogError::Storage { reason },
    }
}

impl KafkaLog {
    /// Connects the producer and the admin client (librdkafka connects lazily, so
    /// an unreachable cluster shows up on the first call, not here). With MSK IAM,
    /// the AWS credentials are loaded first: none is an error here.
    pub async fn connect(config: KafkaConfig) -> Result<Self, LogError> {
        let auth = if config.msk_iam {
            let region = Some(config.msk_iam_region.as_str()).filter(|r| !r.is_empty());
            Auth { msk: Some(MskIam::load(region, &config.brokers).await?), ..Auth::default() }
        } else {
            Auth::default()
        };
        let open = |e: KafkaError| LogError::Open { location: config.brokers.clone(), reason: e.to_string() };
        let producer: FutureProducer<Auth> = client_config(
            &config,
            &[("enable.idempotence", "true"), ("acks", "all"), ("partitioner", "murmur2_random"), ("linger.ms", "5")],
        )
        .create_with_context(auth.clone())
        .map_err(open)?;
        let admin = match auth.msk {
            None => Some(client_config(&config, &[]).create_with_context(auth.clone()).map_err(open)?),
            Some(_) => None,
        };
        let meta: BaseConsumer<Auth> = client_config(&config, &[("group.id", "bucketlens-metadata")])
            .create_with_context(auth.clone())
            .map_err(open)?;
        let meta = Arc::new(meta);
        let pump = match auth.msk {
            Some(_) => Some(TokenPump::start(Arc::clone(&meta))?),
            None => None,
        };
        let registry = match config.schema_registry_url.as_str() {
            "" => None,
            url => Some(Arc::new(SchemaRegistry::new(
                url,
                &config.schema_registry_username,
                &config.schema_registry_password,
                config.request_timeout,
            )?)),
        };
        Ok(Self { config, producer, admin, meta, auth, _pump: pump, registry, framed: Default::default() })
    }

    /// With a schema registry: registers `schema` (the .avsc text) for `topic` under
    /// the subject `<topic>-value` and writes the topic in Confluent's framing from
    /// now on. Without one: nothing.
    pub async fn register_schema(&self, topic: &str, schema: &str) -> Result<(), LogError> {
        let Some(registry) = &self.registry else { return Ok(()) };
        let parsed = apache_avro::Schema::parse_str(schema)
            .map_err(|e| LogError::Storage { reason: format!("the schema of {topic} does not parse: {e}") })?;
        let subject = format!("{}-value", self.topic(topic));
        let id = registry.register(&subject, schema).await?;
        info!(%subject, id, "schema registered");
        if let Ok(mut framed) = self.framed.write() {
            framed.insert(topic.to_string(), (id, fingerprint(&parsed)));
        }
        Ok(())
    }

    fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.config.topic_prefix)
    }

    /// A consumer for `group` that does not join it: reads and commits its offsets.
    fn group_client(&self, group: &str) -> Result<BaseConsumer<Auth>, LogError> {
        let client: BaseConsumer<Auth> =
            client_config(&self.config, &[("group.id", group), ("enable.auto.commit", "false")])
                .create_with_context(self.auth.clone())
                .map_err(|e| kafka_error("creating a group client", &e))?;
        if self.auth.msk.is_some() {
            // The first token is asked for when the client is made: give it now.
            let _ = client.poll(Duration::ZERO);
        }
        Ok(client)
    }

    async fn partitions(&self, topic: &str) -> Result<Vec<i32>, LogError> {
        let meta = Arc::clone(&self.meta);
        let full = self.topic(topic);
        let timeout = self.config.request_timeout;
        let what = format!("topic {full}");
        let auth = self.auth.clone();
        blocking(move || {
            let metadata =
                meta.fetch_metadata(Some(&full), timeout).map_err(|e| auth.explain(kafka_error(&what, &e)))?;
            let found = metadata.topics().iter().find(|t| t.name() == full);
            match found {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    Ok(t.partitions().iter().map(|p| p.id()).collect())
                }
                _ => Err(LogError::UnknownTopic { topic: full }),
            }
        })
        .await
    }

    /// With MSK IAM, topics are not created (rdkafka's admin client cannot
    /// authenticate with OAUTHBEARER tokens): a missing one is an error that says
    /// how to create it.
    async fn check_topic(&self, topic: &str, partitions: u32, compacted: bool) -> Result<(), LogError> {
        match self.partitions(topic).await {
            Ok(found) => {
                debug!(topic = %self.topic(topic), partitions = found.len(), "topic exists");
                Ok(())
            }
            Err(LogError::UnknownTopic { topic: full }) => Err(LogError::Storage {
                reason: format!(
                    "topic {full} does not exist, and bucketlens cannot create topics with MSK IAM \
                     (rdkafka's admin client cannot sign in with IAM tokens); create it once, e.g. \
                     kafka-topics.sh --bootstrap-server {} --command-config iam.properties --create \
                     --topic {full} --partitions {partitions} --replication-factor {}{}",
                    self.config.brokers,
                    self.config.replication_factor,
                    if compacted { " --config cleanup.policy=compact" } else { "" },
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

/// A client's settings: the brokers, bucketlens' `defaults` for this client (and
/// MSK IAM's), then the user's properties, which win.
fn client_config(config: &KafkaConfig, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    // OpenSSL is built into the binary, so its own CA path may not exist here:
    // librdkafka then looks for the system's CA bundle (TLS brokers, MSK).
    c.set("ssl.ca.location", "probe");
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    if config.msk_iam {
        c.set("security.protocol", "SASL_SSL");
        c.set("sasl.mechanism", "OAUTHBEARER");
    }
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

/// Every client's context: gives librdkafka MSK IAM tokens when it asks for one.
///
/// Token refreshes are always routed here: librdkafka asks the application only
/// for `sasl.mechanism=OAUTHBEARER` without `sasl.oauthbearer.method=oidc` (its
/// OIDC refresh runs inside librdkafka and never reaches this context).
#[derive(Clone, Default)]
struct Auth {
    msk: Option<Arc<MskIam>>,
    /// The last time a broker refused to sign a client in, and why.
    refused: Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

/// How long a refused sign-in explains the errors that follow it.
const REFUSAL_EXPLAINS: Duration = Duration::from_secs(120);

impl Auth {
    /// `error`, with the reason the brokers refused to sign in when they just did
    /// (librdkafka reports the refusal on its own, and the call then only times out
    /// or finds no broker).
    fn explain(&self, error: LogError) -> LogError {
        let refused = self.refused.lock().ok().and_then(|r| r.clone());
        match (error, refused) {
            (LogError::Unavailable { reason }, Some((at, why))) if at.elapsed() < REFUSAL_EXPLAINS => {
                LogError::Unavailable { reason: format!("{reason}; the brokers refused to sign bucketlens in: {why}") }
            }
            (error, _) => error,
        }
    }
}

impl ClientContext for Auth {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// librdkafka's log, less its warning that a consumer property given to the
    /// producer (or the other way round) is ignored: one property map feeds every
    /// client, so that is expected.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let ignored = fac == "CONFWARN" && message.contains("will be ignored by this");
        match level {
            _ if ignored => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}");
            }
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {error}: {reason}");
        if error.rdkafka_error_code() == Some(Code::Authentication) {
            if let Ok(mut refused) = self.refused.lock() {
                *refused = Some((std::time::Instant::now(), reason.to_string()));
            }
        }
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let Some(msk) = &self.msk else {
            return Err(
                "sasl.mechanism=OAUTHBEARER needs sasl.oauthbearer.method=oidc or log.kafka.msk-iam = true".into()
            );
        };
        let (token, lifetime_ms) = msk.token()?;
        debug!(region = msk.region(), "MSK IAM token signed");
        Ok(OAuthToken { token, principal_name: "bucketlens".into(), lifetime_ms })
    }
}

impl ConsumerContext for Auth {}

/// Polls a client nobody else polls (the metadata client), so that librdkafka's
/// token refreshes for it are served.
struct TokenPump {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenPump {
    fn start(client: Arc<BaseConsumer<Auth>>) -> Result<Self, LogError> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("kafka-tokens".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = client.poll(Duration::from_millis(200));
                    }
                })
                .map_err(|e| LogError::Storage { reason: format!("cannot start the token thread: {e}") })?
        };
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for TokenPump {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs blocking librdkafka calls off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, LogError> + Send + 'static) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Storage { reason: format!("kafka call panicked: {e}") })?
}

#[async_trait]
impl Log for KafkaLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32, compacted: bool) -> Result<(), LogError> {
        let full = self.topic(topic);
        let Some(admin) = &self.admin else {
            return self.check_topic(topic, partitions, compacted).await;
        };
        let count = i32::try_from(partitions).unwrap_or(i32::MAX);
        let mut new = NewTopic::new(&full, count, TopicReplication::Fixed(self.config.replication_factor));
        if compacted {
            new = new.set("cleanup.policy", "compact");
        }
        let options = AdminOptions::new().operation_timeout(Some(self.config.request_timeout));
        let results = admin.create_topics([&new], &options).await.map_err(|e| kafka_error("creating topics", &e))?;
        for result in results {
            match result {
                Ok(name) => info!(topic = %name, partitions, compacted, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => debug!(topic = %full, "topic exists"),
                Err((name, code)) => {
                    return Err(LogError::Storage { reason: format!("cannot create topic {name}: {code}") });
                }
            }
        }
        Ok(())
    }

    async fn produce(&self, topic: &str, records: Vec<OutRecord>) -> Result<(), LogError> {
        let full = self.topic(topic);
        let framing = self.framed.read().ok().and_then(|f| f.get(topic).copied());
        let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
        for record in &records {
            let confluent = framing.and_then(|(id, fp)| to_confluent(&record.value, id, &fp));
            let value = confluent.as_deref().unwrap_or(&record.value);
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (k, v) in &record.headers {
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
            }
            let mut out = FutureRecord::to(&full).key(record.key.as_bytes()).payload(value).headers(headers);
            loop {
                match self.producer.send_result(out) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    // The client's queue is full: wait for a delivery, then retry.
                    Err((KafkaError::MessageProduction(Code::QueueFull), back)) => {
                        out = back;
                        match pending.pop() {
                            Some(first) => settle(first, &full).await?,
                            None => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                    Err((e, _)) => return Err(kafka_error(&format!("producing to {full}"), &e)),
                }
            }
        }
        for delivery in pending {
            settle(delivery, &full).await?;
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str, topic: &str) -> Result<Box<dyn Consumer>, LogError> {
        let (tx, rx) = mpsc::channel(1024);
        let context = GroupContext { auth: self.auth.clone(), events: tx, drain_timeout: self.config.drain_timeout };
        let config = client_config(
            &self.config,
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        );
        let consumer: BaseConsumer<GroupContext> =
            config.create_with_context(context).map_err(|e| kafka_error("creating a consumer", &e))?;
        let full = self.topic(topic);
        consumer.subscribe(&[&full]).map_err(|e| kafka_error(&format!("subscribing to {full}"), &e))?;
        let consumer = Arc::new(consumer);
        let prefix = self.config.topic_prefix.clone();
        let registry = self.registry.clone();
        let thread = {
            let consumer = Arc::clone(&consumer);
            std::thread::Builder::new()
                .name(format!("kafka-{group}"))
                .spawn(move || poll_loop(&consumer, &prefix, registry.as_deref()))
                .map_err(|e| LogError::Storage { reason: format!("cannot start the consumer thread: {e}") })?
        };
        Ok(Box::new(KafkaConsumer {
            consumer,
            topic: full,
            events: rx,
            pending: None,
            revocation: None,
            uncommitted: false,
            thread: Some(thread),
        }))
    }

    async fn watermarks(&self, topic: &str) -> Result<Vec<Watermarks>, LogError> {
        let partitions = self.partitions(topic).await?;
        let meta = Arc::clone(&self.meta);
        let full = self.topic(topic);
        let timeout = self.config.request_timeout;
        blocking(move || {
            let mut out = Vec::with_capacity(partitions.len());
            for partition in partitions {
                let (low, high) = meta
                    .fetch_watermarks(&full, partition, timeout)
                    .map_err(|e| kafka_error(&format!("end offsets of {full}"), &e))?;
                out.push(Watermarks { partition, low, high });
            }
            Ok(out)
        })
        .await
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<GroupOffset>, LogError> {
        let partitions = self.partitions(topic).await?;
        let client = self.group_client(group)?;
        let full = self.topic(topic);
        let timeout = self.config.request_timeout;
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for &p in &partitions {
                tpl.add_partition(&full, p);
            }
            let got = client
                .committed_offsets(tpl, timeout)
                .map_err(|e| kafka_error(&format!("committed offsets of {full}"), &e))?;
            Ok(got
                .elements()
                .iter()
                .map(|e| GroupOffset {
                    partition: e.partition(),
                    committed: match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    },
                })
                .collect())
        })
        .await
    }

    async fn reset_group(&self, group: &str, topic: &str, to: Position) -> Result<Vec<GroupOffset>, LogError> {
        let marks = self.watermarks(topic).await?;
        let client = self.group_client(group)?;
        let full = self.topic(topic);
        let timeout = self.config.request_timeout;
        let group = group.to_string();
        blocking(move || {
            let mut targets: Vec<(i32, i64)> = match to {
                Position::Earliest => marks.iter().map(|m| (m.partition, m.low)).collect(),
                Position::End => marks.iter().map(|m| (m.partition, m.high)).collect(),
                Position::Timestamp(ms) => {
                    let mut query = TopicPartitionList::new();
                    for m in &marks {
                        query
                            .add_partition_offset(&full, m.partition, Offset::Offset(ms))
                            .map_err(|e| kafka_error("offsets for a time", &e))?;
                    }
                    let found =
                        client.offsets_for_times(query, timeout).map_err(|e| kafka_error("offsets for a time", &e))?;
                    marks
                        .iter()
                        .map(|m| {
                            let at = found.find_partition(&full, m.partition).and_then(|e| match e.offset() {
                                Offset::Offset(o) => Some(o),
                                _ => None,
                            });
                            // No record at or after the time: the end.
                            (m.partition, at.unwrap_or(m.high))
                        })
                        .collect()
                }
            };
            targets.sort_unstable();
            let mut tpl = TopicPartitionList::new();
            for &(p, o) in &targets {
                tpl.add_partition_offset(&full, p, Offset::Offset(o)).map_err(|e| kafka_error("reset", &e))?;
            }
            // Kafka accepts this only while the group has no member.
            client.commit(&tpl, CommitMode::Sync).map_err(|e| match e.rdkafka_error_code() {
                Some(Code::UnknownMemberId | Code::IllegalGeneration | Code::RebalanceInProgress) => {
                    LogError::Storage {
                        reason: format!(
                            "group {group} still has running members; stop them before moving its offsets ({e})"
                        ),
                    }
                }
                _ => kafka_error(&format!("moving group {group}"), &e),
            })?;
            Ok(targets.into_iter().map(|(partition, o)| GroupOffset { partition, committed: Some(o) }).collect())
        })
        .await
    }
}

async fn settle(delivery: DeliveryFuture, topic: &str) -> Result<(), LogError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(kafka_error(&format!("delivery to {topic}"), &e)),
        Err(_) => Err(unavailable(format!("delivery to {topic}: the producer was dropped"))),
    }
}

enum Event {
    Record(LogRecord),
    Revoked(Revocation),
}

/// Runs on the consumer's polling thread: turns rebalances into [`Revocation`]s.
struct GroupContext {
    auth: Auth,
    events: mpsc::Sender<Event>,
    drain_timeout: Duration,
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
                info!(partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partitions assigned");
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
        if !send_waiting(&self.events, Event::Revoked(revocation)) {
            return;
        }
        match released.recv_timeout(self.drain_timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => info!(?partitions, "partitions revoked after draining"),
            Err(RecvTimeoutError::Timeout) => {
                warn!(?partitions, timeout = ?self.drain_timeout, "revoked partitions not drained in time; their unfinished records will be redone by the next owner");
            }
        }
    }
}

/// Sends, waiting while the channel is full; `false` once the stage is gone. (Not
/// `blocking_send`: the callback also runs when the consumer is closed, which may
/// happen on an async thread.)
fn send_waiting(events: &mpsc::Sender<Event>, mut event: Event) -> bool {
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

fn poll_loop(consumer: &BaseConsumer<GroupContext>, prefix: &str, registry: Option<&SchemaRegistry>) {
    let events = consumer.context().events.clone();
    // Runs until the stage closes the channel (drops its consumer).
    while !events.is_closed() {
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
                if !send_waiting(&events, Event::Record(record)) {
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
    events: mpsc::Receiver<Event>,
    pending: Option<Event>,
    revocation: Option<Revocation>,
    /// Offsets are stored but their last commit failed: commit again next time.
    uncommitted: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogRecord>, LogError> {
        if self.revocation.is_some() {
            return Ok(Vec::new());
        }
        let first = match self.pending.take() {
            Some(event) => event,
            None => match tokio::time::timeout(wait, self.events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) => return Err(unavailable("the kafka consumer thread stopped")),
                Err(_) => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                Event::Record(record) => out.push(record),
                Event::Revoked(revocation) => {
                    self.revocation = Some(revocation);
                    break;
                }
            }
            if out.len() < max {
                next = self.events.try_recv().ok();
            }
        }
        Ok(out)
    }

    fn take_revocation(&mut self) -> Option<Revocation> {
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

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.events.close();
        // The thread stops within one poll interval; dropping the last reference
        // then closes the consumer, which leaves the group at once.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

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
//!
//! Layout: [`config`] (the `[log.kafka]` section, each client's properties);
//! [`auth`] (every client's context: MSK IAM tokens, refused sign-ins named);
//! [`consumer`] (a group member: its polling thread, rebalances, commits);
//! [`errors`] (librdkafka's errors sorted into retryable or not); this file (the
//! producer, topics, offsets and groups: the [`Log`] itself).

mod auth;
mod config;
mod consumer;
mod errors;
mod groups;
mod times;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bucketlens_schemas::fingerprint;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info};

use super::msk_iam::MskIam;
use super::registry::{to_confluent, SchemaRegistry};
use super::{Consumer, GroupOffset, Log, LogError, Member, OutRecord, Position, Watermarks};
use auth::{Auth, TokenPump};
use config::client_config;
pub use config::KafkaConfig;
use errors::{blocking, kafka_error, settle};

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
    /// Group → the client that reads its committed offsets, kept: members waiting for
    /// their group to reach the end offsets ask every poll, and a new client each
    /// time is a connection, a metadata request and a coordinator lookup (with MSK
    /// IAM a signed login too) for each ask of each member.
    offsets_readers: std::sync::Mutex<HashMap<String, Arc<BaseConsumer<Auth>>>>,
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
        Ok(Self {
            config,
            producer,
            admin,
            meta,
            auth,
            _pump: pump,
            registry,
            framed: Default::default(),
            offsets_readers: Default::default(),
        })
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

    /// The kept [`Self::group_client`] of `group`, made on first use.
    fn offsets_reader(&self, group: &str) -> Result<Arc<BaseConsumer<Auth>>, LogError> {
        let mut readers = self.offsets_readers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = readers.get(group) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(self.group_client(group)?);
        readers.insert(group.to_string(), Arc::clone(&client));
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
            Err(LogError::UnknownTopic { topic: full }) => Err(LogError::MissingTopic {
                create: format!(
                    "kafka-topics.sh --bootstrap-server {} --command-config iam.properties --create \
                     --topic {full} --partitions {partitions} --replication-factor {}{}",
                    self.config.brokers,
                    self.config.replication_factor,
                    if compacted { " --config cleanup.policy=compact" } else { "" },
                ),
                topic: full,
            }),
            Err(e) => Err(e),
        }
    }
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
        consumer::subscribe(&self.config, &self.auth, self.registry.clone(), group, self.topic(topic))
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
        let client = self.offsets_reader(group)?;
        let full = self.topic(topic);
        let timeout = self.config.request_timeout;
        blocking(move || {
            // Serves what the kept client has queued since its last use: a token
            // refresh that is due (MSK IAM), errors of connections it lost.
            let _ = client.poll(Duration::ZERO);
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

    async fn members(&self, group: &str) -> Result<Option<Vec<Member>>, LogError> {
        let meta = Arc::clone(&self.meta);
        let timeout = self.config.request_timeout;
        let group = group.to_string();
        let prefix = self.config.topic_prefix.clone();
        blocking(move || {
            let list = meta.fetch_group_list(Some(&group), timeout).map_err(|e| match e.rdkafka_error_code() {
                // tansu closes the connection on DescribeGroups for a group it has seen.
                Some(RDKafkaErrorCode::BrokerTransportFailure) => LogError::Unsupported {
                    reason: format!(
                        "the broker closed the connection when asked to describe group {group}: it does not \
                         describe groups (tansu does not; Apache Kafka and MSK do)"
                    ),
                },
                _ => kafka_error(&format!("describing group {group}"), &e),
            })?;
            let members = list.groups().iter().flat_map(|g| g.members()).map(|m| Member {
                id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                host: m.client_host().trim_start_matches('/').to_string(),
                partitions: m
                    .assignment()
                    .and_then(Member::assignment)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(topic, p)| (topic.strip_prefix(prefix.as_str()).map_or(topic.clone(), str::to_string), p))
                    .collect(),
            });
            Ok(Some(members.collect()))
        })
        .await
    }

    async fn reset_group(&self, group: &str, topic: &str, to: Position) -> Result<Vec<GroupOffset>, LogError> {
        // Asked first, since some brokers (tansu) accept the commit below with members
        // running. A broker that cannot describe the group (tansu, for a group it has
        // seen) is answered by joining the group for a moment instead.
        let members = match self.members(group).await {
            Ok(members) => members,
            Err(e @ LogError::Unsupported { .. }) => {
                debug!(group, error = %e, "the group cannot be described: joining it to look for members");
                self.join_alone(group, topic).await?;
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(members) = members.filter(|m| !m.is_empty()) {
            let names: Vec<String> = members.iter().map(|m| format!("{} on {}", m.client_id, m.host)).collect();
            return Err(LogError::Storage {
                reason: format!(
                    "group {group} has {} running member(s) ({}): stop them before moving its offsets, or replay \
                     with a group of its own (a new group name in the configuration starts at the earliest record)",
                    members.len(),
                    names.join(", ")
                ),
            });
        }
        self.move_group(group, topic, to).await
    }

    async fn reset_group_anyway(&self, group: &str, topic: &str, to: Position) -> Result<Vec<GroupOffset>, LogError> {
        self.move_group(group, topic, to).await
    }
}

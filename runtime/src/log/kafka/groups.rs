//! Moving and probing a consumer group: joining it for a moment to learn whether
//! anyone else is in it, and moving its committed offsets (to the start, the end, a
//! time, or where a reader left off).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{Offset, TopicPartitionList};

use super::auth::Auth;
use super::config::client_config;
use super::errors::{blocking, kafka_error};
use super::{times, KafkaLog};
use crate::log::{GroupOffset, Log, LogError, Position, Watermarks};

/// How long [`KafkaLog::join_alone`] waits for the group to hand it partitions.
const JOIN_PROBE: Duration = Duration::from_secs(30);

impl KafkaLog {
    /// Joins `group` on `topic` for a moment, where the broker does not say who is in
    /// it: a member that runs keeps some partitions, so being handed all of them
    /// means no other member runs. Leaves the group again either way.
    pub(super) async fn join_alone(&self, group: &str, topic: &str) -> Result<(), LogError> {
        let partitions = self.partitions(topic).await?.len();
        let probe: BaseConsumer<Auth> = client_config(
            &self.config,
            &[("group.id", group), ("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")],
        )
        .create_with_context(self.auth.clone())
        .map_err(|e| kafka_error("joining the group", &e))?;
        let full = self.topic(topic);
        probe.subscribe(&[&full]).map_err(|e| kafka_error(&format!("joining group {group}"), &e))?;
        let group = group.to_string();
        blocking(move || {
            let deadline = std::time::Instant::now() + JOIN_PROBE;
            let held = loop {
                // Drives the join; a record fetched meanwhile is neither used nor committed.
                let _ = probe.poll(Duration::from_millis(100));
                let held = probe.assignment().map(|a| a.count()).unwrap_or(0);
                if held > 0 || std::time::Instant::now() >= deadline {
                    break held;
                }
            };
            probe.unsubscribe();
            if held == partitions {
                return Ok(());
            }
            let why = match held {
                0 => format!(
                    "joining it gave no partition within {} s: a member holds them, or one killed without \
                     leaving that the broker still waits for",
                    JOIN_PROBE.as_secs()
                ),
                n => format!("joining it gave {n} of its {partitions} partitions: the others are held"),
            };
            Err(LogError::Storage {
                reason: format!(
                    "group {group} seems to have running members ({why}): stop them before moving its offsets \
                     (members that run on would commit their own positions over the move), or replay with a \
                     group of its own; `replay --ignore-members` moves it anyway"
                ),
            })
        })
        .await
    }

    /// The first offset at or after `ms` of every partition of `topic` (its end where
    /// none is), the broker's answer checked against the records it names.
    pub(super) async fn starts_at(
        &self,
        group: &str,
        topic: &str,
        marks: &[Watermarks],
        ms: i64,
    ) -> Result<Vec<(i32, i64)>, LogError> {
        let client = self.group_client(group)?;
        // Reads single records to check the broker's answer; never joins the group.
        let reader = self.group_client(&format!("{group}.from-time"))?;
        let full = self.topic(topic);
        let timeout = self.config.request_timeout;
        let marks = marks.to_vec();
        blocking(move || {
            let mut query = TopicPartitionList::new();
            for m in &marks {
                query
                    .add_partition_offset(&full, m.partition, Offset::Offset(ms))
                    .map_err(|e| kafka_error("offsets for a time", &e))?;
            }
            let found = client.offsets_for_times(query, timeout).map_err(|e| kafka_error("offsets for a time", &e))?;
            let mut targets = Vec::new();
            for m in &marks {
                let answer = found.find_partition(&full, m.partition).and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
                // No record at or after the time: the end.
                let at = times::checked_start(&reader, &full, m.partition, (m.low, m.high), ms, answer, timeout)?;
                targets.push((m.partition, at));
            }
            Ok(targets)
        })
        .await
    }

    /// Commits `group`'s new offsets on `topic`.
    pub(super) async fn move_group(
        &self,
        group: &str,
        topic: &str,
        to: Position,
    ) -> Result<Vec<GroupOffset>, LogError> {
        let marks = self.watermarks(topic).await?;
        let mut targets: Vec<(i32, i64)> = match to {
            Position::Earliest => marks.iter().map(|m| (m.partition, m.low)).collect(),
            Position::End => marks.iter().map(|m| (m.partition, m.high)).collect(),
            Position::Resume(at) => marks.iter().map(|m| (m.partition, Position::resumed(&at, m))).collect(),
            Position::Timestamp(ms) => self.starts_at(group, topic, &marks, ms).await?,
        };
        let client = self.group_client(group)?;
        let full = self.topic(topic);
        let group = group.to_string();
        blocking(move || {
            targets.sort_unstable();
            let mut tpl = TopicPartitionList::new();
            for &(p, o) in &targets {
                tpl.add_partition_offset(&full, p, Offset::Offset(o)).map_err(|e| kafka_error("reset", &e))?;
            }
            // Kafka accepts this only while the group has no member (and some brokers,
            // tansu among them, accept it anyway: the members were asked above).
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

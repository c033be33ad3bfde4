//! Where a replay `--from TIME` starts: the broker's answer to "the first offset at or
//! after TIME", checked against the record it names.
//!
//! Some brokers answer wrongly: tansu gives offset 0 for a time after every record,
//! which would replay a whole partition. So the record at the answer is read, and
//! when it is older than TIME (or cannot be read) the first record at or after TIME
//! is looked for by bisection over the partition's offsets, a record read a step;
//! none means the partition's end. Never used on the data path: a few reads per
//! partition, once per replay.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Message as _, Offset, TopicPartitionList};

use super::auth::Auth;
use super::errors::kafka_error;
use crate::log::LogError;

/// The first record at or after `at_or_after` (ms) of `topic`/`partition` within
/// `[low, high)`, given the broker's `answer`; `high` when there is none.
pub(super) fn checked_start(
    reader: &BaseConsumer<Auth>,
    topic: &str,
    partition: i32,
    (low, high): (i64, i64),
    at_or_after: i64,
    answer: Option<i64>,
    timeout: Duration,
) -> Result<i64, LogError> {
    if let Some(answer) = answer.filter(|&a| a >= low && a < high) {
        if let Some((_, time)) = record_at(reader, topic, partition, answer, timeout)? {
            if time >= at_or_after {
                return Ok(answer);
            }
        }
    }
    // Bisection: `found` is the first offset known to hold a record at or after the time.
    let (mut lo, mut hi, mut found) = (low, high, high);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match record_at(reader, topic, partition, mid, timeout)? {
            // Nothing from `mid` on (compacted away): the answer is below it.
            None => hi = mid,
            Some((offset, time)) if time >= at_or_after => {
                found = found.min(offset);
                hi = mid;
            }
            Some((offset, _)) => lo = offset + 1,
        }
    }
    Ok(found)
}

/// The offset and timestamp (ms) of the first record at or after `offset`, or `None`
/// when none came within `timeout` (none is there).
fn record_at(
    reader: &BaseConsumer<Auth>,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> Result<Option<(i64, i64)>, LogError> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| kafka_error("reading a record for a time", &e))?;
    reader.assign(&assignment).map_err(|e| kafka_error("reading a record for a time", &e))?;
    // A record below the end comes at once; none comes only where the tail was compacted.
    let deadline = Instant::now() + timeout.min(Duration::from_secs(5));
    while Instant::now() < deadline {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(message)) if message.partition() == partition && message.offset() >= offset => {
                let time = message.timestamp().to_millis().unwrap_or(i64::MIN);
                return Ok(Some((message.offset(), time)));
            }
            Some(Err(e)) => return Err(kafka_error("reading a record for a time", &e)),
            _ => {}
        }
    }
    Ok(None)
}

//! Plumbing shared by every bucketlens stage: the log, buckets, config, shutdown and
//! telemetry. No domain logic lives here: nothing in this crate knows what a label is,
//! nor what an analyzer finds. A record's key is opaque here: the log partitions by
//! it (the same key, the same partition, in order) and hands it back unchanged.
//!
//! Layout:
//! - [`log`]: the log seam (topics, partitions, offsets, consumer groups) and its
//!   embedded implementation on SQLite;
//! - [`bucket`]: the object-source seam (read an object's bytes): local directories, S3;
//! - [`aws`]: AWS SDK clients from the default credential chain and `[s3]` settings;
//! - [`config`]: TOML file + `BUCKETLENS_*` environment loading;
//! - [`produce`]: the statistics and the error every producer reports;
//! - [`sqlite`]: a stage's own small SQLite store (listing state, checkpoints);
//! - [`shutdown`]: one root `CancellationToken`, cancelled by SIGINT/SIGTERM;
//! - [`telemetry`]: tracing set-up;
//! - [`text`]: text for people (control characters escaped) and [`say!`].

pub mod aws;
pub mod bucket;
pub mod config;
pub mod log;
pub mod metrics;
pub mod produce;
pub mod shutdown;
pub mod sqlite;
pub mod telemetry;
pub mod text;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

//! `[index]` configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// The consumer group of the index sink.
    pub group: String,
    /// Records written per index commit, at most.
    pub batch_size: usize,
    /// A batch is committed at the latest this long after its first record, so
    /// search sees changes within about this delay.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Memory for tantivy's indexing buffer, in bytes (at least 15 MB).
    pub writer_memory: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group: "bucketlens-index".into(),
            batch_size: 1000,
            commit_interval: Duration::from_millis(250),
            writer_memory: 50_000_000,
        }
    }
}

impl Config {
    /// Checks the values; no IO.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("index.batch-size must be at least 1".into());
        }
        if self.writer_memory < 15_000_000 {
            return Err(format!("index.writer-memory must be at least 15000000 bytes, not {}", self.writer_memory));
        }
        Ok(())
    }
}

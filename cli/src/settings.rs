//! The whole configuration: one section per stage, loaded from defaults, the TOML
//! file, `BUCKETLENS_*` variables, then flags. See `deploy/bucketlens.example.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bucketlens_runtime::log::KafkaConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Settings {
    /// Where the embedded log, the listing state and the index live.
    pub data_dir: PathBuf,
    pub log: LogSettings,
    /// Where the labeler reads each bucket: `photos = "/data/photos"`. Buckets
    /// listed by `index`/`produce listing` with the same data dir are known already.
    pub buckets: BTreeMap<String, PathBuf>,
    /// How to reach S3 or an S3-compatible store, for `s3://` sources and for
    /// buckets not mapped to a folder.
    pub s3: bucketlens_runtime::aws::S3Config,
    pub metrics: MetricsSettings,
    pub listing: bucketlens_listing::Config,
    pub inventory: bucketlens_inventory::Config,
    pub events: bucketlens_events::Config,
    pub labeler: bucketlens_labeler::Config,
    pub index: bucketlens_index::Config,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogSettings {
    /// `embedded` (a SQLite file in the data dir) or `kafka`.
    pub backend: Backend,
    /// Partitions of each topic when bucketlens creates it.
    pub partitions: u32,
    pub kafka: KafkaConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Embedded,
    Kafka,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { backend: Backend::Embedded, partitions: 4, kafka: KafkaConfig::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MetricsSettings {
    /// Where `label`, `sink` and `produce` serve Prometheus' `/metrics` (port 0: any
    /// free port, printed at start-up; use `0.0.0.0:9464` in a container).
    pub listen: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)) }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".bucketlens"),
            log: LogSettings::default(),
            buckets: BTreeMap::new(),
            s3: bucketlens_runtime::aws::S3Config::default(),
            metrics: MetricsSettings::default(),
            listing: bucketlens_listing::Config::default(),
            inventory: bucketlens_inventory::Config::default(),
            events: bucketlens_events::Config::default(),
            labeler: bucketlens_labeler::Config::default(),
            index: bucketlens_index::Config::default(),
        }
    }
}

impl Settings {
    pub fn load(file: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut settings: Self = bucketlens_runtime::config::load(file)?;
        if let Some(dir) = data_dir {
            settings.data_dir = dir;
        }
        if settings.log.partitions == 0 {
            anyhow::bail!("invalid configuration: log.partitions must be at least 1");
        }
        settings.index.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.labeler.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(settings)
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("log.sqlite")
    }

    pub fn listing_path(&self) -> PathBuf {
        self.data_dir.join("listing.sqlite")
    }

    pub fn index_path(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_loads_and_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bucketlens.example.toml");
        let loaded = Settings::load(Some(&example), None).unwrap();
        let defaults = Settings::default();
        assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "deploy/bucketlens.example.toml documents every setting with its default"
        );
    }
}

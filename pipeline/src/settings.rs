//! The whole configuration: one section per stage, loaded from defaults, the TOML
//! file, `BUCKETLENS_*` variables, then flags ([`ConfigFile`]), and validated once,
//! every section at load, into [`Settings`]. See `deploy/bucketlens.example.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bucketlens_runtime::config::{ConfigError, Invalid, Problems};
use bucketlens_runtime::log::KafkaConfig;
use serde::{Deserialize, Serialize};

/// The configuration as written: the file and the environment, with defaults.
pub type ConfigFile = Sections<bucketlens_labeler::Config>;

/// The configuration, checked: what every command and stage reads.
pub type Settings = Sections<bucketlens_labeler::Settings>;

/// Every section, with the labeler's as written (`L` = its `Config`) or checked (its
/// `Settings`); the other sections are typed as they are read and checked in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    default,
    bound(serialize = "L: Serialize", deserialize = "L: Deserialize<'de> + Default")
)]
pub struct Sections<L> {
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
    pub labeler: L,
    pub index: bucketlens_index::Config,
    pub serve: bucketlens_serve::Config,
    /// `bucketlens act`'s standing queries (`[[act.rules]]`).
    pub act: bucketlens_act::Config,
    /// The list prices `plan` estimates with.
    pub prices: crate::plan::Prices,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogSettings {
    /// `embedded` (a SQLite file in the data dir) or `kafka`.
    pub backend: Backend,
    /// Partitions of each topic when bucketlens creates it.
    pub partitions: u32,
    /// How long a long-running role (`label`, `sink`, `produce events`, `--watch`)
    /// waits for topics it may not create (MSK with IAM) before it gives up; unset,
    /// as long as it takes. One-shot commands never wait: they say what is missing.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub topic_wait: Option<std::time::Duration>,
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
        Self { backend: Backend::Embedded, partitions: 4, topic_wait: None, kafka: KafkaConfig::default() }
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

impl<L: Default> Default for Sections<L> {
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
            labeler: L::default(),
            index: bucketlens_index::Config::default(),
            serve: bucketlens_serve::Config::default(),
            act: bucketlens_act::Config::default(),
            prices: crate::plan::Prices::default(),
        }
    }
}

impl ConfigFile {
    /// Reads the defaults, `file` and the environment; `data_dir` (a flag) wins.
    pub fn load(file: Option<&Path>, data_dir: Option<PathBuf>) -> Result<Self, ConfigError> {
        let mut config: Self = bucketlens_runtime::config::load(file)?;
        if let Some(dir) = data_dir {
            config.data_dir = dir;
        }
        Ok(config)
    }

    /// Checks every section (no IO): the settings, or every key that is wrong.
    pub fn validate(self) -> Result<Settings, Vec<Invalid>> {
        let mut problems = Problems::default();
        let partitions = self.log.partitions;
        problems.check(partitions >= 1, "log.partitions", || format!("must be at least 1, got {partitions}"));
        if self.log.backend == Backend::Kafka {
            let kafka = &self.log.kafka;
            problems.check(!kafka.brokers.trim().is_empty(), "log.kafka.brokers", || {
                "must name at least one broker (host:port) when log.backend is \"kafka\"".into()
            });
            let factor = kafka.replication_factor;
            problems.check(factor >= 1, "log.kafka.replication-factor", || format!("must be at least 1, got {factor}"));
        }
        problems.check(!self.data_dir.as_os_str().is_empty(), "data-dir", || "must not be empty".into());
        problems.section(self.listing.validate());
        problems.section(self.inventory.validate());
        problems.section(self.events.validate());
        problems.section(self.index.validate());
        problems.section(self.serve.validate());
        problems.section(self.prices.validate());
        problems.section(self.act.validate());
        let labeler = problems.section(self.labeler.validate());
        problems.finish(|| ())?;
        // `section` gives `None` only after recording the section's problems.
        let labeler = labeler.ok_or_else(Vec::new)?;
        let Self {
            data_dir,
            log,
            buckets,
            s3,
            metrics,
            listing,
            inventory,
            events,
            labeler: _,
            index,
            serve,
            act,
            prices,
        } = self;
        Ok(Settings {
            data_dir,
            log,
            buckets,
            s3,
            metrics,
            listing,
            inventory,
            events,
            labeler,
            index,
            serve,
            act,
            prices,
        })
    }
}

impl Settings {
    /// Loads and validates the configuration; every wrong key is named at once.
    pub fn load(file: Option<&Path>, data_dir: Option<PathBuf>) -> Result<Self, ConfigError> {
        ConfigFile::load(file, data_dir)?.validate().map_err(ConfigError::Invalid)
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("log.sqlite")
    }

    pub fn listing_path(&self) -> PathBuf {
        self.data_dir.join("listing.sqlite")
    }

    /// What the labelers of this data dir labeled already (see the labeler's ledger).
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join("labeler-ledger.sqlite")
    }

    /// What `act` decided and did (see its ledger).
    pub fn act_ledger_path(&self) -> PathBuf {
        self.data_dir.join("act-ledger.sqlite")
    }

    pub fn index_path(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    pub fn thumbnails_path(&self) -> PathBuf {
        self.data_dir.join("thumbnails")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_loads_and_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/bucketlens.example.toml");
        let loaded = ConfigFile::load(Some(&example), None).unwrap();
        assert!(loaded.clone().validate().is_ok(), "the example configuration is valid");
        let defaults = ConfigFile::default();
        assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "deploy/bucketlens.example.toml documents every setting with its default"
        );
    }
}

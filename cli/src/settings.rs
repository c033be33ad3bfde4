//! The whole configuration: one section per stage, loaded from defaults, the TOML
//! file, `BUCKETLENS_*` variables, then flags. See `deploy/bucketlens.example.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Settings {
    /// Where the embedded log, the listing state and the index live.
    pub data_dir: PathBuf,
    pub log: LogSettings,
    pub listing: bucketlens_listing::Config,
    pub labeler: bucketlens_labeler::Config,
    pub index: bucketlens_index::Config,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogSettings {
    /// Partitions of each topic when bucketlens creates it.
    pub partitions: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { partitions: 4 }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".bucketlens"),
            log: LogSettings::default(),
            listing: bucketlens_listing::Config::default(),
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

//! `[listing]` configuration.

use std::time::Duration;

use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Records produced per log write.
    pub batch_size: usize,
    /// With `--watch`: how long to gather filesystem events before syncing them, while a
    /// changed file has not been closed (renamed or removed) yet.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// Also visit files and folders whose name starts with a dot.
    pub include_hidden: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { batch_size: 500, debounce: Duration::from_millis(100), include_hidden: false }
    }
}

impl Config {
    /// Checks every value (no IO): nothing, or every key that is wrong.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        problems.at_least_one("listing.batch-size", self.batch_size);
        problems.finish(|| ())
    }
}

//! Configuration loading: built-in defaults, then a TOML file, then `BUCKETLENS_*`
//! environment variables (`BUCKETLENS_LABELER__MIN_CONFIDENCE=60` sets
//! `[labeler] min-confidence = 60`), then command-line flags applied by the caller.
//! Loading does no IO beyond reading the file; each stage validates its own section.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{de::DeserializeOwned, Serialize};

/// `BUCKETLENS_*` variables that are read elsewhere, not as settings.
const NOT_SETTINGS: [&str; 2] = ["LOG", "CONFIG"];

/// A configuration that could not be loaded, with what to fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Loads `T` from its defaults, `file` (if given; it must exist) and the environment.
pub fn load<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError(format!("config file {} does not exist", file.display())));
        }
        figment = figment.merge(Toml::file(file));
    }
    // BUCKETLENS_LOG (the log filter) and BUCKETLENS_CONFIG (the file) are not settings.
    let env = Env::prefixed("BUCKETLENS_")
        .filter(|key| !NOT_SETTINGS.iter().any(|n| key.as_str().eq_ignore_ascii_case(n)))
        .map(|key| key.as_str().replace("__", ".").replace('_', "-").into());
    figment = figment.merge(env);
    figment.extract().map_err(|e| ConfigError(e.to_string()))
}

//! Configuration loading: built-in defaults, then a TOML file, then `BUCKETLENS_*`
//! environment variables (`BUCKETLENS_LABELER__MIN_CONFIDENCE=60` sets
//! `[labeler] min-confidence = 60`), then command-line flags applied by the caller.
//! Loading does no IO beyond reading the file; each stage validates its own section
//! (no IO either) into typed settings, reporting every wrong key at once with
//! [`Problems`].

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{de::DeserializeOwned, Serialize};

/// `BUCKETLENS_*` variables that are read elsewhere, not as settings.
const NOT_SETTINGS: [&str; 4] = ["LOG", "CONFIG", "TEST_ABORT", "MODELS_DIR"];

/// A configuration that could not be loaded, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read as settings.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// Settings that were read but are wrong, every one of them.
    #[error("invalid configuration: {}", list(.0))]
    Invalid(Vec<Invalid>),
}

fn list(problems: &[Invalid]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// One wrong setting: its key (`labeler.concurrency`) and what is wrong with it,
/// said so that the fix is plain ("must be at least 1, got 0").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {problem}")]
pub struct Invalid {
    pub key: String,
    pub problem: String,
}

/// The wrong settings a validation found so far; a section's `validate` checks every
/// key, then returns its typed settings or all of its problems.
#[derive(Debug, Default)]
pub struct Problems(Vec<Invalid>);

impl Problems {
    /// Records that `key` is wrong when `ok` is false.
    pub fn check(&mut self, ok: bool, key: &str, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(Invalid { key: key.to_string(), problem: problem() });
        }
    }

    /// Records that `key` is wrong.
    pub fn push(&mut self, key: &str, problem: String) {
        self.0.push(Invalid { key: key.to_string(), problem });
    }

    /// `value` of `key` as a non-zero count, or a problem.
    pub fn at_least_one(&mut self, key: &str, value: usize) -> std::num::NonZeroUsize {
        self.check(value > 0, key, || format!("must be at least 1, got {value}"));
        std::num::NonZeroUsize::new(value).unwrap_or(std::num::NonZeroUsize::MIN)
    }

    /// `value` of `key` as a percentage (0 to 100), or a problem.
    pub fn percent(&mut self, key: &str, value: f32) -> f32 {
        self.check((0.0..=100.0).contains(&value), key, || format!("must be between 0 and 100, got {value}"));
        value
    }

    /// The settings of a nested section: `None` (and its problems kept) if wrong.
    pub fn section<T>(&mut self, validated: Result<T, Vec<Invalid>>) -> Option<T> {
        match validated {
            Ok(value) => Some(value),
            Err(problems) => {
                self.0.extend(problems);
                None
            }
        }
    }

    /// `value` if no problem was found, else every problem.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<Invalid>> {
        if self.0.is_empty() {
            return Ok(value());
        }
        Err(self.0)
    }
}

/// Loads `T` from its defaults, `file` (if given; it must exist) and the environment.
pub fn load<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError::Load(format!("config file {} does not exist", file.display())));
        }
        figment = figment.merge(Toml::file(file));
    }
    // BUCKETLENS_LOG (the log filter), BUCKETLENS_CONFIG (the file) and
    // BUCKETLENS_MODELS_DIR (where fetched models are) are not settings.
    let env = Env::prefixed("BUCKETLENS_")
        .filter(|key| !NOT_SETTINGS.iter().any(|n| key.as_str().eq_ignore_ascii_case(n)))
        .map(|key| key.as_str().replace("__", ".").replace('_', "-").into());
    figment = figment.merge(env);
    figment.extract().map_err(|e| ConfigError::Load(e.to_string()))
}

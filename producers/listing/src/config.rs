//! `[listing]` configuration.

use std::time::Duration;

use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

/// What `exclude` holds unless the configuration says otherwise: the system folders
/// NAS boxes and operating systems write beside photos (Synology's `@eaDir` holds
/// five thumbnails per photo), and the names of files still being downloaded.
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "@eaDir",
    "#recycle",
    "#snapshot",
    "@Recycle",
    "@Recently-Snapshot",
    "@tmp",
    "$RECYCLE.BIN",
    "System Volume Information",
    "lost+found",
    "*.tmp",
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.download",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Records produced per log write.
    pub batch_size: usize,
    /// With `--watch`: how long a file that was created or written, and not closed
    /// since, must see no change before it is read (a writer that closes the file, or
    /// renames it into place, is read 5 ms after that).
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// Also visit files and folders whose name starts with a dot.
    pub include_hidden: bool,
    /// Files and folders never visited, as globs (`*`, `?`, `[abc]`). A pattern with
    /// no `/` matches a file or folder name anywhere (`@eaDir`, `*.tmp`); one with a
    /// `/` matches a key from the top of the folder or bucket (`archive/*/raw`).
    pub exclude: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            batch_size: 500,
            debounce: Duration::from_secs(2),
            include_hidden: false,
            exclude: DEFAULT_EXCLUDE.iter().map(ToString::to_string).collect(),
        }
    }
}

impl Config {
    /// Checks every value (no IO): nothing, or every key that is wrong.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        problems.at_least_one("listing.batch-size", self.batch_size);
        for pattern in &self.exclude {
            let parsed = glob::Pattern::new(pattern);
            problems.check(parsed.is_ok(), "listing.exclude", || match parsed {
                Err(e) => format!("{pattern:?} is not a glob: {e}"),
                Ok(_) => String::new(),
            });
        }
        problems.finish(|| ())
    }

    /// What a listing passes over, from these settings.
    pub fn skip(&self) -> Skip {
        let mut skip = Skip { hidden: !self.include_hidden, names: Vec::new(), keys: Vec::new() };
        for pattern in &self.exclude {
            let Ok(glob) = glob::Pattern::new(pattern) else { continue }; // refused by validate
            if pattern.contains('/') {
                skip.keys.push(glob);
            } else {
                skip.names.push(glob);
            }
        }
        skip
    }
}

/// The files and folders a listing passes over: hidden ones (unless included) and
/// the excluded ones. The one-shot sync, `--watch` and the S3 listing ask the same.
#[derive(Debug, Clone, Default)]
pub struct Skip {
    hidden: bool,
    names: Vec<glob::Pattern>,
    keys: Vec<glob::Pattern>,
}

impl Skip {
    /// Whether an entry named `name` (a file or folder) is passed over.
    pub fn name(&self, name: &str) -> bool {
        (self.hidden && name.starts_with('.')) || self.names.iter().any(|p| p.matches(name))
    }

    /// Whether no pattern has a `/` (only names need checking).
    pub fn keys_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `key` (`a/b/c.jpg`) is passed over: one of its names is, or the key
    /// (or a folder above it) matches a pattern with a `/`.
    pub fn key(&self, key: &str) -> bool {
        let options = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
        let mut prefix_end = 0;
        for part in key.split('/') {
            prefix_end += part.len();
            if self.name(part) || self.keys.iter().any(|p| p.matches_with(&key[..prefix_end], options)) {
                return true;
            }
            prefix_end += 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nas_folders_partial_downloads_and_hidden_names_are_skipped_by_default() {
        let skip = Config::default().skip();
        for key in
            ["@eaDir/a.jpg/SYNOPHOTO_THUMB_XL.jpg", "2024/#recycle/a.jpg", "a.jpg.part", ".b.jpg", "x/.tmp/c.jpg"]
        {
            assert!(skip.key(key), "{key}");
        }
        for key in ["2024/a.jpg", "eaDir/a.jpg", "a.partly.jpg", "recycle/b.png"] {
            assert!(!skip.key(key), "{key}");
        }
    }

    #[test]
    fn a_pattern_with_a_slash_matches_keys_from_the_top() {
        let config = Config { exclude: vec!["archive/*/raw".into(), "*.NEF".into()], ..Config::default() };
        let skip = config.skip();
        assert!(skip.key("archive/2020/raw/a.jpg"));
        assert!(skip.key("x/b.NEF"));
        assert!(!skip.key("archive/2020/jpeg/a.jpg"));
        assert!(!skip.key("old/archive/2020/raw/a.jpg"), "anchored at the top");
        assert!(!skip.key("archive/2020/x/raw/a.jpg"), "`*` stays within one folder");
        assert!(!skip.key("@eaDir/a.jpg"), "the setting replaces the defaults");
    }

    #[test]
    fn a_pattern_that_is_not_a_glob_is_a_wrong_setting() {
        let config = Config { exclude: vec!["[abc".into()], ..Config::default() };
        let problems = config.validate().unwrap_err();
        assert_eq!(problems[0].key, "listing.exclude");
    }
}

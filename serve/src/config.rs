//! The `[serve]` section.

use std::net::SocketAddr;
use std::time::Duration;

use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Where the API and the web UI listen. Any address but loopback needs `token`.
    pub listen: SocketAddr,
    /// A shared secret every request must carry (`Authorization: Bearer …`, or the
    /// cookie the login page sets). Required off loopback. Prefer setting it as
    /// BUCKETLENS_SERVE__TOKEN to writing it in a file.
    pub token: Option<String>,
    /// Disk the thumbnail cache (in the data dir) may take, in MiB; the least
    /// recently made thumbnails go first.
    pub thumbnail_cache_mb: u64,
    /// Thumbnails made at once (each decodes one image); further requests wait.
    pub thumbnail_workers: usize,
    /// Searches run at once (default: two per core); further searches wait their turn.
    /// Each uses a core and holds its page of hits, so more at once answers none sooner.
    pub searches_at_once: usize,
    /// A request that takes longer gets 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            token: None,
            thumbnail_cache_mb: 512,
            thumbnail_workers: 4,
            searches_at_once: std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) * 2,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        let workers = self.thumbnail_workers;
        problems.check(workers >= 1, "serve.thumbnail-workers", || format!("must be at least 1, got {workers}"));
        let searches = self.searches_at_once;
        problems.check(searches >= 1, "serve.searches-at-once", || format!("must be at least 1, got {searches}"));
        problems.check(!self.request_timeout.is_zero(), "serve.request-timeout", || "must be above 0".into());
        if let Some(token) = &self.token {
            problems.check(token.len() >= 16, "serve.token", || {
                format!("must be at least 16 characters, got {}", token.len())
            });
            let printable = token.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'));
            problems.check(printable, "serve.token", || {
                "must be printable ASCII without spaces, quotes, backslashes, ';' or ','".into()
            });
        }
        problems.finish(|| ())
    }

    /// What only `serve` itself checks, at its start: an address off loopback needs a
    /// token. Other roles read the same file (one config for every role of a
    /// deployment) and never serve, so this never stops them.
    pub fn check_exposure(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        problems.check(self.listen.ip().is_loopback() || self.token.is_some(), "serve.listen", || {
            format!(
                "{} is not a loopback address, so anyone who can reach it could read every image: set \
                 serve.token (or BUCKETLENS_SERVE__TOKEN) too, or listen on 127.0.0.1",
                self.listen
            )
        });
        problems.finish(|| ())
    }
}

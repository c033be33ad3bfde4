//! Tracing set-up: structured logs on stderr, filtered by `BUCKETLENS_LOG`
//! (or `RUST_LOG`), e.g. `BUCKETLENS_LOG=debug` or `BUCKETLENS_LOG=bucketlens_labeler=trace`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `default` applies when no filter is set.
pub fn init(default: &str) {
    let filter =
        std::env::var("BUCKETLENS_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

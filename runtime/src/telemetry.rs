//! Tracing set-up: structured logs on stderr, filtered by `BUCKETLENS_LOG`
//! (or `RUST_LOG`), e.g. `BUCKETLENS_LOG=debug` or `BUCKETLENS_LOG=bucketlens_labeler=trace`.
//!
//! Field values (object keys, paths, errors) are printed with their control
//! characters escaped ([`crate::text`]); a closed stderr is ignored.

use std::io::IsTerminal;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::EnvFilter;

use crate::text::escape_controls;

/// Installs the global subscriber; `default` applies when no filter is set.
pub fn init(default: &str) {
    let filter =
        std::env::var("BUCKETLENS_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| default.to_string());
    let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        match field.name() {
            "message" => write!(writer, "{}", escape_controls(&text)),
            name => write!(writer, "{name}={}", escape_controls(&text)),
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .fmt_fields(fields)
        .log_internal_errors(false)
        .try_init();
}

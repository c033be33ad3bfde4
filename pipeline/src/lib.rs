//! The pipeline wired from the settings, and the commands that drive it.
//!
//! The `bucketlens` binary parses its arguments and calls in here; the stages' own
//! loops live in their crates (producers, the labeler, the index sink). This crate
//! decides which run where, on which log and index:
//!
//! - [`settings`]: the configuration file and the environment, every section at once;
//! - [`wiring`]: the IO parts (log, object sources, labeler, index) built from the
//!   settings, and the stages started on them;
//! - [`progress`]: the live progress line of a one-shot run;
//! - [`index`]: `bucketlens index SOURCE [--watch]`, the whole pipeline in one process;
//! - [`produce`]: `bucketlens produce listing|inventory|events`;
//! - [`replay`]: moving a group back, and reprocessing up to the end;
//! - [`relabel`]: labeling again what failed;
//! - [`status`]: the index's documents and each group's lag;
//! - [`act`]: `bucketlens act`, the standing queries of `[[act.rules]]`.
//!
//! A record's key (`bucket/key`) is set by the producers and travels unchanged
//! through the labeler and the sink; nothing here rewrites it.
//!
//! Errors here are messages for a person at the end of a command (`anyhow`, as in the
//! binary): each stage crate's typed errors are wrapped with what was being done.

pub mod act;
pub mod index;
pub mod plan;
pub mod produce;
pub mod progress;
pub mod relabel;
pub mod replay;
pub mod settings;
pub mod status;
pub mod wiring;

//! The labeler stage: consumes `objects.changed.v1`, reads each image, runs the
//! analyzers on it and produces `images.labeled.v1` (plus a DLQ record for what can
//! never be labeled).
//!
//! Layout:
//! - [`config`]: the `[labeler]` section and its validation;
//! - [`labeler`]: the one-method [`Labeler`] seam and its result types;
//! - [`backend`]: the labeler the settings choose ([`load`]);
//! - [`local`]: the local labeler: one read and one decode of each image, then the
//!   enabled analyzers in order, on its own bounded labeling threads;
//! - [`analyzers`]: one module per analyzer (the classifier, faces, objects, the
//!   optional COCO detector), each with one job; a new one is a module there, its
//!   `[labeler]` key and one line in [`local::enabled`];
//! - [`image`]: bounded, format-aware decoding (JPEG, PNG, the formats decoded at
//!   full size), apart from the models;
//! - [`engine`]: what runs the local models: ONNX Runtime if installed, else tract;
//! - [`names`]: the classifier's label hierarchy (WordNet, then `models/names.toml`);
//! - [`models`]: the models a user fetches once, pinned by SHA-256 (`bucketlens models`);
//! - [`rekognition`]: Amazon Rekognition DetectLabels, rate-limited, by S3 reference;
//! - [`stage`]: the consumer loop (bounded concurrency, one record per key at a
//!   time, offsets committed as the contiguous finished prefix), with its
//!   [`stage::ledger`] (what is labeled already), [`stage::isolate`] (labeling one
//!   image in a child process after a labeler died on it) and [`stage::metrics`].
//!   It knows the [`Labeler`] seam only, never which analyzers run.
//!
//! A record's key (`bucket/key`) travels through unchanged: the labeler consumes
//! `objects.changed.v1` by key, handles the records of one key one at a time, in
//! order, and produces the outcome (and any DLQ record) under the same key.
//!
//! This crate never writes to an index and never blocks the async runtime: decoding
//! and inference run on the labeling threads.

pub mod analyzers;
pub mod backend;
pub mod config;
pub mod engine;
pub mod hashes;
pub mod image;
pub mod labeler;
pub mod local;
pub mod metadata;
pub mod models;
pub mod names;
pub mod rekognition;
pub mod stage;

pub use backend::{embed_file, load, text_tower, LocalModel};
pub use config::{Backend, Config, Settings};
pub use labeler::{LabelFailure, LabelSet, Labeler, ModelError};
pub use stage::{isolate, ledger, metrics, run, Isolation, Ledger, Metrics, Stage};

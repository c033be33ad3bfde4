//! The labeler stage: consumes `objects.changed.v1`, reads each image, labels it and
//! produces `images.labeled.v1` (plus a DLQ record for what can never be labeled).
//!
//! Layout:
//! - [`config`]: the `[labeler]` section and its validation;
//! - [`labeler`]: the one-method [`Labeler`] seam and its result types;
//! - [`image`]: bounded, format-aware decoding into the model's input tensor;
//! - [`onnx`]: the local EfficientNet-Lite0 model (tract) and its WordNet hierarchy;
//! - [`rekognition`]: Amazon Rekognition DetectLabels, rate-limited, by S3 reference;
//! - [`stage`]: the consumer loop — bounded concurrency, one record per key at a
//!   time, offsets committed as the contiguous finished prefix;
//! - [`metrics`]: counters read by the progress display and the summary.
//!
//! This crate never writes to an index and never blocks the async runtime: decoding
//! and inference run on the blocking pool.

pub mod config;
pub mod detector;
pub mod image;
pub mod labeler;
pub mod metrics;
pub mod onnx;
pub mod rekognition;
pub mod stage;

pub use config::{Backend, Config, Settings};
pub use labeler::{LabelFailure, LabelSet, Labeler};
pub use metrics::Metrics;
pub use stage::run;

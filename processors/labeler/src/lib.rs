//! The labeler stage: consumes `objects.changed.v1`, reads each image, labels it and
//! produces `images.labeled.v1` (plus a DLQ record for what can never be labeled).
//!
//! Layout:
//! - [`config`]: the `[labeler]` section and its validation;
//! - [`labeler`]: the one-method [`Labeler`] seam and its result types;
//! - [`image`]: bounded, format-aware decoding into the model's input tensor;
//! - [`isolate`]: labeling one image in a child process (after a labeler died on it);
//! - [`onnx`]: the local EfficientNet-Lite0 model;
//! - [`engine`]: what runs the local models: ONNX Runtime if installed, else tract;
//! - [`faces`]: the built-in face detector (BlazeFace), merged as `Face`/`Person`;
//! - [`names`]: its label hierarchy (WordNet, then `models/names.toml`);
//! - [`rekognition`]: Amazon Rekognition DetectLabels, rate-limited, by S3 reference;
//! - [`stage`]: the consumer loop — bounded concurrency, one record per key at a
//!   time, offsets committed as the contiguous finished prefix;
//! - [`ledger`]: what is labeled already (from `images.labeled.v1`), so an unchanged
//!   object is neither read nor labeled again;
//! - [`metrics`]: counters read by the progress display and the summary;
//! - this file: [`load`], the labeler the settings choose.
//!
//! A record's key (`bucket/key`) travels through unchanged: the labeler consumes
//! `objects.changed.v1` by key, handles the records of one key one at a time, in
//! order, and produces the outcome (and any DLQ record) under the same key.
//!
//! This crate never writes to an index and never blocks the async runtime: decoding
//! and inference run on the blocking pool.

pub mod config;
pub mod detector;
pub mod engine;
pub mod faces;
pub mod image;
pub mod isolate;
pub mod labeler;
pub mod ledger;
pub mod metrics;
pub mod names;
pub mod objects;
pub mod onnx;
pub mod rekognition;
pub mod stage;

use std::sync::Arc;

pub use config::{Backend, Config, Settings};
pub use isolate::Isolation;
pub use labeler::{LabelFailure, LabelSet, Labeler, ModelError};
pub use ledger::Ledger;
pub use metrics::Metrics;
pub use stage::{run, Stage};

/// The labeler `settings` choose, ready to label: the local model (loaded once, on
/// the blocking pool) or Rekognition. A new backend is one more arm here.
pub async fn load(settings: &Settings) -> Result<Arc<dyn Labeler>, ModelError> {
    if settings.backend == Backend::Rekognition {
        let rekognition = &settings.rekognition;
        let labeler =
            rekognition::RekognitionLabeler::new(rekognition, settings.min_confidence, settings.max_labels.get()).await;
        return Ok(Arc::new(labeler));
    }
    LocalModel::of(settings).load().await
}

/// The local model's files and knobs as the settings give them: what a child
/// labeler ([`isolate`]) loads too, handed over as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LocalModel {
    /// Another classifier, or the built-in model.
    pub custom: Option<onnx::ModelFiles>,
    pub options: onnx::OnnxOptions,
}

impl LocalModel {
    pub fn of(settings: &Settings) -> Self {
        let options = onnx::OnnxOptions {
            threads: settings.concurrency.get(),
            min_confidence: settings.min_confidence,
            max_labels: settings.max_labels.get(),
            max_pixels: settings.max_pixels,
            faces: settings.faces,
            objects: settings.objects,
            detector: settings.detector.clone(),
            engine: settings.engine,
            onnxruntime: settings.onnxruntime.clone(),
        };
        Self { custom: settings.model.clone(), options }
    }

    /// Loads it on the blocking pool (about a second).
    pub async fn load(self) -> Result<Arc<dyn Labeler>, ModelError> {
        let loading = tokio::task::spawn_blocking(move || onnx::OnnxLabeler::load(self.custom.as_ref(), &self.options));
        let labeler = loading.await.map_err(|e| ModelError::Model(format!("loading the model failed: {e}")))??;
        Ok(Arc::new(labeler))
    }
}

//! Which labeler the settings choose: the local analyzers ([`crate::local`]) or
//! Amazon Rekognition ([`crate::rekognition`]). A new backend is one more arm in
//! [`load`].

use std::sync::Arc;

use crate::analyzers::classifier::ModelFiles;
use crate::config::{Backend, Settings};
use crate::labeler::{Labeler, ModelError};
use crate::local::{LocalLabeler, LocalOptions};
use crate::rekognition::RekognitionLabeler;

/// The labeler `settings` choose, ready to label: the local models (loaded once, on
/// the blocking pool) or Rekognition.
pub async fn load(settings: &Settings) -> Result<Arc<dyn Labeler>, ModelError> {
    if settings.backend == Backend::Rekognition {
        let rekognition = &settings.rekognition;
        let labeler = RekognitionLabeler::new(rekognition, settings.min_confidence, settings.max_labels.get())
            .await
            .reading_metadata(settings.metadata)
            .hashing(settings.hashes)
            .reading_text(settings.text);
        return Ok(Arc::new(labeler));
    }
    LocalModel::of(settings).load().await
}

/// The embedding of an image file that need not be in the index (`similar --image`),
/// as the local labeler `settings` describe would make it: the classifier alone
/// loaded, on one thread. `None` when the settings make no embeddings (Rekognition,
/// or `labeler.embedding` off).
pub async fn embed_file(
    settings: &Settings,
    bytes: Vec<u8>,
) -> Result<Option<bucketlens_schemas::ImageEmbedding>, String> {
    if settings.backend == Backend::Rekognition || !settings.embedding {
        return Ok(None);
    }
    let mut model = LocalModel::of(settings);
    model.options.threads = 1;
    (model.options.faces, model.options.objects, model.options.detector) = (None, None, None);
    (model.options.hashes, model.options.metadata.enabled) = (false, false);
    let labeler = model.load().await.map_err(|e| e.to_string())?;
    Ok(labeler.label(bytes).await.map_err(|e| e.to_string())?.embedding)
}

/// The text tower of the embedder `settings` name (`labeler.embedder`), loaded on the
/// blocking pool, with CLIP's tokenizer: what a search by meaning encodes its phrase
/// with, in the process that searches. Also the model's catalogue entry (its
/// relevance floor). An error says why there is none.
pub async fn text_tower(
    settings: &Settings,
) -> Result<(crate::analyzers::embedder::TextTower, crate::models::Installed), String> {
    let name = settings.embedder.clone().ok_or_else(|| {
        "search by meaning needs a CLIP-class model: `bucketlens models fetch clip-vit-b32`, then \
         `[labeler] embedder = \"clip-vit-b32\"` and a relabel (docs/searching.md, \"Search by meaning\")"
            .to_string()
    })?;
    let (engine, library) = (settings.engine, settings.onnxruntime.clone());
    let loading = tokio::task::spawn_blocking(move || {
        let model =
            crate::models::installed(&name).map_err(|reason| format!("labeler.embedder = {name:?}: {reason}"))?;
        let engine = crate::engine::Engine::resolve(engine, library.as_deref()).map_err(|e| e.to_string())?;
        let tower = crate::analyzers::embedder::TextTower::load(&engine, &model).map_err(|e| e.to_string())?;
        Ok((tower, model))
    });
    loading.await.map_err(|e| format!("loading the text tower failed: {e}"))?
}

/// The local models' files and knobs as the settings give them: what a child
/// labeler ([`crate::stage::isolate`]) loads too, handed over as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LocalModel {
    /// Another classifier, or the built-in model.
    pub custom: Option<ModelFiles>,
    pub options: LocalOptions,
}

impl LocalModel {
    pub fn of(settings: &Settings) -> Self {
        let options = LocalOptions {
            threads: settings.concurrency.get(),
            min_confidence: settings.min_confidence,
            max_labels: settings.max_labels.get(),
            max_pixels: settings.max_pixels,
            faces: settings.faces,
            objects: settings.objects,
            detector: settings.detector.clone(),
            engine: settings.engine,
            onnxruntime: settings.onnxruntime.clone(),
            metadata: settings.metadata,
            hashes: settings.hashes,
            embedding: settings.embedding,
            embedder: settings.embedder.clone(),
            clip_labels: settings.clip_labels,
            text: settings.text,
        };
        Self { custom: settings.model.clone(), options }
    }

    /// Loads it on the blocking pool (about a second).
    pub async fn load(self) -> Result<Arc<dyn Labeler>, ModelError> {
        let loading = tokio::task::spawn_blocking(move || LocalLabeler::load(self.custom.as_ref(), &self.options));
        let labeler = loading.await.map_err(|e| ModelError::Model(format!("loading the model failed: {e}")))??;
        Ok(Arc::new(labeler))
    }
}

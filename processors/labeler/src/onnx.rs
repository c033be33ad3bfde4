//! The local labeler: EfficientNet-Lite0 (ImageNet-1k) in tract, with labels shaped
//! like Rekognition's: Title Case names, confidence 0–100, parents from WordNet, and
//! every ancestor a label of its own whose confidence is the summed probability of
//! its descendants (a cat split across "Tiger Cat" and "Tabby" is still ~94% "Cat").
//!
//! The model and its label file are compiled into the binary (see
//! `models/efficientnet-lite0/PROVENANCE.md`); nothing is fetched at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bucketlens_schemas::{error_codes, ModelInfo};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tract_onnx::prelude::*;

use crate::detector::{merge, Detector, INPUT_SIDE};
use crate::faces::Faces;
use crate::image::{decode, to_tensor, INPUT_SIZE, RESIZE_SHORT_SIDE};
use crate::labeler::{LabelFailure, LabelSet, Labeler, ModelError};
use crate::names::{Hierarchy, Strictness, BUILTIN_NAMES};

const MODEL_NAME: &str = "efficientnet-lite0";
static BUILTIN_MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/model.onnx");
static BUILTIN_LABELS: &[u8] = include_bytes!("../../../models/efficientnet-lite0/labels.json");

/// EfficientNet-Lite0 in process.
pub struct OnnxLabeler {
    inner: Arc<Inner>,
    cpu: Arc<Semaphore>,
}

struct Inner {
    plan: Arc<TypedRunnableModel>,
    /// The face detector (on by default), run on the same decoded image.
    faces: Option<Faces>,
    /// The optional COCO detector, run on the same decoded image.
    detector: Option<Detector>,
    hierarchy: Hierarchy,
    model: ModelInfo,
    min_confidence: f32,
    max_labels: usize,
    max_pixels: u64,
}

/// Knobs of the local labeler (from the validated `[labeler]` settings).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OnnxOptions {
    pub threads: usize,
    pub min_confidence: f32,
    pub max_labels: usize,
    pub max_pixels: u64,
    /// Faces (the built-in BlazeFace), and the confidence (0–100) under which a face
    /// is dropped; `None`: off.
    pub faces: Option<f32>,
    /// The COCO detector's ONNX file (`models/centernet/fetch`), and the confidence
    /// (0–100) under which its detections are dropped.
    pub detector: Option<(PathBuf, f32)>,
}

impl OnnxLabeler {
    /// Loads the built-in model, or `custom = (model.onnx, labels.json)`. Slow (about
    /// a second): call it once, from the blocking pool or before the runtime starts.
    pub fn load(custom: Option<(&Path, &Path)>, options: &OnnxOptions) -> Result<Self, ModelError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|source| ModelError::Read { path: p.display().to_string(), source });
        let (model_bytes, label_bytes, strictness) = match custom {
            Some((m, l)) => (read(m)?, read(l)?, Strictness::Lenient),
            None => (BUILTIN_MODEL.to_vec(), BUILTIN_LABELS.to_vec(), Strictness::Strict),
        };
        // The names table changes what the labels are called: it is part of the version.
        let mut digest = Sha256::new();
        digest.update(&model_bytes);
        digest.update(&label_bytes);
        digest.update(BUILTIN_NAMES);
        let version: String = digest.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
        let plan = load_plan(&model_bytes)?;
        let hierarchy = Hierarchy::build(&label_bytes, 1000, BUILTIN_NAMES, strictness)?;
        let faces = options.faces.map(Faces::load).transpose()?;
        let detector = match &options.detector {
            Some((path, min_confidence)) => Some(Detector::load(path, *min_confidence)?),
            None => None,
        };
        let mut model = ModelInfo { name: MODEL_NAME.to_string(), version };
        // Labels from a classifier alone and with other models differ: say which.
        if let Some(faces) = &faces {
            model.name = format!("{}+blazeface", model.name);
            model.version = format!("{}+{}", model.version, faces.digest);
        }
        if let Some(detector) = &detector {
            model.name = format!("{}+centernet", model.name);
            model.version = format!("{}+{}", model.version, detector.digest);
        }
        let inner = Inner {
            plan,
            faces,
            detector,
            hierarchy,
            model,
            min_confidence: options.min_confidence,
            max_labels: options.max_labels,
            max_pixels: options.max_pixels,
        };
        Ok(Self { inner: Arc::new(inner), cpu: Arc::new(Semaphore::new(options.threads.max(1))) })
    }

    /// Runs the model on prepared input tensors (`3*224*224` floats each): the
    /// model-only path, used by the benchmark as the ceiling.
    pub fn probabilities(&self, tensor: Vec<f32>) -> Result<Vec<f32>, LabelFailure> {
        self.inner.probabilities(tensor)
    }
}

fn load_plan(bytes: &[u8]) -> Result<Arc<TypedRunnableModel>, ModelError> {
    let side = INPUT_SIZE as usize;
    let fact = InferenceFact::dt_shape(f32::datum_type(), tvec!(1, 3, side, side));
    tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .and_then(|m| m.with_input_fact(0, fact))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| ModelError::Model(format!("{e:#}")))
}

impl Inner {
    fn probabilities(&self, tensor: Vec<f32>) -> Result<Vec<f32>, LabelFailure> {
        let side = INPUT_SIZE as usize;
        let internal = |e: TractError| LabelFailure {
            code: error_codes::MODEL_ERROR,
            message: format!("{e:#}"),
            retryable: false,
        };
        let input = Tensor::from_shape(&[1, 3, side, side], &tensor).map_err(internal)?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(internal)?;
        let logits: Vec<f32> = outputs[0].to_plain_array_view::<f32>().map_err(internal)?.iter().copied().collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        Ok(exp.into_iter().map(|e| e / sum).collect())
    }

    fn label_blocking(&self, bytes: &[u8]) -> Result<LabelSet, LabelFailure> {
        crash_for_tests(bytes);
        // One decode for every model, large enough for the largest input; the
        // classifier's input is cut from it.
        let side = if self.detector.is_some() { INPUT_SIDE } else { RESIZE_SHORT_SIDE };
        let (rgb, properties) = decode(bytes, self.max_pixels, side)?;
        let probabilities = self.probabilities(to_tensor(&rgb))?;
        let mut labels = self.hierarchy.labels(&probabilities, self.min_confidence, self.max_labels);
        if let Some(faces) = &self.faces {
            let found = faces.detect(&rgb)?;
            labels = crate::faces::merge(labels, &found, self.hierarchy.shaped("Person"), self.min_confidence);
        }
        if let Some(detector) = &self.detector {
            labels = merge(labels, &detector.detect(&rgb)?, self.max_labels);
        }
        labels.truncate(self.max_labels);
        Ok(LabelSet { labels, image: Some(properties), model: None })
    }
}

/// The content that makes a labeler process abort, when `BUCKETLENS_TEST_ABORT` is
/// set: the crash tests' real crash. (Every decode a header could drive past memory
/// is bounded now, so no image does it by itself any more.)
pub const TEST_ABORT_MARKER: &[u8] = b"\x89PNG\r\n\x1a\nbucketlens-test-abort";

fn crash_for_tests(bytes: &[u8]) {
    if bytes.starts_with(TEST_ABORT_MARKER) && std::env::var_os("BUCKETLENS_TEST_ABORT").is_some() {
        eprintln!("BUCKETLENS_TEST_ABORT: aborting on the test object");
        std::process::abort();
    }
}

#[async_trait]
impl Labeler for OnnxLabeler {
    fn model(&self) -> &ModelInfo {
        &self.inner.model
    }

    async fn label(&self, image: Vec<u8>) -> Result<LabelSet, LabelFailure> {
        let _permit = self.cpu.acquire().await.map_err(|_| LabelFailure {
            code: error_codes::SHUTTING_DOWN,
            message: "the labeler is shutting down".into(),
            retryable: true,
        })?;
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || inner.label_blocking(&image)).await {
            Ok(result) => result,
            // A decoder that panics on hostile input must not take the pipeline down.
            Err(e) if e.is_panic() => {
                Err(LabelFailure::permanent(error_codes::CORRUPT_IMAGE, "the decoder failed on this image (panic)"))
            }
            Err(e) => Err(LabelFailure { code: error_codes::CANCELLED, message: e.to_string(), retryable: true }),
        }
    }
}

#[cfg(test)]
mod tests;

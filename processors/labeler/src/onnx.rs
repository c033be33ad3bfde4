//! The local labeler: EfficientNet-Lite0 (ImageNet-1k; or Lite1, Lite2, a user's own
//! classifier) on the [`crate::engine`] (ONNX Runtime, or tract), with labels shaped like Rekognition's (the hierarchy and the
//! names people search for: [`crate::names`]), plus faces ([`crate::faces`]), objects
//! ([`crate::objects`]) and the optional COCO detector, all on one decode of the image.
//!
//! The model, its label file, the names table and the face detector are compiled into
//! the binary (see `models/*/PROVENANCE.md`); nothing is fetched at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bucketlens_schemas::{error_codes, Label, ModelInfo};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::detector::{merge, plain, Detection, Detector, INPUT_SIDE};
use crate::engine::{Engine, EngineChoice, Net};
use crate::faces::Faces;
use crate::image::{decode, resize_short_side, to_tensor_sized, INPUT_SIZE};
use crate::labeler::{LabelFailure, LabelSet, Labeler, ModelError};
use crate::names::{Hierarchy, Strictness, BUILTIN_NAMES};
use crate::objects::{fallback_parents, Objects};

const MODEL_NAME: &str = "efficientnet-lite0";
static BUILTIN_MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/model.onnx");
static BUILTIN_LABELS: &[u8] = include_bytes!("../../../models/efficientnet-lite0/labels.json");

/// EfficientNet-Lite0 in process.
pub struct OnnxLabeler {
    inner: Arc<Inner>,
    cpu: Arc<Semaphore>,
    /// The threads that decode and run the models, `threads` of them and no more:
    /// JPEG decoding runs its own parallel parts on them too, and what they allocate
    /// stays in their few malloc arenas instead of one per thread of the blocking pool
    /// (for 120 example photos the peak RSS was 465 MiB on the blocking pool, 202–255
    /// MiB on this one).
    pool: Arc<rayon::ThreadPool>,
}

struct Inner {
    classifier: Net,
    engine: Engine,
    /// The face detector (on by default), run on the same decoded image, and the
    /// hierarchy's `Person` label its faces add to (shaped once, at load).
    faces: Option<(Faces, Option<Label>)>,
    /// The object detector (on by default), run on the same decoded image.
    objects: Option<Objects>,
    /// The optional COCO detector, run on the same decoded image.
    detector: Option<Detector>,
    hierarchy: Hierarchy,
    model: ModelInfo,
    /// The classifier's input side (224 for Lite0, 240 for Lite1, 260 for Lite2).
    side: u32,
    min_confidence: f32,
    max_labels: usize,
    max_pixels: u64,
}

/// Another classifier than the built-in one: one of the EfficientNet-Lite models
/// `models/efficientnet-lite0/fetch` converts, or a user's own ONNX file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelFiles {
    /// The model's name in every record (`efficientnet-lite2`; `efficientnet-lite0` for
    /// a user's own file, as before).
    pub name: String,
    pub model: PathBuf,
    /// Its label file; `None`: the built-in one (the same 1000 ImageNet classes).
    pub labels: Option<PathBuf>,
    /// The input's side (the model takes `[N, 3, side, side]`).
    pub side: u32,
    /// Made by the fetch script (its absence is told as "not fetched").
    pub fetched: bool,
}

/// How many ONNX Runtime sessions each model gets for `threads` labeling threads.
///
/// With the object detector on, it is about half of an image's work and the classifier
/// about a quarter, so two threads take turns in one session of each instead of each
/// holding its own (about 50 MiB of weights and activations apiece). Measured on 2
/// cores: the same images/s, 46 MiB less peak RSS for the detector's and 33–43 MiB less
/// again for the classifier's. The classifier alone is all of the work: sharing its
/// session then slowed it from about 80 to 48 images/s, so each thread keeps its own.
/// The face detector (about a tenth of the work then, 13 MiB a session) shares its
/// sessions the same way while the object detector is on: measured in the bench (see
/// the README's Benchmarks). A user's own detector keeps one per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sessions {
    pub classifier: usize,
    pub faces: usize,
    pub objects: usize,
    pub detector: usize,
}

impl Sessions {
    pub fn new(threads: usize, objects_on: bool) -> Self {
        let threads = threads.max(1);
        let shared = threads.div_ceil(2);
        Self {
            classifier: if objects_on { shared } else { threads },
            faces: if objects_on { shared } else { threads },
            objects: shared,
            detector: threads,
        }
    }
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
    /// Objects (the built-in SSD detector), and the confidence (0–100) under which an
    /// object is dropped; `None`: off.
    #[serde(default)]
    pub objects: Option<f32>,
    /// The COCO detector's ONNX file (`models/centernet/fetch`), and the confidence
    /// (0–100) under which its detections are dropped.
    pub detector: Option<(PathBuf, f32)>,
    /// The inference engine asked for, and ONNX Runtime's library if not in the
    /// usual places.
    #[serde(default)]
    pub engine: EngineChoice,
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
}

impl Default for OnnxOptions {
    /// The `[labeler]` defaults on one thread (tests and benchmarks start from it).
    fn default() -> Self {
        Self {
            threads: 1,
            min_confidence: 50.0,
            max_labels: 20,
            max_pixels: 100_000_000,
            faces: Some(60.0),
            objects: Some(50.0),
            detector: None,
            engine: EngineChoice::Auto,
            onnxruntime: None,
        }
    }
}

/// A classifier's version: a digest of its weights, its labels and the names table
/// (which changes what the labels are called, so it is part of the version).
pub fn model_version(model: &[u8], labels: &[u8], names: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(model);
    digest.update(labels);
    digest.update(names);
    digest.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl OnnxLabeler {
    /// Loads the built-in model, or another classifier (`custom`). Slow (about a
    /// second): call it once, from the blocking pool or before the runtime starts.
    pub fn load(custom: Option<&ModelFiles>, options: &OnnxOptions) -> Result<Self, ModelError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|source| ModelError::Read { path: p.display().to_string(), source });
        let (name, side) = custom.map_or((MODEL_NAME, INPUT_SIZE), |c| (c.name.as_str(), c.side));
        let model_bytes = match custom {
            Some(c) if c.fetched && !c.model.exists() => {
                return Err(ModelError::NotFetched { name: c.name.clone(), path: c.model.display().to_string() })
            }
            Some(c) => read(&c.model)?,
            None => BUILTIN_MODEL.to_vec(),
        };
        // Another classifier of the same 1000 classes may use the built-in labels.
        let (label_bytes, strictness) = match custom.and_then(|c| c.labels.as_deref()) {
            Some(l) => (read(l)?, Strictness::Lenient),
            None => (BUILTIN_LABELS.to_vec(), Strictness::Strict),
        };
        let version = model_version(&model_bytes, &label_bytes, BUILTIN_NAMES);
        let engine = Engine::resolve(options.engine, options.onnxruntime.as_deref())?;
        let threads = options.threads.max(1);
        let shape = [1, 3, side as usize, side as usize];
        let sessions = Sessions::new(threads, options.objects.is_some());
        let classifier = Net::load(&engine, &model_bytes, &shape, sessions.classifier, "the classifier")?;
        let hierarchy = Hierarchy::build(&label_bytes, 1000, BUILTIN_NAMES, strictness)?;
        let faces = match options.faces {
            Some(min_confidence) => {
                Some((Faces::load(&engine, sessions.faces, min_confidence)?, hierarchy.shaped("Person")))
            }
            None => None,
        };
        let objects = match options.objects {
            Some(min_confidence) => Some(Objects::load(&engine, sessions.objects, min_confidence)?),
            None => None,
        };
        let detector = match &options.detector {
            Some((path, min_confidence)) => Some(Detector::load(&engine, sessions.detector, path, *min_confidence)?),
            None => None,
        };
        let mut model = ModelInfo { name: name.to_string(), version };
        // Labels from a classifier alone and with other models differ: say which.
        if let Some((faces, _)) = &faces {
            model.name = format!("{}+blazeface", model.name);
            model.version = format!("{}+{}", model.version, faces.digest);
        }
        if let Some(objects) = &objects {
            model.name = format!("{}+ssd-oidv4", model.name);
            model.version = format!("{}+{}", model.version, objects.digest);
        }
        if let Some(detector) = &detector {
            model.name = format!("{}+centernet", model.name);
            model.version = format!("{}+{}", model.version, detector.digest);
        }
        let inner = Inner {
            classifier,
            engine,
            faces,
            objects,
            detector,
            hierarchy,
            model,
            side,
            min_confidence: options.min_confidence,
            max_labels: options.max_labels,
            max_pixels: options.max_pixels,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bucketlens-label-{i}"))
            .build()
            .map_err(|e| ModelError::Model(format!("cannot start the labeling threads: {e}")))?;
        Ok(Self { inner: Arc::new(inner), cpu: Arc::new(Semaphore::new(threads)), pool: Arc::new(pool) })
    }

    /// Runs the model on prepared input tensors (`3*224*224` floats each): the
    /// model-only path, used by the benchmark as the ceiling.
    pub fn probabilities(&self, tensor: Vec<f32>) -> Result<Vec<f32>, LabelFailure> {
        self.inner.probabilities(tensor)
    }

    /// The engine the models run on (for the start-up line).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

impl Inner {
    fn probabilities(&self, tensor: Vec<f32>) -> Result<Vec<f32>, LabelFailure> {
        let logits = self.classifier.run(tensor)?.into_iter().next().map(|o| o.values).unwrap_or_default();
        if logits.is_empty() {
            return Err(LabelFailure::permanent(error_codes::MODEL_ERROR, "the classifier gave no output"));
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        Ok(exp.into_iter().map(|e| e / sum).collect())
    }

    fn label_blocking(&self, bytes: &[u8]) -> Result<LabelSet, LabelFailure> {
        crash_for_tests(bytes);
        #[cfg(test)]
        if bytes == tests::PANIC {
            panic!("a decoder panics on this input");
        }
        // One decode for every model, large enough for the largest input; the
        // classifier's input is cut from it.
        let mut side = resize_short_side(self.side);
        if self.objects.is_some() {
            side = side.max(crate::objects::SIDE);
        }
        if self.detector.is_some() {
            side = side.max(INPUT_SIDE);
        }
        let (rgb, properties) = decode(bytes, self.max_pixels, side)?;
        let probabilities = self.probabilities(to_tensor_sized(&rgb, self.side)?)?;
        let mut labels = self.hierarchy.labels(&probabilities, self.min_confidence, self.max_labels);
        if let Some((faces, person)) = &self.faces {
            labels = crate::faces::merge(labels, &faces.detect(&rgb)?, person.clone(), self.min_confidence);
        }
        let shape = |name: &str| self.hierarchy.shaped(name).unwrap_or_else(|| plain(name, fallback_parents(name)));
        // What a detector finds under `min-confidence` is no label either.
        let sure = |found: Vec<Detection>| -> Vec<Detection> {
            found.into_iter().filter(|d| d.confidence >= self.min_confidence).collect()
        };
        if let Some(objects) = &self.objects {
            labels = merge(labels, &sure(objects.detect(&rgb)?), shape);
        }
        if let Some(detector) = &self.detector {
            labels = merge(labels, &sure(detector.detect(&rgb)?), shape);
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
        bucketlens_runtime::say!("BUCKETLENS_TEST_ABORT: aborting on the test object");
        std::process::abort();
    }
}

#[async_trait]
impl Labeler for OnnxLabeler {
    fn model(&self) -> &ModelInfo {
        &self.inner.model
    }

    fn runs_on(&self) -> Option<String> {
        Some(self.inner.engine.describe())
    }

    async fn label(&self, image: Vec<u8>) -> Result<LabelSet, LabelFailure> {
        let _permit = self.cpu.acquire().await.map_err(|_| LabelFailure {
            code: error_codes::SHUTTING_DOWN,
            message: "the labeler is shutting down".into(),
            retryable: true,
        })?;
        let inner = Arc::clone(&self.inner);
        let (done, result) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.label_blocking(&image)));
            let _ = done.send(outcome);
        });
        match result.await {
            Ok(Ok(result)) => result,
            // A decoder that panics on hostile input must not take the pipeline down.
            Ok(Err(_panic)) => {
                Err(LabelFailure::permanent(error_codes::CORRUPT_IMAGE, "the decoder failed on this image (panic)"))
            }
            Err(_) => Err(LabelFailure {
                code: error_codes::CANCELLED,
                message: "the labeling thread stopped".into(),
                retryable: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests;

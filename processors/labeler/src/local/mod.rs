//! The local labeler: the analyzers ([`crate::analyzers`]) on this machine's CPU, on
//! the [`crate::engine`] (ONNX Runtime, or tract). It reads what the stage hands it,
//! decodes each image once ([`crate::image`]), runs the enabled analyzers in order on
//! its own labeling threads and merges their findings into one [`LabelSet`].
//!
//! The models, the label file and the names table are compiled into the binary (see
//! `models/*/PROVENANCE.md`); nothing is fetched at run time.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bucketlens_schemas::{error_codes, ModelInfo};
use tokio::sync::Semaphore;

use crate::analyzers::classifier::{Classifier, ModelFiles};
use crate::analyzers::detector::Detector;
use crate::analyzers::embedder::{ImageTower, TextTower, ZeroShot};
use crate::analyzers::faces::Faces;
use crate::analyzers::objects::Objects;
use crate::analyzers::text::Text;
use crate::analyzers::{Analyzer, Naming, Picture};
use crate::engine::{Engine, EngineChoice};
use crate::image::decode;
use crate::labeler::{LabelFailure, LabelSet, Labeler, ModelError};
use crate::metadata::{self, MetadataOptions};

/// The analyzers on this machine, in process.
pub struct LocalLabeler {
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
    /// The classifier again, for [`LocalLabeler::probabilities`].
    classifier: Classifier,
    /// The enabled analyzers, in the order they run: the classifier first.
    analyzers: Vec<Box<dyn Analyzer>>,
    naming: Naming,
    engine: Engine,
    model: ModelInfo,
    /// The short side of the one decode: the largest any analyzer asks for.
    side: u32,
    max_pixels: u64,
    metadata: MetadataOptions,
    hashes: bool,
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
pub struct LocalOptions {
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
    /// What the photo says about itself ([`crate::metadata`]), read beside the analyzers.
    #[serde(default)]
    pub metadata: MetadataOptions,
    /// The content and perceptual hashes ([`crate::hashes`]), made beside the analyzers.
    #[serde(default)]
    pub hashes: bool,
    /// The classifier's embedding ([`crate::analyzers::classifier`]), for similar photos.
    #[serde(default)]
    pub embedding: bool,
    /// A CLIP-class model installed under [`crate::models::dir`] whose image tower
    /// makes the embedding instead of the classifier ([`crate::analyzers::embedder`]).
    #[serde(default)]
    pub embedder: Option<String>,
    /// Zero-shot labels from the embedder ([`crate::analyzers::embedder::ZeroShot`]).
    #[serde(default)]
    pub clip_labels: bool,
    /// The words in the photo ([`crate::analyzers::text`]), and the confidence (0–100)
    /// under which a line is dropped; `None`: off.
    #[serde(default)]
    pub text: Option<f32>,
}

impl Default for LocalOptions {
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
            metadata: MetadataOptions::default(),
            hashes: true,
            embedding: true,
            embedder: None,
            clip_labels: false,
            text: None,
        }
    }
}

/// The analyzers `options` turn on, in the order they run (each adds to what the
/// ones before it found): the classifier, then faces, objects, the COCO detector and
/// the embedder, and the text reader. A new analyzer is one line here.
pub fn enabled(
    engine: &Engine,
    classifier: Classifier,
    options: &LocalOptions,
    sessions: Sessions,
) -> Result<Vec<Box<dyn Analyzer>>, ModelError> {
    let embedder = match options.embedder.as_deref().filter(|_| options.embedding) {
        Some(name) => {
            let model = crate::models::installed(name)
                .map_err(|reason| ModelError::Embedder { name: name.to_string(), reason })?;
            let tower = ImageTower::load(engine, &model, sessions.classifier)?;
            Some(if options.clip_labels {
                let text = TextTower::load(engine, &model)?;
                tower.with_zero_shot(ZeroShot::build(&text, crate::names::BUILTIN_NAMES)?)
            } else {
                tower
            })
        }
        None => None,
    };
    // An embedder's embedding replaces the classifier's.
    let classifier = if embedder.is_some() { classifier.embedding(false) } else { classifier };
    let mut analyzers: Vec<Box<dyn Analyzer>> = vec![Box::new(classifier)];
    if let Some(min_confidence) = options.faces {
        analyzers.push(Box::new(Faces::load(engine, sessions.faces, min_confidence)?));
    }
    if let Some(min_confidence) = options.objects {
        analyzers.push(Box::new(Objects::load(engine, sessions.objects, min_confidence)?));
    }
    if let Some((path, min_confidence)) = &options.detector {
        analyzers.push(Box::new(Detector::load(engine, sessions.detector, path, *min_confidence)?));
    }
    if let Some(embedder) = embedder {
        analyzers.push(Box::new(embedder));
    }
    if let Some(min_confidence) = options.text {
        analyzers.push(Box::new(Text::load(engine, sessions.classifier, min_confidence)?));
    }
    Ok(analyzers)
}

/// The model every record names: the analyzers' names and versions joined by `+`
/// (`efficientnet-lite0+blazeface+ssd-oidv4`): labels from a classifier alone and
/// with other models differ, so the model says which.
fn model_of(analyzers: &[Box<dyn Analyzer>]) -> ModelInfo {
    let (names, versions): (Vec<&str>, Vec<&str>) = analyzers.iter().map(|a| a.model()).unzip();
    ModelInfo { name: names.join("+"), version: versions.join("+") }
}

impl LocalLabeler {
    /// Loads the built-in classifier, or another one (`custom`), and the analyzers
    /// `options` turn on. Slow (about a second): call it once, from the blocking pool
    /// or before the runtime starts.
    pub fn load(custom: Option<&ModelFiles>, options: &LocalOptions) -> Result<Self, ModelError> {
        let engine = Engine::resolve(options.engine, options.onnxruntime.as_deref())?;
        let threads = options.threads.max(1);
        let sessions = Sessions::new(threads, options.objects.is_some());
        let (classifier, hierarchy) = Classifier::load(&engine, custom, sessions.classifier)?;
        let classifier = classifier.embedding(options.embedding);
        let naming = Naming::new(hierarchy, options.min_confidence, options.max_labels);
        let analyzers = enabled(&engine, classifier.clone(), options, sessions)?;
        let model = model_of(&analyzers);
        let side = analyzers.iter().map(|a| a.side()).max().unwrap_or(0);
        let inner = Inner {
            classifier,
            analyzers,
            naming,
            engine,
            model,
            side,
            max_pixels: options.max_pixels,
            metadata: options.metadata,
            hashes: options.hashes,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bucketlens-label-{i}"))
            .build()
            .map_err(|e| ModelError::Model(format!("cannot start the labeling threads: {e}")))?;
        Ok(Self { inner: Arc::new(inner), cpu: Arc::new(Semaphore::new(threads)), pool: Arc::new(pool) })
    }

    /// Runs the classifier alone on prepared input tensors (`3*224*224` floats each):
    /// the model-only path, used by the benchmark as the ceiling.
    pub fn probabilities(&self, tensor: Vec<f32>) -> Result<Vec<f32>, LabelFailure> {
        self.inner.classifier.probabilities(tensor)
    }

    /// The engine the models run on (for the start-up line).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

impl Inner {
    fn label_blocking(&self, bytes: &[u8]) -> Result<LabelSet, LabelFailure> {
        crash_for_tests(bytes);
        #[cfg(test)]
        if bytes == tests::PANIC {
            panic!("a decoder panics on this input");
        }
        // One decode for every analyzer, large enough for the largest input.
        let (rgb, properties) = decode(bytes, self.max_pixels, self.side)?;
        let picture = Picture { bytes, rgb: &rgb, properties: &properties };
        let mut found = LabelSet::default();
        found.metadata = metadata::read(bytes, &self.metadata, &mut found.notes).map(Box::new);
        if self.hashes {
            found.hashes = Some(crate::hashes::of(bytes, &rgb, &mut found.notes));
        }
        for analyzer in &self.analyzers {
            analyzer.analyze(&picture, &self.naming, &mut found)?;
        }
        found.labels.truncate(self.naming.max_labels);
        found.image = Some(properties);
        Ok(found)
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
impl Labeler for LocalLabeler {
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

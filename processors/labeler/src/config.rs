//! `[labeler]` configuration: serde struct with defaults, validated into [`Settings`].

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

use crate::analyzers::classifier::ModelFiles;
use crate::engine::EngineChoice;
use crate::metadata::{GpsSetting, MetadataOptions};
use crate::rekognition::RekognitionConfig;

/// Which labeler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The built-in EfficientNet-Lite0 (or `model`), on this machine's CPUs.
    Local,
    /// Amazon Rekognition DetectLabels (`[labeler.rekognition]`).
    Rekognition,
}

impl Backend {
    /// What the backend is, for start-up lines and `config check`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Local => "the local model",
            Self::Rekognition => "Amazon Rekognition",
        }
    }
}

/// What the labeler does with an object a listing or inventory saw archived (S3
/// Glacier Flexible Retrieval, Deep Archive, Intelligent-Tiering's archive tiers),
/// or whose GET S3 refused as archived (`InvalidObjectState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Archived {
    /// Skip it and count it: no GET (one HEAD for one a listing saw archived, to find
    /// it restored), no label record, nothing in the dead letters. A restored object
    /// is labeled.
    Skip,
    /// Try it like any object: FAILED (`ObjectArchived`) with a dead letter.
    Fail,
}

/// As written in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    pub backend: Backend,
    /// The consumer group of the labelers.
    pub group: String,
    /// Images decoded and labeled at once (CPU threads for the local model, calls in
    /// flight for Rekognition). 0 = the number of CPUs (local), 16 (Rekognition).
    pub concurrency: usize,
    /// Records in flight (read from the log, not yet finished) per process; each may
    /// hold an object's bytes. 0 = 4 x concurrency.
    pub max_in_flight: usize,
    /// Labels under this confidence (0-100) are dropped.
    pub min_confidence: f32,
    /// At most this many labels per image, highest confidence first.
    pub max_labels: usize,
    /// Objects larger than this are FAILED without being decoded.
    pub max_bytes: u64,
    /// Images with more pixels than this are FAILED without being decoded
    /// (decompression bombs).
    pub max_pixels: u64,
    /// Attempts for a retryable failure (read timeout, throttling) before FAILED.
    pub max_attempts: u32,
    /// An object is FAILED (`LabelerCrashed`) once labelers died this many times
    /// while labeling it. After the first such death the object is labeled alone, in
    /// a separate process, so that only the culprit is counted again.
    pub max_crashes: u32,
    /// First retry delay; doubles each attempt.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// How often finished offsets are committed.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// The classifier: `efficientnet-lite0` (built in, the default), `efficientnet-lite1`
    /// or `efficientnet-lite2` (converted by `models/efficientnet-lite0/fetch`), or the
    /// path of an ONNX model of the same input and classes, with `labels`.
    pub model: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    /// Faces, with the built-in BlazeFace detector (local backend): a `Face` label
    /// with a box per face, and `Head` and `Person` above it.
    pub faces: bool,
    /// Faces under this confidence (0-100) are dropped.
    pub faces_min_confidence: f32,
    /// Objects, with the built-in SSD detector (local backend): people, vehicles,
    /// cars, bicycles, cats, dogs, furniture, laptops, bottles, cups, books, cameras,
    /// shoes… get labels with a box per object, merged with the classifier's.
    pub objects: bool,
    /// Objects under this confidence (0-100) are dropped.
    pub objects_min_confidence: f32,
    /// Each image's SHA-256 and perceptual hash, for `duplicates` and `similar
    /// --image` (about 1% of an image's labeling; a new setting relabels once).
    pub hashes: bool,
    /// Each image's embedding (the classifier's pooled features, 1280 signed bytes),
    /// for `similar` and "More like this" (local backend; a new setting relabels once).
    pub embedding: bool,
    /// A CLIP-class model (`bucketlens models fetch NAME` installs it) whose image
    /// tower makes each image's embedding instead of the classifier: free-text search
    /// by meaning (`search --semantic`). Its name is part of the labeler's identity:
    /// switching relabels. Left out: the classifier's features.
    pub embedder: Option<String>,
    /// With an embedder: zero-shot labels too. Each image is compared with "a photo of
    /// NAME" for the names table's labels and models/clip/vocabulary.toml's (brick,
    /// coins, grass, galaxy, retina, snow, colours…), and a name at min-confidence or
    /// above becomes a label, with its parents. A new setting relabels once.
    pub clip_labels: bool,
    /// The words in each photo (local backend: PP-OCRv4, which `models/ppocr/fetch`
    /// installs): searchable with `text:`, shown with their boxes, and a `Text` label.
    /// Off by default: it costs more than the rest of the labeler together (see the
    /// README's Benchmarks). A new setting relabels once.
    pub text: bool,
    /// Lines read with less confidence (0-100) than this are dropped.
    pub text_min_confidence: f32,
    /// The optional COCO object detector (`models/centernet/fetch` makes it): people,
    /// cars, dogs… get labels with bounding boxes, merged with the classifier's.
    pub detector: Option<PathBuf>,
    /// Detections under this confidence (0-100) are dropped.
    pub detector_min_confidence: f32,
    /// The inference engine of the local models: `auto` (ONNX Runtime where
    /// `scripts/fetch-onnxruntime` installed it, tract otherwise), `onnxruntime`
    /// (fail at start-up without it) or `tract`.
    pub engine: EngineChoice,
    /// ONNX Runtime's library file, where it is not in the usual places
    /// (`ORT_DYLIB_PATH` is read too).
    pub onnxruntime: Option<PathBuf>,
    pub rekognition: RekognitionConfig,
    pub metadata: MetadataConfig,
    /// Archived objects: `skip` (counted, not read) or `fail` (FAILED, `ObjectArchived`).
    pub archived: Archived,
    /// At most this many images labeled by each labeler process in one run (`index`,
    /// `label`; `--max-images` too): the rest stay on the log, unlabeled, for a run
    /// with a larger budget. None: no limit.
    pub budget: Option<u64>,
}

/// `[labeler.metadata]`: what each photo says about itself (EXIF, XMP, IPTC).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MetadataConfig {
    /// Read when, with what and where each photo was taken, and its keywords, title,
    /// caption and rating (from its bytes; with Rekognition by reference, from one
    /// ranged GET of its first 128 KiB).
    pub enabled: bool,
    /// `exact`: keep the GPS position and the place it names; `place`: the place
    /// only (town or city, region, country), no coordinates; `off`: neither. The
    /// label topic's readers and `serve`'s token holders see what is kept.
    pub gps: GpsSetting,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        let defaults = MetadataOptions::default();
        Self { enabled: defaults.enabled, gps: defaults.gps }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            group: "bucketlens-labeler".into(),
            concurrency: 0,
            max_in_flight: 0,
            min_confidence: 50.0,
            max_labels: 20,
            max_bytes: 50 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_attempts: 5,
            max_crashes: 3,
            retry_backoff: Duration::from_millis(200),
            commit_interval: Duration::from_millis(500),
            model: None,
            labels: None,
            faces: true,
            faces_min_confidence: 60.0,
            objects: true,
            objects_min_confidence: 50.0,
            hashes: true,
            embedding: true,
            embedder: None,
            clip_labels: false,
            text: false,
            text_min_confidence: 80.0,
            detector: None,
            detector_min_confidence: 40.0,
            engine: EngineChoice::Auto,
            onnxruntime: None,
            rekognition: RekognitionConfig::default(),
            metadata: MetadataConfig::default(),
            archived: Archived::Skip,
            budget: None,
        }
    }
}

/// Validated settings: every value usable as is.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    pub group: String,
    pub concurrency: NonZeroUsize,
    pub max_in_flight: NonZeroUsize,
    pub min_confidence: f32,
    pub max_labels: NonZeroUsize,
    pub max_bytes: u64,
    pub max_pixels: u64,
    pub max_attempts: u32,
    pub max_crashes: u32,
    pub retry_backoff: Duration,
    pub commit_interval: Duration,
    /// `None`: the built-in EfficientNet-Lite0.
    pub model: Option<ModelFiles>,
    /// The face detector's minimum confidence, when faces are on.
    pub faces: Option<f32>,
    /// The object detector's minimum confidence, when objects are on.
    pub objects: Option<f32>,
    pub detector: Option<(PathBuf, f32)>,
    pub engine: EngineChoice,
    pub onnxruntime: Option<PathBuf>,
    pub rekognition: RekognitionConfig,
    pub metadata: MetadataOptions,
    pub hashes: bool,
    pub embedding: bool,
    /// A CLIP-class model's name (`labeler.embedder`): its image tower makes the embeddings.
    pub embedder: Option<String>,
    /// Zero-shot labels from the embedder (`labeler.clip-labels`).
    pub clip_labels: bool,
    /// The minimum confidence of a line of text, when text is read: `labeler.text` on
    /// the local backend, `labeler.rekognition.detect-text` on Rekognition.
    pub text: Option<f32>,
    /// Label every upsert, even a version this labeler already labeled (`--force`).
    pub force: bool,
    pub archived: Archived,
    /// At most this many images labeled by this process (`budget`, `--max-images`).
    pub budget: Option<u64>,
}

/// The classifiers `labeler.model` names, with their input side (`None`: built in).
pub const NAMED_MODELS: [(&str, Option<u32>); 3] =
    [("efficientnet-lite0", None), ("efficientnet-lite1", Some(240)), ("efficientnet-lite2", Some(260))];

/// Where `models/efficientnet-lite0/fetch` puts a converted model.
pub fn fetched_model_path(name: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/bucketlens/models").join(name).join("model.onnx")
}

impl Config {
    /// Checks every value (no IO) and fills in the CPU count: the settings, or every
    /// key that is wrong.
    pub fn validate(&self) -> Result<Settings, Vec<Invalid>> {
        let mut problems = Problems::default();
        // 0 means the default: the CPUs (local model), or 16 calls in flight (Rekognition).
        let cpus = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        let default = if self.backend == Backend::Rekognition { NonZeroUsize::new(16).unwrap_or(cpus) } else { cpus };
        let concurrency = NonZeroUsize::new(self.concurrency).unwrap_or(default);
        let in_flight = if self.max_in_flight == 0 { 4 * concurrency.get() } else { self.max_in_flight };
        let max_in_flight = problems.at_least_one("labeler.max-in-flight", in_flight);
        let min_confidence = problems.percent("labeler.min-confidence", self.min_confidence);
        let max_labels = problems.at_least_one("labeler.max-labels", self.max_labels);
        problems.check(self.max_bytes > 0, "labeler.max-bytes", || "must be at least 1 (bytes), got 0".into());
        problems.check(self.max_crashes > 0, "labeler.max-crashes", || "must be at least 1, got 0".into());
        problems.check(self.max_pixels > 0, "labeler.max-pixels", || "must be at least 1, got 0".into());
        let named = self.model.as_deref().and_then(Path::to_str).and_then(|m| NAMED_MODELS.iter().find(|n| n.0 == m));
        problems.check(named.is_some() || self.model.is_some() == self.labels.is_some(), "labeler.model", || {
            let names: Vec<&str> = NAMED_MODELS.iter().map(|n| n.0).collect();
            format!("is one of {names:?}, or a file path that goes with labeler.labels: set both or neither")
        });
        let model = match (named, &self.model) {
            (Some((_, None)), _) => {
                problems.check(self.labels.is_none(), "labeler.labels", || {
                    "goes with a model file path, not with the built-in efficientnet-lite0".into()
                });
                None
            }
            (Some(&(name, Some(side))), _) => Some(ModelFiles {
                name: name.to_string(),
                model: fetched_model_path(name),
                labels: self.labels.clone(),
                side,
                fetched: true,
            }),
            (None, Some(path)) => Some(ModelFiles {
                name: "efficientnet-lite0".into(),
                model: path.clone(),
                labels: self.labels.clone(),
                side: crate::image::INPUT_SIZE,
                fetched: false,
            }),
            (None, None) => None,
        };
        let detector_min_confidence = problems.percent("labeler.detector-min-confidence", self.detector_min_confidence);
        let faces_min_confidence = problems.percent("labeler.faces-min-confidence", self.faces_min_confidence);
        let objects_min_confidence = problems.percent("labeler.objects-min-confidence", self.objects_min_confidence);
        let text_min_confidence = problems.percent("labeler.text-min-confidence", self.text_min_confidence);
        problems.check(!self.text || self.backend == Backend::Local, "labeler.text", || {
            "reads text on the local backend; with Rekognition, set labeler.rekognition.detect-text".into()
        });
        if let Some(name) = &self.embedder {
            problems.check(crate::models::is_name(name), "labeler.embedder", || {
                format!("is a model's name from `bucketlens models list` (letters, digits, - _ .), got {name:?}")
            });
            problems.check(self.embedding, "labeler.embedder", || {
                "makes the embeddings, so it needs labeler.embedding = true".into()
            });
            problems.check(self.backend == Backend::Local, "labeler.embedder", || {
                "runs on the local backend, not with Rekognition".into()
            });
        }
        problems.check(!self.clip_labels || self.embedder.is_some(), "labeler.clip-labels", || {
            "compares images with phrases by the embedder's model: set labeler.embedder too".into()
        });
        problems.check(self.budget != Some(0), "labeler.budget", || "must be at least 1 image, or left out".into());
        problems.section(self.rekognition.validate());
        problems.finish(|| Settings {
            backend: self.backend,
            group: self.group.clone(),
            concurrency,
            max_in_flight,
            min_confidence,
            max_labels,
            max_bytes: self.max_bytes,
            max_pixels: self.max_pixels,
            max_attempts: self.max_attempts.max(1),
            max_crashes: self.max_crashes,
            retry_backoff: self.retry_backoff,
            commit_interval: self.commit_interval,
            model,
            faces: self.faces.then_some(faces_min_confidence),
            objects: self.objects.then_some(objects_min_confidence),
            detector: self.detector.clone().map(|p| (p, detector_min_confidence)),
            engine: self.engine,
            onnxruntime: self.onnxruntime.clone(),
            rekognition: self.rekognition.clone(),
            metadata: MetadataOptions { enabled: self.metadata.enabled, gps: self.metadata.gps },
            hashes: self.hashes,
            embedding: self.embedding,
            embedder: self.embedder.clone(),
            clip_labels: self.clip_labels,
            // Either reader: the local one, or Rekognition's DetectText.
            text: (self.text || (self.backend == Backend::Rekognition && self.rekognition.detect_text))
                .then_some(text_min_confidence),
            force: false,
            archived: self.archived,
            budget: self.budget,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_model(model: Option<&str>, labels: Option<&str>) -> Result<Settings, Vec<Invalid>> {
        Config { model: model.map(PathBuf::from), labels: labels.map(PathBuf::from), ..Config::default() }.validate()
    }

    #[test]
    fn the_classifier_is_chosen_by_name_or_by_path() {
        assert_eq!(with_model(None, None).unwrap().model, None);
        assert_eq!(with_model(Some("efficientnet-lite0"), None).unwrap().model, None, "built in");
        let lite2 = with_model(Some("efficientnet-lite2"), None).unwrap().model.unwrap();
        assert_eq!(
            (lite2.name.as_str(), lite2.side, lite2.labels.clone(), lite2.fetched),
            ("efficientnet-lite2", 260, None, true)
        );
        assert!(lite2.model.ends_with(".cache/bucketlens/models/efficientnet-lite2/model.onnx"), "{:?}", lite2.model);
        let own = with_model(Some("/m/model.onnx"), Some("/m/labels.json")).unwrap().model.unwrap();
        assert_eq!((own.side, own.fetched, own.labels), (224, false, Some(PathBuf::from("/m/labels.json"))));
        let keys = |r: Result<Settings, Vec<Invalid>>| r.unwrap_err().iter().map(|i| i.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(with_model(Some("/m/model.onnx"), None)), ["labeler.model"]);
        assert_eq!(keys(with_model(Some("efficientnet-lite0"), Some("/m/labels.json"))), ["labeler.labels"]);
    }

    #[test]
    fn an_embedder_is_a_name_on_the_local_backend_with_embeddings_on() {
        let keys = |c: Config| c.validate().err().unwrap_or_default().into_iter().map(|i| i.key).collect::<Vec<_>>();
        let clip = |name: &str| Config { embedder: Some(name.into()), ..Config::default() };
        assert!(keys(clip("clip-vit-b32")).is_empty());
        assert_eq!(keys(clip("../etc")), ["labeler.embedder"], "a name, not a path");
        assert_eq!(keys(Config { embedding: false, ..clip("clip-vit-b32") }), ["labeler.embedder"]);
        assert_eq!(keys(Config { backend: Backend::Rekognition, ..clip("clip-vit-b32") }), ["labeler.embedder"]);
        assert_eq!(keys(Config { clip_labels: true, ..Config::default() }), ["labeler.clip-labels"]);
        assert!(keys(Config { clip_labels: true, ..clip("clip-vit-b32") }).is_empty());
    }
}

//! The labeler seam: image bytes in, labels out; or, for a labeler that reads S3
//! itself (Rekognition), the object's location in. The local model and Rekognition
//! implement it.

use async_trait::async_trait;
use bucketlens_runtime::bucket::{ObjectRef, SourceError};
use bucketlens_schemas::{error_codes, ImageProperties, Label, ModelInfo, PhotoMetadata};

/// What a labeler found in one image.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelSet {
    /// Highest confidence first.
    pub labels: Vec<Label>,
    /// Format and size, when the labeler saw the image's header.
    pub image: Option<ImageProperties>,
    /// The model that answered, when it says so itself (Rekognition's
    /// LabelModelVersion); else [`Labeler::model`].
    pub model: Option<ModelInfo>,
    /// What the photo says about itself ([`crate::metadata`]).
    #[serde(default)]
    /// (Boxed: a label set travels in the answers of the isolated labeler.)
    pub metadata: Option<Box<PhotoMetadata>>,
    /// What finds the same photo twice ([`crate::hashes`]).
    #[serde(default)]
    pub hashes: Option<bucketlens_schemas::ImageHashes>,
    /// What finds photos that look alike (the classifier's features).
    #[serde(default)]
    pub embedding: Option<bucketlens_schemas::ImageEmbedding>,
    /// The words in the image ([`crate::analyzers::text`]). (Boxed, as `metadata`.)
    #[serde(default)]
    pub text: Option<Box<bucketlens_schemas::ImageText>>,
    /// Parts of the image's metadata that were dropped, and why: logged at debug,
    /// naming the object.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Why an image got no labels. `retryable` failures are tried again with backoff;
/// the others become a FAILED record and a DLQ record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LabelFailure {
    /// Stable code, one of [`error_codes`].
    pub code: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl LabelFailure {
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retryable: false }
    }
}

impl From<SourceError> for LabelFailure {
    /// An object that could not be read, with the setting to change where one applies.
    fn from(e: SourceError) -> Self {
        let code = match &e {
            SourceError::TooLarge { .. } => error_codes::OBJECT_TOO_LARGE,
            SourceError::PermissionDenied { .. } => error_codes::ACCESS_DENIED,
            SourceError::InvalidKey { .. } => error_codes::INVALID_KEY,
            SourceError::WrongBucket { .. } => error_codes::UNKNOWN_BUCKET,
            SourceError::Io { .. } => error_codes::READ_FAILED,
            SourceError::Archived { .. } => error_codes::OBJECT_ARCHIVED,
        };
        let message = match &e {
            SourceError::TooLarge { .. } => format!("{e} (labeler.max-bytes)"),
            _ => e.to_string(),
        };
        Self { code, message, retryable: e.retryable() }
    }
}

/// A model or label file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the label file is not valid: {0}")]
    Labels(String),
    #[error("the ONNX model cannot be loaded: {0}")]
    Model(String),
    /// `labeler.engine = "onnxruntime"` and it did not load.
    #[error("labeler.engine = \"onnxruntime\": {0}")]
    Engine(String),
    #[error("labeler.model = {name:?} is not fetched yet: run `models/efficientnet-lite0/fetch {variant}`, which converts it into {path}", variant = name.trim_start_matches("efficientnet-"))]
    NotFetched { name: String, path: String },
    /// `labeler.embedder` names a model that is not installed, or not as pinned.
    #[error("labeler.embedder = {name:?}: {reason}")]
    Embedder { name: String, reason: String },
    /// `labeler.text` is on and PP-OCR's models are not installed, or not as pinned.
    #[error("labeler.text = true: {reason}")]
    Text { reason: String },
}

/// Labels images.
#[async_trait]
pub trait Labeler: Send + Sync + 'static {
    /// The model's name and version, written into every record.
    fn model(&self) -> &ModelInfo;

    /// What runs the model, for the start-up line (`onnxruntime 1.32.0`); `None`
    /// for a service.
    fn runs_on(&self) -> Option<String> {
        None
    }

    /// Labels one image.
    async fn label(&self, image: Vec<u8>) -> Result<LabelSet, LabelFailure>;

    /// Whether this labeler reads `key` from S3 itself ([`Self::label_in_s3`]), so the
    /// stage learns the object's state from a HEAD instead of its GET.
    fn reads_s3(&self, _key: &str) -> bool {
        false
    }

    /// Labels an object in S3 without downloading it, if this labeler can read it
    /// there; `None` means "give me the bytes" (the default).
    async fn label_in_s3(&self, _object: ObjectRef<'_>, _size: Option<i64>) -> Option<Result<LabelSet, LabelFailure>> {
        None
    }
}

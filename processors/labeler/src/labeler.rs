//! The labeler seam: image bytes in, labels out. The local model implements it here;
//! Rekognition comes later behind the same trait.

use async_trait::async_trait;
use bucketlens_schemas::{ImageProperties, Label, ModelInfo};

/// What a labeler found in one image.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    /// Highest confidence first.
    pub labels: Vec<Label>,
    pub image: ImageProperties,
}

/// Why an image got no labels. `retryable` failures are tried again with backoff;
/// the others become a FAILED record and a DLQ record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LabelFailure {
    /// Stable code: "EmptyObject", "UnsupportedFormat", "CorruptImage", "ImageTooLarge"...
    pub code: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl LabelFailure {
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retryable: false }
    }
}

/// Labels images.
#[async_trait]
pub trait Labeler: Send + Sync + 'static {
    /// The model's name and version, written into every record.
    fn model(&self) -> &ModelInfo;

    /// Labels one image.
    async fn label(&self, image: Vec<u8>) -> Result<LabelSet, LabelFailure>;
}

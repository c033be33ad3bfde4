//! Rust mirrors of the `.avsc` files. Field names and order follow the schemas.

use serde::{Deserialize, Serialize};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Created or replaced.
    Upsert,
    /// Deleted (or hidden behind a delete marker).
    Delete,
}

/// Which producer saw the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeSource {
    Inventory,
    Listing,
    Event,
    Replay,
}

/// `objects.changed.v1`: one change to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChanged {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub kind: ChangeKind,
    pub size: Option<i64>,
    pub etag: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub last_modified: Option<i64>,
    pub sequencer: Option<String>,
    pub source: ChangeSource,
    /// Milliseconds since the Unix epoch.
    pub observed_at: i64,
}

/// The outcome for one object version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    /// Labels were computed.
    Labeled,
    /// The object is gone: the document must go too.
    Removed,
    /// The object can never be labeled as it is; `error` says why.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub bounding_box: BoundingBox,
    pub confidence: f32,
}

/// One label, shaped like a Rekognition DetectLabels label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    /// 0 to 100.
    pub confidence: f32,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub instances: Vec<Instance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageProperties {
    /// "jpeg", "png", ...
    pub format: String,
    pub width: i32,
    pub height: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelError {
    /// A stable code: "CorruptImage", "UnsupportedFormat", "ImageTooLarge", ...
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// `images.labeled.v1`: the labels of one object version, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageLabeled {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub size: Option<i64>,
    pub last_modified: Option<i64>,
    pub sequencer: Option<String>,
    pub kind: LabelKind,
    #[serde(default)]
    pub labels: Vec<Label>,
    pub image: Option<ImageProperties>,
    pub model: ModelInfo,
    /// Milliseconds since the Unix epoch.
    pub labeled_at: i64,
    pub error: Option<LabelError>,
    /// Who labeled: a fingerprint of the labeler group, model and label-changing
    /// settings (`None` in records written before it existed).
    #[serde(default)]
    pub labeler: Option<String>,
}

impl ImageLabeled {
    /// An outcome for `change` with no labels yet: identity and version copied over.
    pub fn for_change(change: &ObjectChanged, kind: LabelKind, model: ModelInfo, now_ms: i64) -> Self {
        Self {
            bucket: change.bucket.clone(),
            key: change.key.clone(),
            version_id: change.version_id.clone(),
            etag: change.etag.clone(),
            size: change.size,
            last_modified: change.last_modified,
            sequencer: change.sequencer.clone(),
            kind,
            labels: Vec::new(),
            image: None,
            model,
            labeled_at: now_ms,
            error: None,
            labeler: None,
        }
    }
}

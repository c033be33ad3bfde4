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
    /// S3's storage class, where the producer's source says it (listing, inventory).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// S3 Intelligent-Tiering's access tier (an inventory report's column).
    #[serde(default)]
    pub access_tier: Option<String>,
}

/// Storage classes whose objects a GET cannot read until they are restored.
pub const ARCHIVED_STORAGE_CLASSES: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];
/// Intelligent-Tiering access tiers whose objects must be restored before a GET.
pub const ARCHIVED_ACCESS_TIERS: [&str; 2] = ["ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"];

impl ObjectChanged {
    /// Whether the producer saw the object in an archive (Glacier Flexible Retrieval,
    /// Deep Archive, or Intelligent-Tiering's archive tiers), where a GET fails until
    /// it is restored. Glacier Instant Retrieval (`GLACIER_IR`) reads like any other.
    pub fn archived(&self) -> bool {
        let class = self.storage_class.as_deref().unwrap_or_default();
        let tier = self.access_tier.as_deref().unwrap_or_default();
        ARCHIVED_STORAGE_CLASSES.contains(&class) || ARCHIVED_ACCESS_TIERS.contains(&tier)
    }
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

/// What a photo says about itself, from its EXIF, XMP and IPTC: when, with what and
/// where it was taken, and how a person tagged it. Every part is optional; a part
/// the file does not hold, or holds in a form that cannot be true, is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhotoMetadata {
    /// When it was taken, ISO 8601 (`2019-07-14T09:30:05`), as the camera's clock
    /// showed it; with its UTC offset (`+09:00`) when the file records one, else the
    /// local time of wherever the photo was taken.
    #[serde(default)]
    pub taken_at: Option<String>,
    /// Which field `taken_at` comes from: `DateTimeOriginal`, `CreateDate`
    /// (EXIF DateTimeDigitized, or XMP), `GPSDateTime` (UTC) or `DateCreated` (XMP).
    #[serde(default)]
    pub taken_from: Option<String>,
    #[serde(default)]
    pub camera: Option<Camera>,
    #[serde(default)]
    pub lens: Option<String>,
    #[serde(default)]
    pub exposure: Option<Exposure>,
    #[serde(default)]
    pub gps: Option<Gps>,
    /// IPTC Keywords, XMP `dc:subject` and each level of Lightroom's hierarchical
    /// subjects, without repeats.
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    /// 0 to 5 stars (XMP `xmp:Rating`; -1, rejected, reads as 0).
    #[serde(default)]
    pub rating: Option<i32>,
    /// The place the GPS position names, from the GeoNames-derived table the labeler
    /// carries; absent without GPS, far from any town, or with `labeler.metadata.gps`
    /// off.
    #[serde(default)]
    pub place: Option<Place>,
}

impl PhotoMetadata {
    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `taken_at`, parsed.
    pub fn taken(&self) -> Option<crate::Taken> {
        self.taken_at.as_deref().and_then(|t| crate::Taken::parse_iso(t).ok())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Camera {
    #[serde(default)]
    pub make: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    #[serde(default)]
    pub focal_length_mm: Option<f32>,
    #[serde(default)]
    pub f_number: Option<f32>,
    /// Seconds.
    #[serde(default)]
    pub exposure_time_s: Option<f32>,
    #[serde(default)]
    pub iso: Option<i32>,
}

/// WGS 84 degrees, north and east positive; metres above sea level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub alt: Option<f64>,
}

/// A place people name: the town or city, its first-level region (state, province,
/// prefecture), the country and its ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub city: String,
    #[serde(default)]
    pub region: Option<String>,
    pub country: String,
    pub country_code: String,
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
    /// What the photo says about itself (`None`: not read, or nothing found).
    #[serde(default)]
    pub metadata: Option<PhotoMetadata>,
    /// What finds the same photo twice (`None`: not hashed).
    #[serde(default)]
    pub hashes: Option<ImageHashes>,
    /// The object's storage class as the change that asked for it said (a listing or
    /// an inventory report; `None` when it did not say, or before it was recorded).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// What finds photos that look alike (`None`: none made).
    #[serde(default)]
    pub embedding: Option<ImageEmbedding>,
    /// The words in the photo (`None`: not read, or none found).
    #[serde(default)]
    pub text: Option<ImageText>,
}

/// The words in a photo, line by line, as a text reader (PP-OCR, or Rekognition's
/// DetectText) found them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageText {
    /// The lines in reading order, joined by newlines.
    pub text: String,
    pub lines: Vec<TextLine>,
}

impl ImageText {
    /// The text of `lines`, in the order given.
    pub fn of(lines: Vec<TextLine>) -> Self {
        let text = lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n");
        Self { text, lines }
    }
}

/// One line of text in a photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextLine {
    pub text: String,
    /// 0 to 100.
    pub confidence: f32,
    /// The line's box, upright.
    pub bounding_box: BoundingBox,
}

/// What finds the same photo twice: the bytes' SHA-256 (exact copies) and the
/// pixels' 64-bit difference hash (near duplicates: few bits apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHashes {
    /// Lowercase hex.
    pub sha256: String,
    /// The 64 bits as a long; `None` for an image under 9×8 pixels.
    #[serde(default)]
    pub dhash: Option<i64>,
}

/// What finds photos that look alike: a vector of signed bytes, compared by cosine
/// with vectors of the same `model` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEmbedding {
    /// `name@version` of what made it.
    pub model: String,
    #[serde(with = "apache_avro::serde::bytes")]
    pub vector: Vec<u8>,
}

impl ImageEmbedding {
    /// The cosine of the angle between two vectors of the same model, clamped to
    /// 0–1 (0: nothing alike; a vector of another model or length, or of zeros, is 0).
    pub fn similarity(&self, other: &ImageEmbedding) -> f64 {
        if self.model != other.model || self.vector.len() != other.vector.len() {
            return 0.0;
        }
        cosine(&self.vector, &other.vector)
    }
}

/// The cosine of two vectors of signed bytes (stored as `u8`, two's complement),
/// clamped to 0–1.
pub fn cosine(a: &[u8], b: &[u8]) -> f64 {
    let (mut dot, mut aa, mut bb) = (0i32, 0i32, 0i32);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (i32::from(x as i8), i32::from(y as i8));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0 || bb == 0 {
        return 0.0;
    }
    (f64::from(dot) / (f64::from(aa).sqrt() * f64::from(bb).sqrt())).clamp(0.0, 1.0)
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
            metadata: None,
            hashes: None,
            storage_class: change.storage_class.clone(),
            embedding: None,
            text: None,
        }
    }
}

/// Whether a rule began or stopped matching an object (`images.matched.v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Matched,
    Unmatched,
}

/// A label as a match carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedLabel {
    pub name: String,
    pub confidence: f32,
}

/// A standing query (`bucketlens act`'s rule) began or stopped matching one version
/// of one object. Key: `bucket/key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMatched {
    pub rule: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub kind: MatchKind,
    #[serde(default)]
    pub labels: Vec<MatchedLabel>,
    pub matched_at: i64,
}

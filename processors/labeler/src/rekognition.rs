//! Amazon Rekognition DetectLabels behind the [`Labeler`] seam.
//!
//! - An object in S3 is passed by reference (`S3Object`): Rekognition reads it, no
//!   download. It must be in Rekognition's region; `by-reference = false` sends bytes
//!   instead (for MinIO, RustFS or a bucket in another region).
//! - Rekognition's limits are checked before the call, so a violation costs no call:
//!   JPEG or PNG only, at most 5 MB as bytes or 15 MB as an S3 object, at least 80
//!   pixels a side (checked when the bytes are at hand).
//! - Every call of the process waits for one shared rate limiter (`max-tps`, the
//!   account's DetectLabels quota for this process); a throttling answer, an internal
//!   error or a 5xx is retried by the stage with backoff; any other error (bad image,
//!   access denied…) is a FAILED record with Rekognition's error code.
//! - The answer maps one to one: Name, Confidence, Parents, Aliases, Categories and
//!   Instances' bounding boxes; LabelModelVersion becomes the record's model version.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{
    DetectLabelsFeatureName, DetectLabelsSettings, GeneralLabelsSettings, Image, S3Object, TextTypes,
};
use bucketlens_runtime::aws::AwsFailure;
use bucketlens_runtime::bucket::ObjectRef;
use bucketlens_schemas::{error_codes, BoundingBox, ImageText, Instance, Label, ModelInfo, TextLine};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::labeler::{LabelFailure, LabelSet, Labeler};

/// Rekognition's limits (Guidelines and quotas, DetectLabels).
pub const MAX_BYTES_INLINE: u64 = 5 * 1024 * 1024;
pub const MAX_BYTES_S3: u64 = 15 * 1024 * 1024;
pub const MIN_SIDE: i32 = 80;

/// `[labeler.rekognition]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RekognitionConfig {
    /// The region to call (default: aws-config's, e.g. AWS_REGION).
    pub region: Option<String>,
    /// DetectLabels calls per second from this process, at most: the account's quota
    /// divided by the number of labeler processes.
    pub max_tps: f64,
    /// Objects in S3 are passed by reference (no download). Off for S3-compatible
    /// stores Rekognition cannot reach, or buckets in another region.
    pub by_reference: bool,
    /// Also ask for IMAGE_PROPERTIES (quality and colours; billed separately).
    pub image_properties: bool,
    /// Also read the words in each image with DetectText: a second call per image,
    /// on the same rate limiter and billed as a second image.
    pub detect_text: bool,
    /// `Settings.GeneralLabels` filters, as Rekognition takes them.
    pub label_inclusion_filters: Vec<String>,
    pub label_exclusion_filters: Vec<String>,
    pub label_category_inclusion_filters: Vec<String>,
    pub label_category_exclusion_filters: Vec<String>,
}

impl Default for RekognitionConfig {
    fn default() -> Self {
        Self {
            region: None,
            max_tps: 5.0,
            by_reference: true,
            image_properties: false,
            detect_text: false,
            label_inclusion_filters: Vec::new(),
            label_exclusion_filters: Vec::new(),
            label_category_inclusion_filters: Vec::new(),
            label_category_exclusion_filters: Vec::new(),
        }
    }
}

impl RekognitionConfig {
    pub fn validate(&self) -> Result<(), Vec<bucketlens_runtime::config::Invalid>> {
        let mut problems = bucketlens_runtime::config::Problems::default();
        let tps = self.max_tps;
        problems.check(tps > 0.0 && tps.is_finite(), "labeler.rekognition.max-tps", || {
            format!("must be a positive number of calls per second (your DetectLabels quota), got {tps}")
        });
        problems.finish(|| ())
    }
}

/// Calls spaced `1 / rate` apart, shared by every task of the process.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        Self { interval: Duration::from_secs_f64(1.0 / per_second), next: Mutex::new(Instant::now()) }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// The Rekognition labeler.
pub struct RekognitionLabeler {
    client: aws_sdk_rekognition::Client,
    config: RekognitionConfig,
    min_confidence: f32,
    max_labels: usize,
    limiter: RateLimiter,
    model: ModelInfo,
    /// Read from the bytes, when this labeler reads them (not by reference).
    metadata: crate::metadata::MetadataOptions,
    /// The content hash of the bytes, when this labeler reads them (Rekognition
    /// decodes nothing here, so there is no perceptual hash).
    hashes: bool,
    /// DetectText too, and the confidence (0–100) under which a line is dropped.
    text: Option<f32>,
}

impl RekognitionLabeler {
    /// A client from aws-config's default chain (endpoint overrides such as
    /// AWS_ENDPOINT_URL_REKOGNITION included).
    pub async fn new(config: &RekognitionConfig, min_confidence: f32, max_labels: usize) -> Self {
        let sdk = bucketlens_runtime::aws::sdk_config(config.region.as_deref()).await;
        Self {
            client: aws_sdk_rekognition::Client::new(&sdk),
            config: config.clone(),
            min_confidence,
            max_labels,
            limiter: RateLimiter::new(config.max_tps),
            model: ModelInfo { name: "rekognition".into(), version: "unknown".into() },
            metadata: crate::metadata::MetadataOptions::default(),
            hashes: false,
            text: None,
        }
    }

    /// Reads each photo's words with DetectText too, keeping the lines at
    /// `min_confidence` or above (`labeler.rekognition.detect-text`).
    pub fn reading_text(mut self, min_confidence: Option<f32>) -> Self {
        self.text = min_confidence;
        self
    }

    /// Hashes each photo's bytes ([`crate::hashes::content`]) where it reads them.
    pub fn hashing(mut self, on: bool) -> Self {
        self.hashes = on;
        self
    }

    /// Reads each photo's metadata as `options` say, where it reads the bytes.
    pub fn reading_metadata(mut self, options: crate::metadata::MetadataOptions) -> Self {
        self.metadata = options;
        self
    }

    fn settings(&self) -> Option<DetectLabelsSettings> {
        let c = &self.config;
        let filters = [
            &c.label_inclusion_filters,
            &c.label_exclusion_filters,
            &c.label_category_inclusion_filters,
            &c.label_category_exclusion_filters,
        ];
        if filters.iter().all(|f| f.is_empty()) {
            return None;
        }
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let general = GeneralLabelsSettings::builder()
            .set_label_inclusion_filters(some(&c.label_inclusion_filters))
            .set_label_exclusion_filters(some(&c.label_exclusion_filters))
            .set_label_category_inclusion_filters(some(&c.label_category_inclusion_filters))
            .set_label_category_exclusion_filters(some(&c.label_category_exclusion_filters))
            .build();
        Some(DetectLabelsSettings::builder().general_labels(general).build())
    }

    async fn detect(&self, image: Image) -> Result<LabelSet, LabelFailure> {
        let mut set = self.detect_labels(image.clone()).await?;
        if let Some(min_confidence) = self.text {
            if let Some(text) = self.detect_text(image, min_confidence).await? {
                crate::analyzers::text::add_text(&mut set, text, crate::analyzers::boxes::plain("Text", &[]));
            }
        }
        Ok(set)
    }

    /// DetectText's lines (not its words) at `min_confidence` or above that are words
    /// ([`crate::analyzers::text::decode::is_words`]), in reading order.
    async fn detect_text(&self, image: Image, min_confidence: f32) -> Result<Option<ImageText>, LabelFailure> {
        let request = self.client.detect_text().image(image);
        self.limiter.acquire().await;
        let output = request.send().await.map_err(|e| failed("DetectText", &AwsFailure::of(&e)))?;
        let mut lines: Vec<TextLine> = output
            .text_detections()
            .iter()
            .filter(|d| d.r#type() == Some(&TextTypes::Line))
            .filter_map(|d| {
                let text = d.detected_text()?.trim().to_string();
                let confidence = d.confidence()?;
                let b = d.geometry()?.bounding_box()?;
                let bounding_box = crate::analyzers::boxes::corners_box(
                    b.left().unwrap_or(0.0).clamp(0.0, 1.0),
                    b.top().unwrap_or(0.0).clamp(0.0, 1.0),
                    (b.left().unwrap_or(0.0) + b.width().unwrap_or(0.0)).clamp(0.0, 1.0),
                    (b.top().unwrap_or(0.0) + b.height().unwrap_or(0.0)).clamp(0.0, 1.0),
                );
                Some(TextLine { text, confidence, bounding_box })
            })
            .filter(|l| l.confidence >= min_confidence && crate::analyzers::text::decode::is_words(&l.text))
            .collect();
        crate::analyzers::text::decode::reading_order(&mut lines, |l| {
            let b = &l.bounding_box;
            (b.left, b.top, b.left + b.width, b.top + b.height)
        });
        Ok((!lines.is_empty()).then(|| ImageText::of(lines)))
    }

    async fn detect_labels(&self, image: Image) -> Result<LabelSet, LabelFailure> {
        let mut request = self
            .client
            .detect_labels()
            .image(image)
            .min_confidence(self.min_confidence)
            .max_labels(self.max_labels.min(1000) as i32)
            .features(DetectLabelsFeatureName::GeneralLabels)
            .set_settings(self.settings());
        if self.config.image_properties {
            request = request.features(DetectLabelsFeatureName::ImageProperties);
        }
        self.limiter.acquire().await;
        let output = request.send().await.map_err(|e| failed("DetectLabels", &AwsFailure::of(&e)))?;
        let labels = output.labels().iter().map(to_label).collect();
        let model = output
            .label_model_version()
            .map(|version| ModelInfo { name: "rekognition".into(), version: version.to_string() });
        Ok(LabelSet { labels, model, ..LabelSet::default() })
    }
}

/// A stable code for the record: Rekognition's own for the documented errors.
/// A refused call of `operation`, with its documented code where it has one.
fn failed(operation: &str, failure: &AwsFailure) -> LabelFailure {
    LabelFailure {
        code: failure_code(failure.code.as_deref(), failure.retryable),
        message: format!("Rekognition {operation}: {failure}"),
        retryable: failure.retryable,
    }
}

fn failure_code(code: Option<&str>, retryable: bool) -> &'static str {
    match code {
        Some("InvalidImageFormatException") => error_codes::INVALID_IMAGE_FORMAT,
        Some("ImageTooLargeException") => error_codes::IMAGE_TOO_LARGE,
        Some("InvalidS3ObjectException") => error_codes::INVALID_S3_OBJECT,
        Some("InvalidParameterException") => error_codes::INVALID_PARAMETER,
        Some("AccessDeniedException") => error_codes::ACCESS_DENIED,
        Some("ThrottlingException" | "ProvisionedThroughputExceededException") => error_codes::THROTTLED,
        Some("InternalServerError") => error_codes::SERVICE_ERROR,
        _ if retryable => error_codes::SERVICE_UNAVAILABLE,
        _ => error_codes::LABELER_ERROR,
    }
}

fn to_label(label: &aws_sdk_rekognition::types::Label) -> Label {
    let names = |items: Vec<Option<&str>>| items.into_iter().flatten().map(str::to_string).collect();
    Label {
        name: label.name().unwrap_or_default().to_string(),
        confidence: label.confidence().unwrap_or(0.0),
        parents: names(label.parents().iter().map(|p| p.name()).collect()),
        aliases: names(label.aliases().iter().map(|a| a.name()).collect()),
        categories: names(label.categories().iter().map(|c| c.name()).collect()),
        instances: label
            .instances()
            .iter()
            .filter_map(|i| {
                let b = i.bounding_box()?;
                Some(Instance {
                    bounding_box: BoundingBox {
                        left: b.left().unwrap_or(0.0),
                        top: b.top().unwrap_or(0.0),
                        width: b.width().unwrap_or(0.0),
                        height: b.height().unwrap_or(0.0),
                    },
                    confidence: i.confidence().unwrap_or(0.0),
                })
            })
            .collect(),
    }
}

/// The short side of the JPEG a WebP, GIF, TIFF, BMP, HEIC or AVIF is turned into for Rekognition
/// (it labels well from 640 pixels; 5 MB of bytes at most).
const TRANSCODE_SHORT_SIDE: u32 = 1024;
/// The pixel limit of an image transcoded for Rekognition (as `labeler.max-pixels`' default).
const TRANSCODE_MAX_PIXELS: u64 = 100_000_000;

/// Whether Rekognition reads an S3 object of this key itself (JPEG or PNG, by its extension).
fn rekognition_reads(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.ends_with(".jpg") || lower.ends_with(".jpeg") || lower.ends_with(".png")
}

/// A format Rekognition refuses, as a JPEG it takes (the EXIF orientation applied),
/// and the original's format and displayed size.
pub fn transcode(bytes: &[u8]) -> Result<(Vec<u8>, bucketlens_schemas::ImageProperties), LabelFailure> {
    let (rgb, properties) = crate::image::decode(bytes, TRANSCODE_MAX_PIXELS, TRANSCODE_SHORT_SIDE)?;
    let mut jpeg = Vec::new();
    ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&rgb)
        .map_err(|e| LabelFailure::permanent(error_codes::LABELER_ERROR, format!("cannot transcode to JPEG: {e}")))?;
    check_bytes(&jpeg)?;
    Ok((jpeg, properties))
}

/// Whether Rekognition would take an S3 object of this key and size: a FAILED
/// record without a call when not.
pub fn check_s3_object(key: &str, size: Option<i64>) -> Result<(), LabelFailure> {
    if !rekognition_reads(key) {
        return Err(LabelFailure::permanent(
            error_codes::UNSUPPORTED_FORMAT,
            "Rekognition reads JPEG and PNG only, and by reference the format is known from the key's extension",
        ));
    }
    if let Some(size) = size.filter(|&s| s as u64 > MAX_BYTES_S3) {
        return Err(LabelFailure::permanent(
            error_codes::IMAGE_TOO_LARGE,
            format!("{size} bytes is above Rekognition's 15 MB limit for an S3 object"),
        ));
    }
    Ok(())
}

/// Whether Rekognition would take these bytes; their format and size when it would.
pub fn check_bytes(bytes: &[u8]) -> Result<bucketlens_schemas::ImageProperties, LabelFailure> {
    let properties = crate::image::properties(bytes)?;
    if bytes.len() as u64 > MAX_BYTES_INLINE {
        return Err(LabelFailure::permanent(
            error_codes::IMAGE_TOO_LARGE,
            format!("{} bytes is above Rekognition's 5 MB limit for image bytes", bytes.len()),
        ));
    }
    if properties.width < MIN_SIDE || properties.height < MIN_SIDE {
        return Err(LabelFailure::permanent(
            error_codes::IMAGE_TOO_SMALL,
            format!(
                "{}x{} is below Rekognition's minimum of {MIN_SIDE} pixels a side",
                properties.width, properties.height
            ),
        ));
    }
    Ok(properties)
}

#[async_trait]
impl Labeler for RekognitionLabeler {
    fn model(&self) -> &ModelInfo {
        &self.model
    }

    async fn label(&self, image: Vec<u8>) -> Result<LabelSet, LabelFailure> {
        let mut notes = Vec::new();
        let metadata = crate::metadata::read(&image, &self.metadata, &mut notes);
        let hashes = self
            .hashes
            .then(|| bucketlens_schemas::ImageHashes { sha256: crate::hashes::content(&image), dhash: None });
        let (image, properties) = match bucketlens_schemas::ImageFormat::sniff(&image) {
            Some(bucketlens_schemas::ImageFormat::Jpeg | bucketlens_schemas::ImageFormat::Png) | None => {
                let properties = check_bytes(&image)?;
                (image, properties)
            }
            // WebP, GIF, TIFF, BMP, HEIC, AVIF: Rekognition refuses them; it gets a JPEG.
            Some(_) => {
                let transcoding = tokio::task::spawn_blocking(move || transcode(&image));
                transcoding.await.map_err(|e| LabelFailure::permanent(error_codes::LABELER_ERROR, e.to_string()))??
            }
        };
        let mut set = self.detect(Image::builder().bytes(Blob::new(image)).build()).await?;
        set.image = Some(properties);
        set.metadata = metadata.map(Box::new);
        set.hashes = hashes;
        set.notes = notes;
        Ok(set)
    }

    fn reads_s3(&self, key: &str) -> bool {
        // Rekognition reads JPEG and PNG from S3; anything else is read and transcoded here.
        self.config.by_reference && rekognition_reads(key)
    }

    async fn label_in_s3(&self, object: ObjectRef<'_>, size: Option<i64>) -> Option<Result<LabelSet, LabelFailure>> {
        if !self.reads_s3(object.key) {
            return None;
        }
        if let Err(failure) = check_s3_object(object.key, size) {
            return Some(Err(failure));
        }
        let reference = S3Object::builder()
            .bucket(object.bucket)
            .name(object.key)
            .set_version(object.version_id.map(str::to_string));
        Some(self.detect(Image::builder().s3_object(reference.build()).build()).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_before_any_call() {
        assert_eq!(check_s3_object("a/cat.GIF", Some(10)).unwrap_err().code, "UnsupportedFormat");
        assert_eq!(check_s3_object("cat.jpg", Some(16 * 1024 * 1024)).unwrap_err().code, "ImageTooLarge");
        assert!(check_s3_object("cat.JPEG", Some(15 * 1024 * 1024)).is_ok());
        assert!(check_s3_object("cat.png", None).is_ok());

        let png = |w: u32, h: u32| {
            let mut bytes = Vec::new();
            ::image::RgbImage::new(w, h)
                .write_to(&mut std::io::Cursor::new(&mut bytes), ::image::ImageFormat::Png)
                .unwrap();
            bytes
        };
        assert_eq!(check_bytes(&png(79, 200)).unwrap_err().code, "ImageTooSmall");
        assert_eq!(check_bytes(&png(80, 80)).unwrap().width, 80);
        assert_eq!(check_bytes(b"\0\0\0\x18ftypmsf1....").unwrap_err().code, "UnsupportedFormat");
        assert_eq!(check_bytes(b"GIF89a....").unwrap_err().code, "CorruptImage");
    }

    #[test]
    fn a_format_rekognition_refuses_is_sent_as_a_jpeg() {
        // A 1600x1200 WebP: a 1365x1024 JPEG, described as the WebP it was.
        let mut webp = Vec::new();
        ::image::RgbImage::from_fn(1600, 1200, |x, y| ::image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]))
            .write_to(&mut std::io::Cursor::new(&mut webp), ::image::ImageFormat::WebP)
            .unwrap();
        let (jpeg, properties) = transcode(&webp).unwrap();
        assert_eq!((properties.format.as_str(), properties.width, properties.height), ("webp", 1600, 1200));
        assert_eq!(bucketlens_schemas::ImageFormat::sniff(&jpeg), Some(bucketlens_schemas::ImageFormat::Jpeg));
        let sent = check_bytes(&jpeg).unwrap();
        assert_eq!((sent.width, sent.height), (1365, 1024));
        assert!(!rekognition_reads("photos/a.webp") && rekognition_reads("photos/a.JPG"));
        // A phone's HEIC: a JPEG of its displayed size (under 1024 pixels a side, not enlarged).
        let heic = std::fs::read(format!("{}/../../tests/fixtures/heif/chelsea.heic", env!("CARGO_MANIFEST_DIR")));
        let (jpeg, properties) = transcode(&heic.unwrap()).unwrap();
        assert_eq!((properties.format.as_str(), properties.width, properties.height), ("heic", 451, 300));
        let sent = check_bytes(&jpeg).unwrap();
        assert_eq!((sent.format.as_str(), sent.width, sent.height), ("jpeg", 451, 300));
        assert!(!rekognition_reads("DCIM/IMG_0001.HEIC"));
    }

    #[test]
    fn documented_errors_keep_their_code_and_retry_only_the_transient_ones() {
        assert_eq!(failure_code(Some("InvalidImageFormatException"), false), "InvalidImageFormat");
        assert_eq!(failure_code(Some("AccessDeniedException"), false), "AccessDenied");
        assert_eq!(failure_code(Some("ProvisionedThroughputExceededException"), true), "Throttled");
        assert_eq!(failure_code(None, true), "ServiceUnavailable");
    }

    #[tokio::test]
    async fn the_rate_limiter_spaces_calls() {
        let limiter = RateLimiter::new(50.0);
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(195), "{took:?}");
    }
}

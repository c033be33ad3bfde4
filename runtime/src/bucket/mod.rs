//! The object-source seam: read one object's bytes. A local directory is a bucket
//! here; S3 (and S3-compatible stores) plug in behind the same trait.

mod local;
pub mod s3;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use local::{etag_of, LocalDir};
pub use s3::S3Bucket;

/// Names one object version.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRef<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
}

impl std::fmt::Display for ObjectRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.bucket, self.key)?;
        if let Some(v) = self.version_id {
            write!(f, " (version {v})")?;
        }
        Ok(())
    }
}

/// What a HEAD says of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: Option<i64>,
    /// Without quotes.
    pub etag: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub last_modified: Option<i64>,
    pub version_id: Option<String>,
}

/// Why an object could not be read. `retryable()` tells the caller whether to try
/// again later or to record a failure.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{object} is {size} bytes, above the limit of {limit} bytes (labeler.max-bytes)")]
    TooLarge { object: String, size: u64, limit: u64 },
    #[error("permission denied reading {object}: {reason}")]
    PermissionDenied { object: String, reason: String },
    #[error("{object} is not a valid key here: {reason}")]
    InvalidKey { object: String, reason: String },
    #[error("{object} belongs to bucket {bucket}, which this source does not serve (it serves [{serves}]); map the bucket to its folder in the configuration ([buckets] {bucket} = \"/path/to/folder\")")]
    WrongBucket { object: String, bucket: String, serves: String },
    #[error("reading {object} failed: {reason}")]
    Io { object: String, reason: String, retryable: bool },
}

impl SourceError {
    /// Whether the same read may succeed later (a timeout, a busy server).
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Io { retryable: true, .. })
    }

    /// A stable code for records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "ObjectTooLarge",
            Self::PermissionDenied { .. } => "AccessDenied",
            Self::InvalidKey { .. } => "InvalidKey",
            Self::WrongBucket { .. } => "UnknownBucket",
            Self::Io { .. } => "ReadFailed",
        }
    }
}

/// Reads objects.
#[async_trait]
pub trait ObjectSource: Send + Sync + 'static {
    /// The object's bytes, at most `max_bytes` of them; `Ok(None)` if it no longer
    /// exists (deleted since the change was recorded).
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Vec<u8>>, SourceError>;

    /// The object's size, etag and modification time without its bytes; `Ok(None)`
    /// if it no longer exists.
    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError>;

    /// Whether `bucket` is read from S3 (so a service in AWS can read it too), not
    /// from a local folder.
    async fn in_s3(&self, _bucket: &str) -> bool {
        false
    }
}

/// Several buckets, each served by its own source, chosen by bucket name.
#[derive(Default, Clone)]
pub struct Buckets {
    by_name: HashMap<String, Arc<dyn ObjectSource>>,
}

impl Buckets {
    pub fn insert(&mut self, bucket: impl Into<String>, source: Arc<dyn ObjectSource>) {
        self.by_name.insert(bucket.into(), source);
    }

    /// The source serving `bucket`, if any.
    pub fn source(&self, bucket: &str) -> Option<&Arc<dyn ObjectSource>> {
        self.by_name.get(bucket)
    }

    /// The source of `object`'s bucket, or the error naming the buckets served.
    fn source_of(&self, object: &ObjectRef<'_>) -> Result<&Arc<dyn ObjectSource>, SourceError> {
        if let Some(source) = self.by_name.get(object.bucket) {
            return Ok(source);
        }
        let mut serves: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        serves.sort_unstable();
        Err(SourceError::WrongBucket {
            object: object.to_string(),
            bucket: object.bucket.into(),
            serves: serves.join(", "),
        })
    }
}

#[async_trait]
impl ObjectSource for Buckets {
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Vec<u8>>, SourceError> {
        self.source_of(&object)?.get(object, max_bytes).await
    }

    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError> {
        self.source_of(&object)?.head(object).await
    }

    async fn in_s3(&self, bucket: &str) -> bool {
        match self.by_name.get(bucket) {
            Some(source) => source.in_s3(bucket).await,
            None => false,
        }
    }
}

/// Image formats bucketlens reads, recognised by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    /// The format whose signature starts `bytes`, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(Self::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(Self::Png);
        }
        None
    }

    /// The format a file name's extension claims (case-insensitive).
    pub fn from_extension(key: &str) -> Option<Self> {
        let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
        }
    }
}

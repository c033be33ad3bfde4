//! The object-source seam: read one object's bytes. A local directory is a bucket
//! here; S3 (and S3-compatible stores) plug in behind the same trait, and
//! [`BucketRouter`] picks the one that serves each bucket.

mod local;
mod router;
pub mod s3;

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;

pub use local::{etag_of, LocalDir};
pub use router::{BucketRouter, Discover, RELOAD_EVERY};
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

/// An object's bytes and what the same read said of the object: the state that was
/// read, so that a labeling describes exactly the version whose bytes it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub meta: ObjectMeta,
}

/// Why an object could not be read. `retryable()` tells the caller whether to try
/// again later or to record a failure.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{object} is {size} bytes, above the limit of {limit} bytes")]
    TooLarge { object: String, size: u64, limit: u64 },
    #[error("permission denied reading {object}: {reason}")]
    PermissionDenied { object: String, reason: String },
    #[error("{object} is not a valid key here: {reason}")]
    InvalidKey { object: String, reason: String },
    #[error("{object} belongs to bucket {bucket}, which this source does not serve (it serves [{serves}]); map the bucket to its folder in the configuration ([buckets] {bucket} = \"/path/to/folder\")")]
    WrongBucket { object: String, bucket: String, serves: String },
    #[error("reading {object} failed: {reason}")]
    Io { object: String, reason: String, retryable: bool },
    /// In an archive (S3 Glacier Flexible Retrieval, Deep Archive, Intelligent-Tiering's
    /// archive tiers): no GET reads it until it is restored.
    #[error("{object} is archived ({reason}): restore it (S3 RestoreObject) to have it labeled")]
    Archived { object: String, reason: String },
}

impl SourceError {
    /// Whether the same read may succeed later (a timeout, a busy server).
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Io { retryable: true, .. })
    }
}

/// An object's bytes in chunks, as they are read.
pub type Chunks = Pin<Box<dyn Stream<Item = Result<Vec<u8>, std::io::Error>> + Send>>;

/// Reads objects.
#[async_trait]
pub trait ObjectSource: Send + Sync + 'static {
    /// The object's bytes, at most `max_bytes` of them, with its etag, size, version
    /// and modification time as the same read found them; `Ok(None)` if it no longer
    /// exists (deleted since the change was recorded).
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Object>, SourceError>;

    /// The object's bytes as a stream of chunks, for sending on without holding them
    /// all (at most `max_bytes`: a longer object is refused before the first chunk
    /// when its size is known, else ends the stream with an error); `Ok(None)` if it
    /// no longer exists. By default, `get` in one chunk.
    async fn stream(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Chunks>, SourceError> {
        let read = self.get(object, max_bytes).await?;
        Ok(read.map(|o| Box::pin(futures_util::stream::iter([Ok(o.bytes)])) as Chunks))
    }

    /// The object's first `n` bytes (fewer if it is shorter), where a photo keeps
    /// its metadata; `Ok(None)` if it no longer exists. S3 answers a ranged GET; by
    /// default, the first chunks of [`ObjectSource::stream`].
    async fn first_bytes(&self, object: ObjectRef<'_>, n: u64) -> Result<Option<Vec<u8>>, SourceError> {
        use futures_util::StreamExt;
        let Some(mut chunks) = self.stream(object, u64::MAX).await? else { return Ok(None) };
        let mut bytes = Vec::new();
        while (bytes.len() as u64) < n {
            match chunks.next().await {
                Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    return Err(SourceError::Io { object: object.to_string(), reason: e.to_string(), retryable: true })
                }
                None => break,
            }
        }
        bytes.truncate(n as usize);
        Ok(Some(bytes))
    }

    /// The object's size, etag and modification time without its bytes; `Ok(None)`
    /// if it no longer exists.
    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError>;

    /// Whether a GET can read the object now, for one a listing or an inventory report
    /// saw in an archive storage class: restored since (`x-amz-restore` with
    /// `ongoing-request="false"`), or out of the archive, or gone (the GET will say
    /// so). One HEAD on S3, no GET; sources with no archive always answer yes.
    async fn readable_now(&self, _object: ObjectRef<'_>) -> Result<bool, SourceError> {
        Ok(true)
    }

    /// Whether `bucket` is read from S3 (so a service in AWS can read it too), not
    /// from a local folder.
    async fn in_s3(&self, _bucket: &str) -> bool {
        false
    }
}

//! Amazon S3 and S3-compatible stores as object sources, through aws-sdk-s3.
//! Any bucket name is served: the store decides whether it exists.

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;

use super::{Chunks, Object, ObjectMeta, ObjectRef, ObjectSource, SourceError};
use crate::aws::AwsFailure;

/// Reads objects from S3 with one shared client.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    client: aws_sdk_s3::Client,
}

impl S3Bucket {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// Starts a GET (of the first `first` bytes only, when given): the response, with
    /// a size within `max_bytes`, or `None` if gone.
    async fn open(
        &self,
        object: ObjectRef<'_>,
        max_bytes: u64,
        first: Option<u64>,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, SourceError> {
        let request = self.client.get_object().bucket(object.bucket).key(object.key);
        let request = match first {
            Some(n) => request.range(format!("bytes=0-{}", n.saturating_sub(1))),
            None => request,
        };
        let request = match object.version_id {
            Some(version) => request.version_id(version),
            None => request,
        };
        let output = match request.send().await {
            Ok(output) => output,
            Err(err) => {
                let gone = matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_)));
                let failure = AwsFailure::of(&err);
                // 404 without NoSuchKey: NoSuchVersion, or a store that answers bare 404s.
                if gone || failure.status == Some(404) && failure.code.as_deref() != Some("NoSuchBucket") {
                    return Ok(None);
                }
                return Err(read_failure(&object, failure));
            }
        };
        let declared = output.content_length.unwrap_or(0).max(0) as u64;
        if declared > max_bytes {
            return Err(SourceError::TooLarge { object: format!("s3://{object}"), size: declared, limit: max_bytes });
        }
        Ok(Some(output))
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// A HEAD of the object, of its version when it names one.
    fn head_request(
        &self,
        object: &ObjectRef<'_>,
    ) -> aws_sdk_s3::operation::head_object::builders::HeadObjectFluentBuilder {
        let request = self.client.head_object().bucket(object.bucket).key(object.key);
        match object.version_id {
            Some(version) => request.version_id(version),
            None => request,
        }
    }
}

/// An S3 ETag without its quotes: `"9b2cf535f27731c974343645a3985328"` → `9b2c…`,
/// as inventory reports and event notifications write it.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

/// The error for a failed read of `object`, naming the permission a 403 lacks.
fn read_failure(object: &ObjectRef<'_>, failure: AwsFailure) -> SourceError {
    let name = format!("s3://{object}");
    // S3's answer to a GET of an object in Glacier or Deep Archive, not restored.
    if failure.code.as_deref() == Some("InvalidObjectState") {
        return SourceError::Archived { object: name, reason: failure.to_string() };
    }
    if failure.status == Some(403) {
        let permission = if object.version_id.is_some() { "s3:GetObjectVersion" } else { "s3:GetObject" };
        return SourceError::PermissionDenied {
            object: name,
            reason: format!(
                "{failure}; grant {permission} on arn:aws:s3:::{}/* (without s3:ListBucket, S3 also answers 403 for a key \
                 that does not exist), then run `bucketlens relabel --failed`",
                object.bucket
            ),
        };
    }
    let retryable = failure.retryable;
    SourceError::Io { object: name, reason: failure.to_string(), retryable }
}

#[async_trait]
impl ObjectSource for S3Bucket {
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Object>, SourceError> {
        let Some(mut output) = self.open(object, max_bytes, None).await? else { return Ok(None) };
        let meta = ObjectMeta {
            size: output.content_length,
            etag: output.e_tag.as_deref().map(normalize_etag),
            last_modified: output.last_modified.and_then(|t| t.to_millis().ok()),
            version_id: output.version_id.clone(),
        };
        let name = || format!("s3://{object}");
        let declared = output.content_length.unwrap_or(0).max(0) as u64;
        let mut bytes = Vec::with_capacity(declared as usize);
        loop {
            let chunk = output.body.try_next().await.map_err(|e| SourceError::Io {
                object: name(),
                reason: format!("the download broke off: {e}"),
                retryable: true,
            })?;
            let Some(chunk) = chunk else { break };
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                let size = (bytes.len() + chunk.len()) as u64;
                return Err(SourceError::TooLarge { object: name(), size, limit: max_bytes });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Object { bytes, meta }))
    }

    async fn in_s3(&self, _bucket: &str) -> bool {
        true
    }

    async fn first_bytes(&self, object: ObjectRef<'_>, n: u64) -> Result<Option<Vec<u8>>, SourceError> {
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        // An empty object answers a range with 416; it has no first bytes.
        let Some(output) = self.open(object, n, Some(n)).await.or_else(|e| match &e {
            SourceError::Io { reason, .. } if reason.contains("InvalidRange") || reason.contains("416") => {
                Ok(Some(aws_sdk_s3::operation::get_object::GetObjectOutput::builder().build()))
            }
            _ => Err(e),
        })?
        else {
            return Ok(None);
        };
        let bytes = output.body.collect().await.map_err(|e| SourceError::Io {
            object: format!("s3://{object}"),
            reason: format!("the download broke off: {e}"),
            retryable: true,
        })?;
        let mut bytes = bytes.into_bytes().to_vec();
        bytes.truncate(n as usize);
        Ok(Some(bytes))
    }

    async fn stream(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Chunks>, SourceError> {
        let Some(output) = self.open(object, max_bytes, None).await? else { return Ok(None) };
        let chunks = futures_util::stream::unfold(Some((output.body, 0u64)), move |state| async move {
            let (mut body, read) = state?;
            match body.try_next().await {
                Ok(None) => None,
                Ok(Some(chunk)) if read + chunk.len() as u64 > max_bytes => {
                    Some((Err(std::io::Error::other("the object is longer than its size limit")), None))
                }
                Ok(Some(chunk)) => {
                    let read = read + chunk.len() as u64;
                    Some((Ok(chunk.to_vec()), Some((body, read))))
                }
                Err(e) => Some((Err(std::io::Error::other(format!("the download broke off: {e}"))), None)),
            }
        });
        Ok(Some(Box::pin(chunks)))
    }

    async fn readable_now(&self, object: ObjectRef<'_>) -> Result<bool, SourceError> {
        let out = match self.head_request(&object).send().await {
            Ok(out) => out,
            Err(err) if AwsFailure::of(&err).status == Some(404) => return Ok(true),
            Err(err) => return Err(read_failure(&object, AwsFailure::of(&err))),
        };
        // `ongoing-request="false"`: a restored copy is there until its expiry date.
        if out.restore.as_deref().is_some_and(|r| r.contains("ongoing-request=\"false\"")) {
            return Ok(true);
        }
        let class = out.storage_class.as_ref().map(aws_sdk_s3::types::StorageClass::as_str);
        let archived_class = class.is_some_and(|c| bucketlens_schemas::ARCHIVED_STORAGE_CLASSES.contains(&c));
        // x-amz-archive-status: Intelligent-Tiering's ARCHIVE_ACCESS or DEEP_ARCHIVE_ACCESS.
        Ok(!archived_class && out.archive_status.is_none())
    }

    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError> {
        match self.head_request(&object).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                size: out.content_length,
                etag: out.e_tag.as_deref().map(normalize_etag),
                last_modified: out.last_modified.and_then(|t| t.to_millis().ok()),
                version_id: out.version_id,
            })),
            Err(err) => {
                let gone = matches!(err.as_service_error(), Some(HeadObjectError::NotFound(_)));
                let failure = AwsFailure::of(&err);
                if !(gone || failure.status == Some(404)) {
                    return Err(read_failure(&object, failure));
                }
                // A HEAD's 404 has no body to tell a missing key from a missing bucket.
                match self.client.head_bucket().bucket(object.bucket).send().await {
                    Err(err) if AwsFailure::of(&err).status == Some(404) => Err(SourceError::Io {
                        object: format!("s3://{object}"),
                        reason: format!("bucket {} does not exist", object.bucket),
                        retryable: false,
                    }),
                    _ => Ok(None),
                }
            }
        }
    }
}

//! Syncing an S3 prefix into `objects.changed.v1` with ListObjectsV2: the backfill
//! when a bucket has no inventory. Like a folder sync, it remembers the etag of each
//! key it produced, so a second run produces only new or changed images, and deletes
//! for keys gone from the prefix. Images are recognised by their extension (a
//! listing has no content to sniff); folder markers (`photos/`) are skipped.

use bucketlens_runtime::aws::AwsFailure;
use bucketlens_runtime::bucket::s3::normalize_etag;
use bucketlens_runtime::bucket::ImageFormat;
use bucketlens_runtime::log::{OutRecord, Output};
use bucketlens_runtime::now_ms;
use bucketlens_schemas::{record_key, topics, AvroRecord, ChangeKind, ChangeSource, ObjectChanged};

use crate::dir::{SyncError, SyncStats};
use crate::state::State;

/// `s3://bucket/prefix` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        Some(Self { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Lists one prefix of one bucket.
pub struct S3Lister {
    client: aws_sdk_s3::Client,
    url: S3Url,
    output: Output,
    state: State,
}

impl S3Lister {
    pub fn new(client: aws_sdk_s3::Client, url: S3Url, output: Output, state: State) -> Self {
        Self { client, url, output, state }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Lists the prefix page by page (1,000 keys each) and produces the differences.
    pub async fn sync(&self) -> Result<SyncStats, SyncError> {
        let generation = self.state.last_generation()? + 1;
        let mut stats = SyncStats::default();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.url.bucket).prefix(&self.url.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SyncError::Source(format!("listing {}: {}", self.url, AwsFailure::of(&e))))?;
            let mut records = Vec::new();
            let mut seen = Vec::new();
            for object in page.contents.unwrap_or_default() {
                let Some(key) = object.key else { continue };
                if key.ends_with('/') || ImageFormat::from_extension(&key).is_none() {
                    continue;
                }
                stats.images += 1;
                let etag = object.e_tag.as_deref().map(normalize_etag).unwrap_or_default();
                if self.state.etag(&self.url.bucket, &key)?.as_deref() != Some(etag.as_str()) {
                    let change = ObjectChanged {
                        bucket: self.url.bucket.clone(),
                        key: key.clone(),
                        version_id: None,
                        kind: ChangeKind::Upsert,
                        size: object.size,
                        etag: Some(etag.clone()).filter(|e| !e.is_empty()),
                        last_modified: object.last_modified.and_then(|t| t.to_millis().ok()),
                        sequencer: None,
                        source: ChangeSource::Listing,
                        observed_at: now_ms(),
                    };
                    records.push(encode(change)?);
                    stats.upserts += 1;
                }
                seen.push((key, etag));
            }
            self.output.send(topics::OBJECTS_CHANGED, records).await?;
            self.state.mark_seen(&self.url.bucket, &seen, generation)?;
        }
        stats.deletes = self.produce_deletes(generation).await?;
        Ok(stats)
    }

    async fn produce_deletes(&self, generation: i64) -> Result<u64, SyncError> {
        let mut deletes = 0;
        loop {
            let gone = self.state.unseen_with_prefix(&self.url.bucket, &self.url.prefix, generation, 1000)?;
            if gone.is_empty() {
                return Ok(deletes);
            }
            let mut records = Vec::with_capacity(gone.len());
            for key in &gone {
                let change = ObjectChanged {
                    bucket: self.url.bucket.clone(),
                    key: key.clone(),
                    version_id: None,
                    kind: ChangeKind::Delete,
                    size: None,
                    etag: None,
                    last_modified: Some(now_ms()),
                    sequencer: None,
                    source: ChangeSource::Listing,
                    observed_at: now_ms(),
                };
                records.push(encode(change)?);
            }
            self.output.send(topics::OBJECTS_CHANGED, records).await?;
            self.state.forget(&self.url.bucket, &gone)?;
            deletes += gone.len() as u64;
        }
    }
}

fn encode(change: ObjectChanged) -> Result<(OutRecord, ObjectChanged), SyncError> {
    let value = change.to_bytes().map_err(|e| SyncError::Encode(e.to_string()))?;
    Ok((OutRecord::new(record_key(&change.bucket, &change.key), value), change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        let url = S3Url::parse("s3://photos/2024/summer").unwrap();
        assert_eq!((url.bucket.as_str(), url.prefix.as_str()), ("photos", "2024/summer"));
        assert_eq!(S3Url::parse("s3://photos").unwrap().prefix, "");
        assert_eq!(S3Url::parse("s3:///x"), None);
        assert_eq!(S3Url::parse("/local"), None);
    }
}

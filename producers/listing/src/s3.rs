//! Syncing an S3 prefix into `objects.changed.v1` with ListObjectsV2: the backfill
//! when a bucket has no inventory. Like a folder sync, it remembers the etag of each
//! key it produced, so a second run produces only new or changed images, and deletes
//! for keys gone from the prefix. Images are recognised by their extension (a
//! listing has no content to sniff); folder markers (`photos/`) are skipped, and so
//! are keys `[listing] exclude` names (hidden names too, unless included).

use bucketlens_runtime::aws::AwsFailure;
use bucketlens_runtime::bucket::s3::normalize_etag;
use bucketlens_runtime::log::Output;
use bucketlens_runtime::now_ms;
use bucketlens_runtime::produce::{ProduceError, ProduceStats};
use bucketlens_schemas::{topics, ChangeKind, ChangeSource, ImageFormat, ObjectChanged, ARCHIVED_STORAGE_CLASSES};

use crate::state::{Keys, Scope, State};
use crate::{encode, produce_deletes, Config};

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
    config: Config,
}

impl S3Lister {
    pub fn new(client: aws_sdk_s3::Client, url: S3Url, output: Output, state: State, config: Config) -> Self {
        Self { client, url, output, state, config }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Lists the prefix page by page (1,000 keys each, S3's page size) and produces
    /// the differences; deletes go `[listing] batch-size` at a time. The listing
    /// state is read and written on the blocking pool.
    pub async fn sync(&self) -> Result<ProduceStats, ProduceError> {
        self.sync_with(false).await
    }

    /// Lists the prefix and produces an upsert for every image, changed or not
    /// (`index --force`, or a labeler with other settings: the labeler decides).
    pub async fn sync_every(&self) -> Result<ProduceStats, ProduceError> {
        self.sync_with(true).await
    }

    async fn sync_with(&self, every: bool) -> Result<ProduceStats, ProduceError> {
        let skip = self.config.skip();
        let generation = self.state.run(|s| s.last_generation()).await? + 1;
        let mut stats = ProduceStats::default();
        let bucket = self.url.bucket.clone();
        // Known keys the listing now passes over (excluded, hidden), with their etag:
        // their deletes name the version there, so that the labeler removes them.
        let mut passed_over: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut pages = self.client.list_objects_v2().bucket(&bucket).prefix(&self.url.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ProduceError::reading(format!("listing {}", self.url), AwsFailure::of(&e)))?;
            let mut listed = Vec::new();
            let mut skipped = Vec::new();
            for object in page.contents.unwrap_or_default() {
                let Some(key) = object.key else { continue };
                if key.ends_with('/') || ImageFormat::from_extension(&key).is_none() {
                    continue;
                }
                let etag = object.e_tag.as_deref().map(normalize_etag).unwrap_or_default();
                if skip.key(&key) {
                    skipped.push((key, etag));
                    continue;
                }
                let modified = object.last_modified.and_then(|t| t.to_millis().ok());
                let class = object.storage_class.as_ref().map(|c| c.as_str().to_string());
                listed.push((key, etag, object.size, modified, class));
            }
            stats.images += listed.len() as u64;
            let of = bucket.clone();
            let known_skipped = self
                .state
                .run(move |s| {
                    let mut known = Vec::new();
                    for (key, etag) in skipped {
                        if s.etag(&of, &key)?.is_some() {
                            known.push((key, etag));
                        }
                    }
                    Ok(known)
                })
                .await?;
            passed_over.extend(known_skipped);
            let of = bucket.clone();
            let changed = self
                .state
                .run(move |s| {
                    let mut changed = Vec::new();
                    for entry in listed {
                        let known = s.etag(&of, &entry.0)?;
                        changed.push((every || known.as_deref() != Some(entry.1.as_str()), entry));
                    }
                    Ok(changed)
                })
                .await?;
            let mut records = Vec::new();
            let mut seen = Vec::with_capacity(changed.len());
            for (is_new, (key, etag, size, last_modified, storage_class)) in changed {
                let archived = storage_class.as_deref().is_some_and(|c| ARCHIVED_STORAGE_CLASSES.contains(&c));
                if is_new {
                    let change = ObjectChanged {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        version_id: None,
                        kind: ChangeKind::Upsert,
                        size,
                        etag: Some(etag.clone()).filter(|e| !e.is_empty()),
                        last_modified,
                        sequencer: None,
                        source: ChangeSource::Listing,
                        observed_at: now_ms(),
                        storage_class,
                        access_tier: None,
                    };
                    records.push(encode(change)?);
                    stats.upserts += 1;
                }
                // An archived object is remembered without its etag, so that every
                // listing offers it again: the labeler skips it until it is restored.
                seen.push((key, if archived { String::new() } else { etag }));
            }
            self.output.send(topics::OBJECTS_CHANGED, records).await?;
            let of = bucket.clone();
            self.state.run(move |s| s.mark_seen(&of, &seen, generation)).await?;
        }
        let scope = Scope { bucket: bucket.clone(), keys: Keys::Prefix(self.url.prefix.clone()) };
        let delete = |key: &str| ObjectChanged {
            bucket: bucket.clone(),
            key: key.to_string(),
            version_id: None,
            kind: ChangeKind::Delete,
            size: None,
            etag: passed_over.get(key).cloned(),
            last_modified: Some(now_ms()),
            sequencer: None,
            source: ChangeSource::Listing,
            observed_at: now_ms(),
            storage_class: None,
            access_tier: None,
        };
        let batch_size = self.config.batch_size;
        stats.deletes = produce_deletes(&self.state, &self.output, &scope, generation, batch_size, delete).await?;
        Ok(stats)
    }
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

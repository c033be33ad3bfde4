//! The inventory producer: an S3 Inventory report (manifest.json + gzipped CSV
//! data files) becomes `objects.changed.v1` records — the backfill of a bucket of
//! any size in constant memory.
//!
//! Layout: [`manifest`] (manifest.json, its checksum, the column order);
//! [`rows`] (a data file's integrity check, then its rows as changes);
//! [`checkpoint`] (per data file, the last produced line, so a restart resumes);
//! this file (where reports and data files are read from, and the produce loop).
//!
//! A data file is downloaded to a temporary file, checked against its MD5 and
//! decompressed once to the end before any of its rows is produced: a damaged file
//! stops the run with an error and produces nothing. A row that cannot be read is
//! reported with its file and line, and the rest goes on.
//!
//! Each row becomes a record keyed `bucket/key` (the inventoried object's), so it
//! lands on the same partition as every other change of that object.
//!
//! Every row is produced, changed or not: the labeler skips the versions it labeled
//! already at the cost of a lookup, and retries what failed by its own rules. What a
//! report adds is the keys it no longer lists: once a report of an inventory
//! configuration (the folder above its dated folder) is produced to the end, each
//! key an earlier report of that configuration listed and this one does not becomes
//! a delete — unless an older report is produced after a newer one.

pub mod checkpoint;
pub mod manifest;
pub mod rows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bucketlens_runtime::aws::AwsFailure;
use bucketlens_runtime::config::{Invalid, Problems};
use bucketlens_runtime::log::{OutRecord, Output};
use bucketlens_runtime::produce::{ProduceError, ProduceStats};
use bucketlens_schemas::{record_key, topics, AvroRecord, ChangeKind, ObjectChanged};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::info;

use checkpoint::{Checkpoint, FileProgress};
use manifest::Manifest;

/// `[inventory]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Records produced per log write (and per checkpoint).
    pub batch_size: usize,
    /// `--watch`: how often to look for new reports.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { batch_size: 1000, watch_interval: Duration::from_secs(60) }
    }
}

impl Config {
    /// Checks every value (no IO): nothing, or every key that is wrong.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        problems.at_least_one("inventory.batch-size", self.batch_size);
        problems.check(!self.watch_interval.is_zero(), "inventory.watch-interval", || "must be longer than 0s".into());
        problems.finish(|| ())
    }
}

/// A manifest (or a report prefix) that cannot be read.
fn manifest_error(location: impl std::fmt::Display, reason: String) -> ProduceError {
    ProduceError::reading(location.to_string(), reason)
}

/// A damaged or unreachable data file: nothing of it was produced.
fn data_file_error(file: &str, reason: String) -> ProduceError {
    ProduceError::reading(format!("data file {file}"), format!("{reason}; nothing was produced from it"))
}

/// Where a report is: `s3://bucket/…/manifest.json` or a local path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

impl Location {
    /// `s3://bucket/key` or a local path. A report's `manifest.checksum` (the file S3
    /// Inventory writes last, which an event rule on new reports sees) names its
    /// `manifest.json`.
    pub fn parse(text: &str) -> Self {
        if let Some(dir) = text.strip_suffix("manifest.checksum").filter(|d| d.is_empty() || d.ends_with('/')) {
            return Self::parse(&format!("{dir}manifest.json"));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            return Self::S3 { bucket: bucket.to_string(), key: key.to_string() };
        }
        Self::Local(PathBuf::from(text.strip_prefix("file://").unwrap_or(text)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// What producing one report did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Rows read (produced, skipped or unreadable).
    pub rows: u64,
    /// What the rows produced: `skipped` counts noncurrent versions, folder markers
    /// and keys that are not images; `unreadable`, rows reported with file and line.
    pub produced: ProduceStats,
    /// Data files already produced by an earlier run.
    pub files_done_before: u64,
    /// The whole report was produced by an earlier run.
    pub already_done: bool,
    /// Keys an earlier report listed and this one does not: produced as deletes
    /// (also counted in `produced.deletes`).
    pub vanished: u64,
    /// The report is older than one already produced for its configuration: its
    /// missing keys are not deleted.
    pub older: bool,
}

/// The inventory configuration a report belongs to: the folder above its dated
/// folder (`…/source-bucket/config-id/2026-11-24T01-00Z/manifest.json`).
pub fn scope_of(report: &str) -> String {
    let mut parts: Vec<&str> = report.trim_end_matches('/').rsplitn(3, '/').collect();
    match parts.len() {
        3 => parts.pop().unwrap_or_default().to_string(),
        _ => report.to_string(),
    }
}

/// Where produced rows are stamped: the report's scope and generation.
#[derive(Clone)]
struct Stamp {
    scope: String,
    generation: i64,
}

/// Produces inventory reports.
pub struct InventoryProducer {
    output: Output,
    checkpoint: Checkpoint,
    s3: Option<aws_sdk_s3::Client>,
    config: Config,
    /// Where data files are downloaded to.
    scratch: PathBuf,
}

impl InventoryProducer {
    pub fn new(
        output: Output,
        checkpoint: Checkpoint,
        s3: Option<aws_sdk_s3::Client>,
        config: Config,
        scratch: PathBuf,
    ) -> Self {
        Self { output, checkpoint, s3, config, scratch }
    }

    fn s3(&self) -> Result<&aws_sdk_s3::Client, String> {
        self.s3.as_ref().ok_or_else(|| "no S3 client configured".to_string())
    }

    /// Produces the report at `location` (skipping what an earlier run produced).
    pub async fn produce(&self, location: &Location) -> Result<ReportStats, ProduceError> {
        let report = location.to_string();
        let mut stats = ReportStats::default();
        if self.checkpoint.finished(&report).await? {
            stats.already_done = true;
            return Ok(stats);
        }
        let manifest = self.read_manifest(location).await?;
        let columns = manifest.columns().map_err(|reason| manifest_error(&report, reason))?;
        info!(report = %report, source = manifest.source_bucket, files = manifest.files.len(), "producing inventory");
        let scope = scope_of(&report);
        let stamp = Stamp { generation: self.checkpoint.generation(&report, &scope).await?, scope };
        for data in &manifest.files {
            let progress = self.checkpoint.file(&report, &data.key).await?;
            if progress.done {
                stats.files_done_before += 1;
                continue;
            }
            let file_error = |reason: String| data_file_error(&data.key, reason);
            let (path, _temp) = self.fetch(location, &data.key).await.map_err(file_error)?;
            let (check_path, md5) = (path.clone(), data.md5_checksum.clone());
            tokio::task::spawn_blocking(move || rows::verify(&check_path, &md5))
                .await
                .map_err(|e| file_error(e.to_string()))?
                .map_err(file_error)?;
            self.produce_file((&report, &stamp), &data.key, &path, columns, progress, &mut stats).await?;
        }
        let created = manifest.creation_timestamp.as_deref().and_then(|t| t.trim().parse::<i64>().ok());
        let synced = self.checkpoint.synced(&stamp.scope).await?;
        stats.older = matches!((created, synced), (Some(created), Some(synced)) if created < synced);
        if stats.older {
            bucketlens_runtime::say!(
                "{report} is older than a report of the same configuration produced before: keys it does not list are \
                 not deleted"
            );
        } else {
            stats.vanished = self.produce_vanished(&manifest.source_bucket, &stamp).await?;
            stats.produced.deletes += stats.vanished;
            stats.produced.images += stats.vanished;
            if let Some(created) = created {
                self.checkpoint.sync_done(&stamp.scope, created).await?;
            }
        }
        self.checkpoint.finish(&report).await?;
        Ok(stats)
    }

    /// Every current row of the report at `location`, image or not, each data file
    /// checked first as [`InventoryProducer::produce`] checks it; nothing is produced
    /// (`plan`). `visit` gets the data file's key, the line, and the object or why the
    /// row cannot be read. Returns the manifest.
    pub async fn each_listed(
        &self,
        location: &Location,
        mut visit: impl FnMut(&str, u64, Result<ObjectChanged, String>),
    ) -> Result<Manifest, ProduceError> {
        let manifest = self.read_manifest(location).await?;
        let columns = manifest.columns().map_err(|reason| manifest_error(location, reason))?;
        for data in &manifest.files {
            let file_error = |reason: String| data_file_error(&data.key, reason);
            let (path, _temp) = self.fetch(location, &data.key).await.map_err(file_error)?;
            let md5 = data.md5_checksum.clone();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(u64, Result<ObjectChanged, String>)>>(4);
            let reader = tokio::task::spawn_blocking(move || {
                rows::verify(&path, &md5)?;
                let mut rows = rows::Rows::open(&path, columns)?;
                let mut batch = Vec::with_capacity(1024);
                while let Some((line, row)) = rows.next_listed() {
                    match row {
                        Ok(None) => {}
                        Ok(Some(change)) => batch.push((line, Ok(change))),
                        Err(e) => batch.push((line, Err(e))),
                    }
                    if batch.len() == 1024 && tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                        return Ok(());
                    }
                }
                let _ = tx.blocking_send(batch);
                Ok::<(), String>(())
            });
            while let Some(batch) = rx.recv().await {
                for (line, row) in batch {
                    visit(&data.key, line, row);
                }
            }
            reader.await.map_err(|e| file_error(e.to_string()))?.map_err(file_error)?;
        }
        Ok(manifest)
    }

    /// Deletes for the keys of the report's scope that it did not list.
    async fn produce_vanished(&self, bucket: &str, stamp: &Stamp) -> Result<u64, ProduceError> {
        let mut count = 0;
        loop {
            let keys = self.checkpoint.vanished(&stamp.scope, stamp.generation, self.config.batch_size).await?;
            if keys.is_empty() {
                return Ok(count);
            }
            let now = bucketlens_runtime::now_ms();
            let mut records = Vec::with_capacity(keys.len());
            for key in &keys {
                let change = ObjectChanged {
                    bucket: bucket.to_string(),
                    key: key.clone(),
                    version_id: None,
                    kind: ChangeKind::Delete,
                    size: None,
                    etag: None,
                    last_modified: None,
                    sequencer: None,
                    source: bucketlens_schemas::ChangeSource::Inventory,
                    observed_at: now,
                    storage_class: None,
                    access_tier: None,
                };
                let value = change.to_bytes().map_err(|e| ProduceError::reading(key.clone(), e.to_string()))?;
                records.push((OutRecord::new(record_key(bucket, key), value), change));
            }
            count += keys.len() as u64;
            self.output.send(topics::OBJECTS_CHANGED, records).await?;
            self.checkpoint.forget(&stamp.scope, keys).await?;
        }
    }

    async fn produce_file(
        &self,
        (report, stamp): (&str, &Stamp),
        file: &str,
        path: &Path,
        columns: manifest::Columns,
        progress: FileProgress,
        stats: &mut ReportStats,
    ) -> Result<(), ProduceError> {
        let file_error = |reason: String| data_file_error(file, reason);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let (path, batch_size) = (path.to_path_buf(), self.config.batch_size);
        let reader = tokio::task::spawn_blocking(move || read_batches(&path, columns, progress.line, batch_size, &tx));
        while let Some(batch) = rx.recv().await {
            stats.rows += batch.rows;
            let produced = &mut stats.produced;
            produced.skipped += batch.skipped;
            for (line, reason) in &batch.unreadable {
                // The user-facing report; a warn! beside it would print each row twice.
                bucketlens_runtime::say!("{file}, line {line}: {reason}");
            }
            produced.unreadable += batch.unreadable.len() as u64;
            let deletes = batch.records.iter().filter(|(_, c)| c.kind == ChangeKind::Delete).count() as u64;
            produced.images += batch.records.len() as u64;
            produced.deletes += deletes;
            produced.upserts += batch.records.len() as u64 - deletes;
            let (mut listed, mut deleted) = (Vec::new(), Vec::new());
            for (_, change) in &batch.records {
                match change.kind {
                    ChangeKind::Upsert => listed.push(change.key.clone()),
                    ChangeKind::Delete => deleted.push(change.key.clone()),
                }
            }
            self.output.send(topics::OBJECTS_CHANGED, batch.records).await?;
            self.checkpoint.listed(&stamp.scope, listed, deleted, stamp.generation).await?;
            self.checkpoint.save(report, file, FileProgress { line: batch.last_line, done: false }).await?;
        }
        reader.await.map_err(|e| file_error(e.to_string()))?.map_err(file_error)?;
        self.checkpoint.save(report, file, FileProgress { line: u64::MAX >> 1, done: true }).await?;
        Ok(())
    }

    async fn read_manifest(&self, location: &Location) -> Result<Manifest, ProduceError> {
        let err = |reason: String| manifest_error(location, reason);
        let (bytes, checksum) = match location {
            Location::Local(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| err(format!("cannot read: {e}")))?;
                let checksum = tokio::fs::read_to_string(path.with_file_name("manifest.checksum")).await.ok();
                (bytes, checksum)
            }
            Location::S3 { bucket, key } => {
                let bytes = self.get_small(bucket, key).await.map_err(err)?;
                let sibling = match key.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/manifest.checksum"),
                    None => "manifest.checksum".to_string(),
                };
                let checksum =
                    self.get_small(bucket, &sibling).await.ok().map(|b| String::from_utf8_lossy(&b).into_owned());
                (bytes, checksum)
            }
        };
        Manifest::parse(&bytes, checksum.as_deref()).map_err(err)
    }

    async fn get_small(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let out = self.s3()?.get_object().bucket(bucket).key(key).send().await;
        let out = out.map_err(|e| format!("s3://{bucket}/{key}: {}", AwsFailure::of(&e)))?;
        let body = out.body.collect().await.map_err(|e| format!("s3://{bucket}/{key}: {e}"))?;
        Ok(body.to_vec())
    }

    /// A local path holding the data file, and the temporary file to drop after.
    async fn fetch(&self, location: &Location, key: &str) -> Result<(PathBuf, Option<tempfile::TempPath>), String> {
        match location {
            Location::Local(manifest) => resolve_local(manifest, key).map(|p| (p, None)),
            Location::S3 { bucket, .. } => {
                tokio::fs::create_dir_all(&self.scratch)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", self.scratch.display()))?;
                let temp = tempfile::NamedTempFile::new_in(&self.scratch)
                    .map_err(|e| format!("cannot create a file in {}: {e}", self.scratch.display()))?
                    .into_temp_path();
                let out = self.s3()?.get_object().bucket(bucket).key(key).send().await;
                let mut out = out.map_err(|e| format!("s3://{bucket}/{key}: {}", AwsFailure::of(&e)))?;
                let mut file = tokio::fs::File::create(&temp).await.map_err(|e| format!("{}: {e}", temp.display()))?;
                while let Some(chunk) = out.body.try_next().await.map_err(|e| format!("download broke off: {e}"))? {
                    tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                        .await
                        .map_err(|e| format!("writing {}: {e}", temp.display()))?;
                }
                tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(|e| format!("{}: {e}", temp.display()))?;
                Ok((temp.to_path_buf(), Some(temp)))
            }
        }
    }

    /// `--watch s3://bucket/prefix/`: every `manifest.checksum` under the prefix marks a
    /// finished report; each one not produced yet is produced, oldest key first.
    pub async fn watch(
        &self,
        bucket: &str,
        prefix: &str,
        shutdown: CancellationToken,
        mut on_report: impl FnMut(&Location, &ReportStats),
    ) -> Result<(), ProduceError> {
        while !shutdown.is_cancelled() {
            let manifests = self
                .find_reports(bucket, prefix)
                .await
                .map_err(|reason| manifest_error(format!("s3://{bucket}/{prefix}"), reason))?;
            for location in manifests {
                if self.checkpoint.finished(&location.to_string()).await? {
                    continue;
                }
                let stats = self.produce(&location).await?;
                on_report(&location, &stats);
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.watch_interval) => {}
                () = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    async fn find_reports(&self, bucket: &str, prefix: &str) -> Result<Vec<Location>, String> {
        let mut pages = self.s3()?.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsFailure::of(&e).to_string())?;
            for object in page.contents.unwrap_or_default() {
                let Some(key) = object.key else { continue };
                if let Some(dir) = key.strip_suffix("manifest.checksum") {
                    found.push(Location::S3 { bucket: bucket.to_string(), key: format!("{dir}manifest.json") });
                }
            }
        }
        found.sort_by_key(|l| l.to_string());
        Ok(found)
    }
}

/// A local report's data file: `key` under the nearest ancestor folder of the
/// manifest where it exists (a local copy of the destination bucket works).
fn resolve_local(manifest: &Path, key: &str) -> Result<PathBuf, String> {
    let mut dir = manifest.parent();
    while let Some(d) = dir {
        let candidate = d.join(key);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(format!("not found under any folder above {} (copy the destination bucket with its keys)", manifest.display()))
}

struct Batch {
    records: Vec<(OutRecord, ObjectChanged)>,
    rows: u64,
    skipped: u64,
    unreadable: Vec<(u64, String)>,
    last_line: u64,
}

impl Batch {
    fn new(last_line: u64) -> Self {
        Self { records: Vec::new(), rows: 0, skipped: 0, unreadable: Vec::new(), last_line }
    }
}

/// Reads rows after `after_line` into batches (on the blocking pool).
fn read_batches(
    path: &Path,
    columns: manifest::Columns,
    after_line: u64,
    batch_size: usize,
    tx: &tokio::sync::mpsc::Sender<Batch>,
) -> Result<(), String> {
    let mut rows = rows::Rows::open(path, columns)?;
    let mut batch = Batch::new(after_line);
    while let Some((line, row)) = rows.next_row() {
        if line <= after_line {
            continue;
        }
        batch.rows += 1;
        batch.last_line = line;
        match row {
            Ok(Some(change)) => {
                let value = change.to_bytes().map_err(|e| format!("line {line}: encoding failed: {e}"))?;
                batch.records.push((OutRecord::new(record_key(&change.bucket, &change.key), value), change));
            }
            Ok(None) => batch.skipped += 1,
            Err(reason) => batch.unreadable.push((line, reason)),
        }
        if batch.records.len() >= batch_size || batch.rows as usize >= batch_size * 4 {
            let full = std::mem::replace(&mut batch, Batch::new(line));
            if tx.blocking_send(full).is_err() {
                return Ok(()); // the producer stopped
            }
        }
    }
    if batch.rows > 0 {
        let _ = tx.blocking_send(batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_belongs_to_the_folder_above_its_dated_folder() {
        assert_eq!(scope_of("s3://inv/photos/daily/2026-11-24T01-00Z/manifest.json"), "s3://inv/photos/daily");
        assert_eq!(
            scope_of("/tmp/x/inventory/photos/daily/2026-11-25T01-00Z/manifest.json"),
            "/tmp/x/inventory/photos/daily"
        );
        assert_eq!(scope_of("manifest.json"), "manifest.json");
    }

    #[test]
    fn a_reports_checksum_names_its_manifest() {
        let s3 = |bucket: &str, key: &str| Location::S3 { bucket: bucket.into(), key: key.into() };
        assert_eq!(
            Location::parse("s3://inv/photos/daily/2026-11-24T01-00Z/manifest.checksum"),
            s3("inv", "photos/daily/2026-11-24T01-00Z/manifest.json")
        );
        assert_eq!(Location::parse("/r/manifest.checksum"), Location::Local("/r/manifest.json".into()));
        // Only the file of that name.
        assert_eq!(Location::parse("s3://inv/my-manifest.checksum"), s3("inv", "my-manifest.checksum"));
    }
}

//! One CSV data file: its integrity check, then its rows as changes.
//!
//! A row is the current state of one object version. Only the latest version of
//! each key matters to the index: noncurrent versions are skipped, a latest delete
//! marker is a delete, and folder markers and keys that are not images are skipped.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use bucketlens_runtime::aws::{decode_key, parse_time};
use bucketlens_runtime::now_ms;
use bucketlens_schemas::{ChangeKind, ChangeSource, ImageFormat, ObjectChanged};
use flate2::read::MultiGzDecoder;
use md5::{Digest, Md5};

use crate::manifest::{to_hex, Columns};

/// Checks the file against the manifest's MD5 and reads every gzip member to the
/// end, so a damaged file is refused before any of its rows is produced.
pub fn verify(path: &Path, expected_md5: &str) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(|e| format!("reading {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let actual = to_hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected_md5) {
        return Err(format!("MD5 is {actual}, the manifest says {expected_md5}: the file is damaged or incomplete"));
    }
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut gz = MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file));
    std::io::copy(&mut gz, &mut std::io::sink()).map_err(|e| format!("not a complete gzip file: {e}"))?;
    Ok(())
}

/// The rows of a verified data file.
pub struct Rows {
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Columns,
    record: csv::StringRecord,
}

impl Rows {
    /// The rows of a gzipped data file.
    pub fn open(path: &Path, columns: Columns) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Self::from_reader(Box::new(MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file))), columns))
    }

    /// The rows of CSV text, already decompressed.
    pub fn from_reader(csv: Box<dyn Read + Send>, columns: Columns) -> Self {
        let reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(csv);
        Self { reader, columns, record: csv::StringRecord::new() }
    }

    /// The next row: its line number (from 1) and its change, `None` when skipped.
    /// `Err` names the line and what is wrong with it; reading can go on after it.
    pub fn next_row(&mut self) -> Option<(u64, Result<Option<ObjectChanged>, String>)> {
        self.next_with(change)
    }

    /// The next row as the report has it, image or not (`plan` counts every object):
    /// its line number and the object, `None` for a noncurrent version.
    pub fn next_listed(&mut self) -> Option<(u64, Result<Option<ObjectChanged>, String>)> {
        self.next_with(listed)
    }

    fn next_with(&mut self, read: ReadRow) -> Option<(u64, Result<Option<ObjectChanged>, String>)> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                Some((line, read(&self.record, &self.columns)))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                Some((line, Err(format!("not a CSV row: {e}"))))
            }
        }
    }
}

type ReadRow = fn(&csv::StringRecord, &Columns) -> Result<Option<ObjectChanged>, String>;

/// A row as a change, for images only.
fn change(row: &csv::StringRecord, c: &Columns) -> Result<Option<ObjectChanged>, String> {
    let change = listed(row, c)?;
    Ok(change.filter(|c| !c.key.ends_with('/') && ImageFormat::from_extension(&c.key).is_some()))
}

/// A row as a change of any key; `None` for a noncurrent version.
fn listed(row: &csv::StringRecord, c: &Columns) -> Result<Option<ObjectChanged>, String> {
    let field = |i: Option<usize>| i.and_then(|i| row.get(i)).filter(|v| !v.is_empty());
    let bucket = field(Some(c.bucket)).ok_or("the Bucket field is empty")?;
    let raw_key = field(Some(c.key)).ok_or("the Key field is empty")?;
    let key = decode_key(raw_key)?;
    let flag = |i: Option<usize>| field(i).map(|v| v.eq_ignore_ascii_case("true"));
    if flag(c.is_latest) == Some(false) {
        return Ok(None); // a noncurrent version
    }
    let kind = if flag(c.is_delete_marker) == Some(true) { ChangeKind::Delete } else { ChangeKind::Upsert };
    let size = match field(c.size) {
        Some(s) => Some(s.parse::<i64>().map_err(|e| format!("Size {s:?}: {e}"))?),
        None => None,
    };
    let last_modified = match field(c.last_modified) {
        Some(t) => Some(parse_time(t).map_err(|e| format!("LastModifiedDate {t:?}: {e}"))?),
        None => None,
    };
    let upsert = kind == ChangeKind::Upsert;
    Ok(Some(ObjectChanged {
        bucket: bucket.to_string(),
        key,
        // An empty VersionId is the null version (unversioned, or written before versioning).
        version_id: field(c.version_id).filter(|v| *v != "null").map(str::to_string),
        kind,
        size: size.filter(|_| upsert),
        etag: field(c.etag).filter(|_| upsert).map(|e| e.trim_matches('"').to_string()),
        last_modified,
        sequencer: None,
        source: ChangeSource::Inventory,
        observed_at: now_ms(),
        storage_class: field(c.storage_class).filter(|_| upsert).map(str::to_string),
        access_tier: field(c.access_tier).filter(|_| upsert).map(str::to_string),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn storage_classes_and_archive_tiers_ride_on_the_change() {
        let manifest = Manifest {
            source_bucket: "photos".into(),
            destination_bucket: "arn:aws:s3:::inv".into(),
            creation_timestamp: None,
            file_format: "CSV".into(),
            file_schema: "Bucket, Key, Size, StorageClass, IntelligentTieringAccessTier".into(),
            files: Vec::new(),
        };
        let csv = "\"photos\",\"a.jpg\",\"10\",\"STANDARD\",\"\"\n\
                   \"photos\",\"b.jpg\",\"10\",\"GLACIER\",\"\"\n\
                   \"photos\",\"c.jpg\",\"10\",\"DEEP_ARCHIVE\",\"\"\n\
                   \"photos\",\"d.jpg\",\"10\",\"GLACIER_IR\",\"\"\n\
                   \"photos\",\"e.jpg\",\"10\",\"INTELLIGENT_TIERING\",\"ARCHIVE_INSTANT_ACCESS\"\n\
                   \"photos\",\"f.jpg\",\"10\",\"INTELLIGENT_TIERING\",\"ARCHIVE_ACCESS\"\n\
                   \"photos\",\"g.jpg\",\"10\",\"INTELLIGENT_TIERING\",\"DEEP_ARCHIVE_ACCESS\"\n";
        let mut rows = Rows::from_reader(Box::new(std::io::Cursor::new(csv)), manifest.columns().unwrap());
        let mut seen = Vec::new();
        while let Some((_, row)) = rows.next_row() {
            let change = row.unwrap().unwrap();
            seen.push((change.key.clone(), change.storage_class.clone().unwrap(), change.archived()));
        }
        let archived: Vec<&str> = seen.iter().filter(|s| s.2).map(|s| s.0.as_str()).collect();
        assert_eq!(archived, ["b.jpg", "c.jpg", "f.jpg", "g.jpg"]);
        assert_eq!(seen[4].1, "INTELLIGENT_TIERING");
    }
}

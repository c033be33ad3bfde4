//! `manifest.json` of an S3 Inventory report, as AWS documents it, and its
//! `manifest.checksum` (the MD5 of manifest.json, in hex).

use md5::{Digest, Md5};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub source_bucket: String,
    /// `arn:aws:s3:::bucket` of the bucket holding the report.
    pub destination_bucket: String,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    pub file_format: String,
    /// Column names in order: `Bucket, Key, VersionId, IsLatest, ...`.
    pub file_schema: String,
    pub files: Vec<DataFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DataFile {
    /// The data file's key in the destination bucket.
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(rename = "MD5checksum")]
    pub md5_checksum: String,
}

/// Where each field sits in a CSV row.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub bucket: usize,
    pub key: usize,
    pub version_id: Option<usize>,
    pub is_latest: Option<usize>,
    pub is_delete_marker: Option<usize>,
    pub size: Option<usize>,
    pub last_modified: Option<usize>,
    pub etag: Option<usize>,
    pub storage_class: Option<usize>,
    pub access_tier: Option<usize>,
}

impl Manifest {
    /// Parses manifest.json, checking it against manifest.checksum when given.
    pub fn parse(bytes: &[u8], checksum: Option<&str>) -> Result<Self, String> {
        if let Some(expected) = checksum {
            let actual = hex_md5(bytes);
            if !actual.eq_ignore_ascii_case(expected.trim()) {
                return Err(format!("manifest.checksum says {} but manifest.json's MD5 is {actual}", expected.trim()));
            }
        }
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| format!("not an inventory manifest: {e}"))?;
        if !manifest.file_format.eq_ignore_ascii_case("CSV") {
            return Err(format!(
                "fileFormat {} is not supported yet: configure the inventory to write CSV",
                manifest.file_format
            ));
        }
        manifest.columns()?;
        Ok(manifest)
    }

    /// The destination bucket's name (`arn:aws:s3:::name` → `name`).
    pub fn destination_bucket_name(&self) -> &str {
        self.destination_bucket.rsplit(":::").next().unwrap_or(&self.destination_bucket)
    }

    /// The column of each field from `fileSchema`; only Bucket and Key must be there.
    pub fn columns(&self) -> Result<Columns, String> {
        let names: Vec<&str> = self.file_schema.split(',').map(str::trim).collect();
        let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let required =
            |name: &str| find(name).ok_or_else(|| format!("fileSchema has no {name} column: {:?}", self.file_schema));
        Ok(Columns {
            bucket: required("Bucket")?,
            key: required("Key")?,
            version_id: find("VersionId"),
            is_latest: find("IsLatest"),
            is_delete_marker: find("IsDeleteMarker"),
            size: find("Size"),
            last_modified: find("LastModifiedDate"),
            etag: find("ETag"),
            storage_class: find("StorageClass"),
            access_tier: find("IntelligentTieringAccessTier"),
        })
    }
}

/// The MD5 of `bytes` in lowercase hex.
pub fn hex_md5(bytes: &[u8]) -> String {
    to_hex(&Md5::digest(bytes))
}

pub fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

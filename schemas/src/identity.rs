//! How an object is named across the pipeline: record keys, document ids, ordering.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

/// The log record key of an object: `bucket/key`. Bucket names cannot hold `/`, so
/// the split is unambiguous, and every record of one object lands on one partition.
pub fn record_key(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// The index document id of an object: hex SHA-256 of `bucket/key` (64 characters).
///
/// S3 keys reach 1024 bytes and OpenSearch caps `_id` at 512, so the id is a hash;
/// the same function is used by every index backend, so ids agree across them.
pub fn document_id(bucket: &str, key: &str) -> String {
    let digest = Sha256::digest(record_key(bucket, key).as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Orders two sequencers of the same key the way S3 documents it: hex strings,
/// compared after right-padding the shorter one with zeros. Case-insensitive.
pub fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| {
        let mut padded = s.to_ascii_uppercase();
        padded.extend(std::iter::repeat_n('0', width - s.len()));
        padded
    };
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencers_compare_after_right_padding() {
        assert_eq!(compare_sequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"), Ordering::Less);
        // "1" padded is "10": greater than "0F", although "1" < "0F" as plain strings.
        assert_eq!(compare_sequencers("1", "0F"), Ordering::Greater);
        assert_eq!(compare_sequencers("ab", "AB00"), Ordering::Equal);
    }

    #[test]
    fn document_ids_are_stable_fixed_length_and_distinct() {
        let long_key = "k".repeat(1024);
        let id = document_id("photos", &long_key);
        assert_eq!(id.len(), 64);
        assert_eq!(id, document_id("photos", &long_key));
        assert_ne!(document_id("a", "b/c"), document_id("a", "b/d"));
        // Known value: `printf 'photos/cat.png' | sha256sum`.
        assert_eq!(
            document_id("photos", "cat.png"),
            "b9604c0ce21ec64d372a77d2b0123224b64bc1962c230f7c55318a131218a6ab"
        );
    }
}

//! Records for the index tests, shared by the tantivy unit tests and the
//! OpenSearch integration tests (included by path in both).

use bucketlens_schemas::{ImageLabeled, Label, LabelKind, ModelInfo};

pub fn label(name: &str, confidence: f32) -> Label {
    Label { name: name.into(), confidence, parents: vec![], categories: vec![], aliases: vec![], instances: vec![] }
}

/// A record of `key` labeled at `labeled_at` (which orders records of one object).
pub fn record(key: &str, labeled_at: i64, kind: LabelKind, labels: Vec<Label>) -> ImageLabeled {
    ImageLabeled {
        text: None,
        bucket: "photos".into(),
        key: key.into(),
        version_id: None,
        etag: None,
        size: Some(100),
        last_modified: Some(1),
        sequencer: None,
        kind,
        labels,
        image: None,
        model: ModelInfo { name: "m".into(), version: "1".into() },
        labeled_at,
        error: None,
        labeler: None,
        metadata: None,
        hashes: None,
        storage_class: None,
        embedding: None,
    }
}

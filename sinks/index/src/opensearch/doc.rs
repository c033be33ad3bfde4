//! A document as OpenSearch stores it: the record, with the lowercased names that
//! label queries match, and what a conditional write needs of the stored one.

use bucketlens_schemas::{
    ImageEmbedding, ImageHashes, ImageLabeled, ImageProperties, ImageText, Label, LabelError, LabelKind, ModelInfo,
    PhotoMetadata,
};
use serde::{Deserialize, Serialize};

use crate::index::{DocState, Hit};
use crate::photo;
use crate::version::Version;

/// A label as stored: the record's label plus its lowercased name and aliases, which
/// label queries match (labels match case-insensitively, as in the embedded index).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DocLabel {
    #[serde(flatten)]
    pub(super) label: Label,
    pub(super) name_lc: String,
    #[serde(default)]
    pub(super) aliases_lc: Vec<String>,
}

/// A document's `_source`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Doc {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) state: DocState,
    #[serde(default)]
    pub(super) labels: Vec<DocLabel>,
    /// Label names, for label counts (terms aggregation).
    #[serde(default)]
    pub(super) label: Vec<String>,
    #[serde(default)]
    pub(super) parents: Vec<String>,
    pub(super) size: Option<i64>,
    pub(super) last_modified: Option<i64>,
    pub(super) etag: Option<String>,
    pub(super) version_id: Option<String>,
    pub(super) sequencer: Option<String>,
    pub(super) image: Option<ImageProperties>,
    pub(super) model: ModelInfo,
    pub(super) labeled_at: i64,
    pub(super) error: Option<LabelError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) metadata: Option<PhotoMetadata>,
    /// What `year:`/`taken:`, `camera:`, `lens:`, `keyword:`, `country:`, `city:` and
    /// `place:` match ([`crate::photo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) taken: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) camera: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) lens: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) keyword: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) country: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) city: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) place: Vec<String>,
    /// The photo facets' values ([`crate::photo::Facet`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) facet_year: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) facet_camera: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) facet_country: Option<String>,
    /// The GPS position as a `geo_point` (`lat,lon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) location: Option<String>,
    /// What finds the same photo twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) hashes: Option<ImageHashes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) storage_class: Option<String>,
    /// The embedding's components (a `knn_vector`, in the field of its length: see
    /// [`crate::similar::KNN_FIELDS`]) and its model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) embedding: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) embedding_512: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) embedding_768: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) embedding_model: Option<String>,
    /// The photo's text as the record has it (shown as stored), and the words and
    /// phrases `text:` matches ([`crate::photo::text_terms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) text: Option<ImageText>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) text_terms: Vec<String>,
}

impl Doc {
    pub(super) fn of(record: &ImageLabeled) -> Self {
        let state = match record.kind {
            LabelKind::Labeled => DocState::Labeled,
            LabelKind::Failed => DocState::Failed,
            LabelKind::Removed => DocState::Removed,
        };
        let tombstone = state == DocState::Removed;
        let labels: Vec<DocLabel> = if tombstone {
            Vec::new()
        } else {
            record
                .labels
                .iter()
                .map(|l| DocLabel {
                    label: l.clone(),
                    name_lc: l.name.to_lowercase(),
                    aliases_lc: l.aliases.iter().map(|a| a.to_lowercase()).collect(),
                })
                .collect()
        };
        let mut parents: Vec<String> = labels.iter().flat_map(|l| l.label.parents.iter().cloned()).collect();
        parents.sort();
        parents.dedup();
        Self {
            bucket: record.bucket.clone(),
            key: record.key.clone(),
            state,
            label: labels.iter().map(|l| l.label.name.clone()).collect(),
            labels,
            parents,
            size: record.size,
            last_modified: record.last_modified,
            etag: record.etag.clone(),
            version_id: record.version_id.clone(),
            sequencer: record.sequencer.clone(),
            image: if tombstone { None } else { record.image.clone() },
            model: record.model.clone(),
            labeled_at: record.labeled_at,
            error: if tombstone { None } else { record.error.clone() },
            metadata: None,
            taken: None,
            camera: Vec::new(),
            lens: Vec::new(),
            keyword: Vec::new(),
            country: Vec::new(),
            city: Vec::new(),
            place: Vec::new(),
            facet_year: None,
            facet_camera: None,
            facet_country: None,
            location: None,
            hashes: if tombstone { None } else { record.hashes.clone() },
            storage_class: if tombstone { None } else { record.storage_class.clone() },
            embedding: None,
            embedding_512: None,
            embedding_768: None,
            embedding_model: None,
            text_terms: match &record.text {
                Some(text) if state == DocState::Labeled => photo::text_terms(&text.text),
                _ => Vec::new(),
            },
            text: if state == DocState::Labeled { record.text.clone() } else { None },
        }
        .with_embedding(if state == DocState::Labeled { record.embedding.as_ref() } else { None })
        .with_metadata(if tombstone { None } else { record.metadata.clone() })
    }

    /// The metadata, and the fields queries match that come from it.
    fn with_metadata(mut self, metadata: Option<PhotoMetadata>) -> Self {
        if let Some(m) = &metadata {
            self.taken = photo::taken_ms(m);
            self.camera = photo::terms(m, photo::Field::Camera);
            self.lens = photo::terms(m, photo::Field::Lens);
            self.keyword = photo::terms(m, photo::Field::Keyword);
            self.country = photo::terms(m, photo::Field::Country);
            self.city = photo::terms(m, photo::Field::City);
            self.place = photo::terms(m, photo::Field::Place);
            self.facet_year = photo::Facet::Year.value(m);
            self.facet_camera = photo::Facet::Camera.value(m);
            self.facet_country = photo::Facet::Country.value(m);
            self.location = m.gps.as_ref().map(|g| format!("{},{}", g.lat, g.lon));
        }
        self.metadata = metadata;
        self
    }

    /// The embedding, when a `knn_vector` of its length exists (see
    /// [`crate::similar::KNN_FIELDS`]).
    fn with_embedding(mut self, embedding: Option<&ImageEmbedding>) -> Self {
        if let Some((embedding, (field, floats))) = embedding.and_then(|e| Some((e, crate::similar::as_floats(e)?))) {
            match field {
                "embedding_512" => self.embedding_512 = Some(floats),
                "embedding_768" => self.embedding_768 = Some(floats),
                _ => self.embedding = Some(floats),
            }
            self.embedding_model = Some(embedding.model.clone());
        }
        self
    }

    pub(super) fn hit(self, id: String) -> Hit {
        Hit {
            id,
            bucket: self.bucket,
            key: self.key,
            state: self.state,
            labels: self.labels.into_iter().map(|l| l.label).collect(),
            size: self.size,
            last_modified: self.last_modified,
            etag: self.etag,
            version_id: self.version_id,
            sequencer: self.sequencer,
            image: self.image,
            model: self.model,
            text: self.text,
            labeled_at: self.labeled_at,
            error: self.error,
            metadata: self.metadata,
            hashes: self.hashes,
            storage_class: self.storage_class,
            embedding: match (self.embedding_model, self.embedding.or(self.embedding_512).or(self.embedding_768)) {
                (Some(model), Some(values)) => crate::similar::from_floats(model, &values),
                _ => None,
            },
            similarity: None,
        }
    }
}

/// What a document holds now: its version and the tokens a conditional write needs.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) version: Version,
    pub(super) seq_no: i64,
    pub(super) primary_term: i64,
}

/// The records of one document in a batch, in log order.
pub(super) struct Pending {
    pub(super) id: String,
    pub(super) records: Vec<ImageLabeled>,
}

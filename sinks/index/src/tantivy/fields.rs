//! The tantivy schema and the conversion between records and documents.

use bucketlens_schemas::{
    document_id, ImageEmbedding, ImageHashes, ImageLabeled, ImageProperties, Label, LabelError, LabelKind, ModelInfo,
};
use tantivy::schema::Value;
use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING};
use tantivy::{TantivyDocument, Term};

use crate::index::{DocState, Hit};
use crate::photo;
use crate::version::Version;

/// Confidences are indexed in tenths of a percent: 0..=1000.
pub const CONFIDENCE_SCALE: f32 = 10.0;

#[derive(Debug, Clone)]
pub struct Fields {
    pub schema: Schema,
    pub id: Field,
    pub bucket: Field,
    pub key: Field,
    pub state: Field,
    /// Display names (FAST: label counts).
    pub label: Field,
    /// `lowercased name \0 confidence(0000-1000)`: per-label confidence ranges.
    pub label_conf: Field,
    /// The labels as JSON, for display.
    pub labels_json: Field,
    pub size: Field,
    pub last_modified: Field,
    pub etag: Field,
    pub version_id: Field,
    pub sequencer: Field,
    pub format: Field,
    pub width: Field,
    pub height: Field,
    pub model: Field,
    pub model_version: Field,
    pub labeled_at: Field,
    pub error_code: Field,
    pub error_message: Field,
    pub error_retryable: Field,
    /// When the photo was taken: wall-clock ms ([`crate::photo::taken_ms`]).
    pub taken: Field,
    /// Folded terms of the camera, lens, keywords and place ([`crate::photo::terms`]).
    pub camera: Field,
    pub lens: Field,
    pub keyword: Field,
    pub country: Field,
    pub city: Field,
    pub place: Field,
    /// The photo's metadata as JSON, for display.
    pub metadata_json: Field,
    /// The photo facets' values ([`crate::photo::Facet`]).
    pub facet_year: Field,
    pub facet_camera: Field,
    pub facet_country: Field,
    /// The bytes' SHA-256 (exact copies: a term) and the 64-bit perceptual hash.
    pub sha256: Field,
    pub dhash: Field,
    pub storage_class: Field,
    /// The embedding's bytes, its model (a term: only vectors of one model are
    /// compared), and its sketch in [`crate::similar::SKETCH_COLUMNS`] fast columns.
    pub embedding: Field,
    pub embedding_model: Field,
    pub sketch: [Field; crate::similar::SKETCH_COLUMNS],
    /// The words and phrases of the photo's text ([`crate::photo::text_terms`]), and
    /// the text with its lines and boxes as JSON, for display.
    pub text_terms: Field,
    pub text_json: Field,
}

/// The name of the `i`th sketch column.
pub fn sketch_column(i: usize) -> String {
    format!("sketch{i}")
}

impl Fields {
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let fields = Self {
            id: b.add_text_field("id", STRING | STORED),
            // FAST: facets (bucket, model version) and the paging order (key, bucket).
            bucket: b.add_text_field("bucket", STRING | STORED | FAST),
            key: b.add_text_field("key", STRING | STORED | FAST),
            state: b.add_text_field("state", STRING | STORED),
            label: b.add_text_field("label", STRING | FAST),
            label_conf: b.add_text_field("label_conf", STRING),
            labels_json: b.add_text_field("labels_json", STORED),
            size: b.add_i64_field("size", INDEXED | STORED | FAST),
            last_modified: b.add_i64_field("last_modified", INDEXED | STORED | FAST),
            etag: b.add_text_field("etag", STORED),
            version_id: b.add_text_field("version_id", STORED),
            sequencer: b.add_text_field("sequencer", STORED),
            format: b.add_text_field("format", STRING | STORED),
            width: b.add_i64_field("width", STORED),
            height: b.add_i64_field("height", STORED),
            model: b.add_text_field("model", STRING | STORED),
            model_version: b.add_text_field("model_version", STRING | STORED | FAST),
            labeled_at: b.add_i64_field("labeled_at", INDEXED | STORED),
            error_code: b.add_text_field("error_code", STRING | STORED),
            error_message: b.add_text_field("error_message", STORED),
            error_retryable: b.add_bool_field("error_retryable", STORED),
            taken: b.add_i64_field("taken", INDEXED | STORED | FAST),
            camera: b.add_text_field("camera", STRING),
            lens: b.add_text_field("lens", STRING),
            keyword: b.add_text_field("keyword", STRING),
            country: b.add_text_field("country", STRING),
            city: b.add_text_field("city", STRING),
            place: b.add_text_field("place", STRING),
            metadata_json: b.add_text_field("metadata_json", STORED),
            facet_year: b.add_text_field(photo::Facet::Year.field(), STRING | FAST),
            facet_camera: b.add_text_field(photo::Facet::Camera.field(), STRING | FAST),
            facet_country: b.add_text_field(photo::Facet::Country.field(), STRING | FAST),
            sha256: b.add_text_field("sha256", STRING | STORED),
            dhash: b.add_i64_field("dhash", STORED),
            storage_class: b.add_text_field("storage_class", STRING | STORED),
            embedding: b.add_bytes_field("embedding", STORED),
            embedding_model: b.add_text_field("embedding_model", STRING | STORED),
            sketch: std::array::from_fn(|i| b.add_i64_field(&sketch_column(i), FAST)),
            text_terms: b.add_text_field("text_terms", STRING),
            text_json: b.add_text_field("text_json", STORED),
            schema: Schema::builder().build(),
        };
        Self { schema: b.build(), ..fields }
    }

    pub fn id_term(&self, id: &str) -> Term {
        Term::from_field_text(self.id, id)
    }

    /// The field holding a metadata field's terms.
    pub fn meta(&self, field: photo::Field) -> Field {
        match field {
            photo::Field::Camera => self.camera,
            photo::Field::Lens => self.lens,
            photo::Field::Keyword => self.keyword,
            photo::Field::Country => self.country,
            photo::Field::City => self.city,
            photo::Field::Place => self.place,
        }
    }

    /// The field holding a photo facet's values.
    pub fn facet(&self, facet: photo::Facet) -> Field {
        match facet {
            photo::Facet::Year => self.facet_year,
            photo::Facet::Camera => self.facet_camera,
            photo::Facet::Country => self.facet_country,
        }
    }

    /// The term of `label` (lowercased) at confidence `tenths` (0..=1000 are stored;
    /// a range's exclusive end may be above, so that 1000 itself is inside it).
    pub fn label_conf_term(&self, label: &str, tenths: u32) -> Term {
        Term::from_field_text(self.label_conf, &format!("{}\u{0}{:04}", label.to_lowercase(), tenths.min(9999)))
    }

    /// The document for a record.
    pub fn document(&self, record: &ImageLabeled) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        let state = match record.kind {
            LabelKind::Labeled => DocState::Labeled,
            LabelKind::Failed => DocState::Failed,
            LabelKind::Removed => DocState::Removed,
        };
        doc.add_text(self.id, document_id(&record.bucket, &record.key));
        doc.add_text(self.bucket, &record.bucket);
        doc.add_text(self.key, &record.key);
        doc.add_text(self.state, state.as_str());
        doc.add_text(self.model, &record.model.name);
        doc.add_text(self.model_version, &record.model.version);
        doc.add_i64(self.labeled_at, record.labeled_at);
        let optional_text =
            [(self.etag, &record.etag), (self.version_id, &record.version_id), (self.sequencer, &record.sequencer)];
        for (field, value) in optional_text {
            if let Some(v) = value {
                doc.add_text(field, v);
            }
        }
        if let Some(size) = record.size {
            doc.add_i64(self.size, size);
        }
        if let Some(lm) = record.last_modified {
            doc.add_i64(self.last_modified, lm);
        }
        if state == DocState::Removed {
            return doc; // a tombstone: identity and version only
        }
        for label in &record.labels {
            doc.add_text(self.label, &label.name);
            let tenths = (label.confidence * CONFIDENCE_SCALE).round().clamp(0.0, 1000.0) as u32;
            // A label is found by its name and by its aliases ("human" finds Person).
            for name in std::iter::once(&label.name).chain(&label.aliases) {
                doc.add_text(self.label_conf, format!("{}\u{0}{:04}", name.to_lowercase(), tenths));
            }
        }
        doc.add_text(self.labels_json, serde_json::to_string(&record.labels).unwrap_or_else(|_| "[]".into()));
        if let Some(image) = &record.image {
            doc.add_text(self.format, &image.format);
            doc.add_i64(self.width, i64::from(image.width));
            doc.add_i64(self.height, i64::from(image.height));
        }
        if let Some(metadata) = &record.metadata {
            if let Some(taken) = photo::taken_ms(metadata) {
                doc.add_i64(self.taken, taken);
            }
            for which in photo::Field::ALL {
                for term in photo::terms(metadata, which) {
                    doc.add_text(self.meta(which), term);
                }
            }
            for facet in photo::Facet::ALL {
                if let Some(value) = facet.value(metadata) {
                    doc.add_text(self.facet(facet), value);
                }
            }
            if let Ok(json) = serde_json::to_string(metadata) {
                doc.add_text(self.metadata_json, json);
            }
        }
        if let Some(hashes) = &record.hashes {
            doc.add_text(self.sha256, &hashes.sha256);
            if let Some(dhash) = hashes.dhash {
                doc.add_i64(self.dhash, dhash);
            }
        }
        if let Some(class) = &record.storage_class {
            doc.add_text(self.storage_class, class);
        }
        if let Some(text) = record.text.as_ref().filter(|_| record.kind == LabelKind::Labeled) {
            for term in photo::text_terms(&text.text) {
                doc.add_text(self.text_terms, term);
            }
            if let Ok(json) = serde_json::to_string(text) {
                doc.add_text(self.text_json, json);
            }
        }
        if let Some(embedding) = record.embedding.as_ref().filter(|_| record.kind == LabelKind::Labeled) {
            doc.add_bytes(self.embedding, &embedding.vector);
            doc.add_text(self.embedding_model, &embedding.model);
            if let Some(sketch) = crate::similar::sketch(&embedding.vector) {
                for (field, word) in self.sketch.iter().zip(crate::similar::pack(&sketch)) {
                    doc.add_i64(*field, word);
                }
            }
        }
        if let Some(error) = &record.error {
            doc.add_text(self.error_code, &error.code);
            doc.add_text(self.error_message, &error.message);
            doc.add_bool(self.error_retryable, error.retryable);
        }
        doc
    }

    fn text(&self, doc: &TantivyDocument, field: Field) -> Option<String> {
        doc.get_first(field).and_then(|v| v.as_str()).map(str::to_string)
    }

    fn int(&self, doc: &TantivyDocument, field: Field) -> Option<i64> {
        doc.get_first(field).and_then(|v| v.as_i64())
    }

    /// The version stored in a document.
    pub fn version(&self, doc: &TantivyDocument) -> Version {
        Version {
            labeled_at: self.int(doc, self.labeled_at).unwrap_or(0),
            etag: self.text(doc, self.etag),
            version_id: self.text(doc, self.version_id),
            model: format!(
                "{} {}",
                self.text(doc, self.model).unwrap_or_default(),
                self.text(doc, self.model_version).unwrap_or_default()
            ),
        }
    }

    /// A stored document back as a hit.
    pub fn hit(&self, doc: &TantivyDocument) -> Hit {
        let labels: Vec<Label> =
            self.text(doc, self.labels_json).and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default();
        let image = self.text(doc, self.format).map(|format| ImageProperties {
            format,
            width: self.int(doc, self.width).unwrap_or(0) as i32,
            height: self.int(doc, self.height).unwrap_or(0) as i32,
        });
        let error = self.text(doc, self.error_code).map(|code| LabelError {
            code,
            message: self.text(doc, self.error_message).unwrap_or_default(),
            retryable: doc.get_first(self.error_retryable).and_then(|v| v.as_bool()).unwrap_or(false),
        });
        Hit {
            id: self.text(doc, self.id).unwrap_or_default(),
            bucket: self.text(doc, self.bucket).unwrap_or_default(),
            key: self.text(doc, self.key).unwrap_or_default(),
            state: self.text(doc, self.state).and_then(|s| DocState::parse(&s)).unwrap_or(DocState::Labeled),
            labels,
            size: self.int(doc, self.size),
            last_modified: self.int(doc, self.last_modified),
            etag: self.text(doc, self.etag),
            version_id: self.text(doc, self.version_id),
            sequencer: self.text(doc, self.sequencer),
            image,
            model: ModelInfo {
                name: self.text(doc, self.model).unwrap_or_default(),
                version: self.text(doc, self.model_version).unwrap_or_default(),
            },
            labeled_at: self.int(doc, self.labeled_at).unwrap_or(0),
            error,
            metadata: self.text(doc, self.metadata_json).and_then(|json| serde_json::from_str(&json).ok()),
            hashes: self.text(doc, self.sha256).map(|sha256| ImageHashes { sha256, dhash: self.int(doc, self.dhash) }),
            storage_class: self.text(doc, self.storage_class),
            embedding: match (self.text(doc, self.embedding_model), doc.get_first(self.embedding)) {
                (Some(model), Some(value)) => value.as_bytes().map(|v| ImageEmbedding { model, vector: v.to_vec() }),
                _ => None,
            },
            text: self.text(doc, self.text_json).and_then(|json| serde_json::from_str(&json).ok()),
            similarity: None,
        }
    }
}

//! The index seam: tantivy and OpenSearch behind one trait.

use async_trait::async_trait;
use bucketlens_schemas::{
    ImageEmbedding, ImageHashes, ImageLabeled, ImageProperties, Label, LabelError, ModelInfo, PhotoMetadata,
};
use serde::{Deserialize, Serialize};

use crate::query::Expr;

/// The state of an object's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocState {
    Labeled,
    Failed,
    /// A tombstone: the object was deleted. Kept so a late, older create cannot
    /// bring it back; never returned by searches.
    Removed,
}

impl DocState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Labeled => "labeled",
            Self::Failed => "failed",
            Self::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "labeled" => Some(Self::Labeled),
            "failed" => Some(Self::Failed),
            "removed" => Some(Self::Removed),
            _ => None,
        }
    }
}

/// What one `write` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteStats {
    /// Records that became the document's state (labeled, failed or removed).
    pub applied: u64,
    /// Records older than the document's state, ignored.
    pub stale: u64,
    /// Of `stale`: older labelings, by another model, of the very object version the
    /// document shows (see [`crate::version::Decision::StaleRelabel`]).
    pub stale_relabel: u64,
    /// Records the index refused for good (a mapping conflict, a document too
    /// large…): the sink sends them to the DLQ with the reason.
    pub rejected: Vec<Rejected>,
    /// Documents OpenSearch did not write because another writer had changed them
    /// since they were read (409): read again, decided again and written again.
    pub conflicts: u64,
    /// Documents OpenSearch did not write for now (429, 5xx): written again after a
    /// backoff.
    pub throttled: u64,
}

impl WriteStats {
    /// Counts one record's decision, and returns it.
    pub fn count(&mut self, decision: crate::version::Decision) -> crate::version::Decision {
        use crate::version::Decision;
        match decision {
            Decision::Apply => self.applied += 1,
            Decision::Stale => self.stale += 1,
            Decision::StaleRelabel => {
                self.stale += 1;
                self.stale_relabel += 1;
            }
        }
        decision
    }
}

/// A record the index refused, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub record: ImageLabeled,
    pub reason: String,
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Label expression; `Expr::All` matches every document.
    pub query: Expr,
    /// A label term matches only when that label's confidence is at least this.
    pub min_confidence: f32,
    pub bucket: Option<String>,
    /// Keys starting with this.
    pub prefix: Option<String>,
    /// Only documents labeled by this model version.
    pub model_version: Option<String>,
    /// `last_modified` within `[from, to]`, ms since the epoch (either end open).
    pub modified: (Option<i64>, Option<i64>),
    /// Object size within `[min, max]` bytes (either end open).
    pub size: (Option<i64>, Option<i64>),
    /// Which documents: labeled (default) or failed.
    pub state: DocState,
    pub limit: usize,
    /// Also count labels over all matching documents (the top `n`).
    pub label_counts: Option<usize>,
    /// Also count buckets and model versions over all matching documents (the top `n`).
    pub facets: Option<usize>,
    /// Only hits after this position (the `next` of the previous page).
    pub after: Option<Cursor>,
    /// The order of the hits.
    pub sort: Sort,
    /// Only photos with an embedding of this one's model, most similar first
    /// ([`crate::similar`]): one page, `limit` long, each hit with its similarity.
    pub like: Option<Like>,
    /// Hits carry their embeddings (1280 numbers each on OpenSearch, left out of its
    /// answers unless asked for).
    pub with_embeddings: bool,
}

/// What a similar-photos search compares with.
#[derive(Debug, Clone, PartialEq)]
pub struct Like {
    pub embedding: ImageEmbedding,
    /// A photo left out (the one asked about): its bucket and key.
    pub except: Option<(String, String)>,
}

/// The order of a result list. Every order ends with key, then bucket, so it is total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Highest confidence of the asked-for labels first (by key where they tie, as
    /// when the query names no label).
    #[default]
    Relevance,
    /// By key (the folder, then the file name), A to Z.
    Name,
    /// Most recently modified first (`last_modified`; photos without one last).
    Newest,
    /// Least recently modified first (photos without one first).
    Oldest,
    /// Most recently taken first, by the camera's clock (photos without a date last).
    Taken,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "relevance" | "best" => Some(Self::Relevance),
            "name" => Some(Self::Name),
            "newest" | "date" => Some(Self::Newest),
            "oldest" => Some(Self::Oldest),
            "taken" => Some(Self::Taken),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::Name => "name",
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::Taken => "taken",
        }
    }
}

/// A position in a result list: the sort values of the last hit of a page.
/// Results are ordered by score (highest first; every score is 0 unless sorted by
/// relevance), then `last_modified` when sorted by date, then key, then bucket: a
/// total order, so paging with cursors returns every hit exactly once, however deep,
/// while documents before the cursor change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub score: f32,
    /// The date sorted by (0 when the document has none): `last_modified` when
    /// sorted by newest or oldest, the time it was taken when sorted by that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<i64>,
    pub key: String,
    pub bucket: String,
}

impl SearchRequest {
    /// The expression both backends run: see [`Expr::at_confidence`] (failed
    /// documents have no labels, so there it is the query as given).
    pub fn expression(&self) -> Expr {
        match self.state {
            DocState::Labeled => self.query.at_confidence(self.min_confidence),
            _ => self.query.clone(),
        }
    }

    pub fn new(query: Expr) -> Self {
        Self {
            query,
            min_confidence: 0.0,
            bucket: None,
            prefix: None,
            model_version: None,
            modified: (None, None),
            size: (None, None),
            state: DocState::Labeled,
            limit: 20,
            label_counts: None,
            facets: None,
            after: None,
            sort: Sort::Relevance,
            like: None,
            with_embeddings: false,
        }
    }
}

/// One document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub state: DocState,
    pub labels: Vec<Label>,
    pub size: Option<i64>,
    pub last_modified: Option<i64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    pub image: Option<ImageProperties>,
    pub model: ModelInfo,
    pub labeled_at: i64,
    pub error: Option<LabelError>,
    /// What the photo says about itself: when, with what and where it was taken.
    pub metadata: Option<PhotoMetadata>,
    /// What finds the same photo twice: its bytes' SHA-256 and its perceptual hash.
    pub hashes: Option<ImageHashes>,
    /// The storage class the listing or inventory report said, when one did.
    pub storage_class: Option<String>,
    /// What finds photos that look alike (not printed: 1280 numbers).
    #[serde(skip)]
    pub embedding: Option<ImageEmbedding>,
    /// The words in the photo, line by line with boxes.
    #[serde(default)]
    pub text: Option<bucketlens_schemas::ImageText>,
    /// How alike this photo is to the one a similar-photos search asked about, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

impl Hit {
    /// The hit as `search --json` and the HTTP API print it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "bucket": self.bucket,
            "key": self.key,
            "id": self.id,
            "state": self.state,
            "labels": self.labels.iter().map(|l| serde_json::json!({
                "name": l.name,
                "confidence": l.confidence,
                "parents": l.parents,
                "aliases": l.aliases,
                "categories": l.categories,
                "instances": l.instances,
            })).collect::<Vec<_>>(),
            "size": self.size,
            "last_modified": self.last_modified,
            "etag": self.etag,
            "version_id": self.version_id,
            "image": self.image,
            "model": self.model,
            "labeled_at": self.labeled_at,
            "error": self.error,
            "metadata": self.metadata.as_ref().map(metadata_json),
            "sha256": self.hashes.as_ref().map(|h| &h.sha256),
            "storage_class": self.storage_class,
        });
        if let Some(text) = &self.text {
            json["text"] = serde_json::json!(text.text);
            json["text_lines"] = serde_json::json!(text.lines);
        }
        if let Some(similarity) = self.similarity {
            json["similarity"] = serde_json::json!(similarity);
        }
        json
    }
}

/// A photo's metadata as the API prints it: absent parts left out.
fn metadata_json(metadata: &PhotoMetadata) -> serde_json::Value {
    let mut value = serde_json::to_value(metadata).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
        for part in object.values_mut().filter_map(serde_json::Value::as_object_mut) {
            part.retain(|_, v| !v.is_null());
        }
    }
    value
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchResponse {
    /// All matching documents, not just the returned ones.
    pub total: u64,
    pub hits: Vec<Hit>,
    /// `(label, documents)` over all matching documents, most frequent first.
    pub label_counts: Vec<(String, u64)>,
    /// `(bucket, documents)`, when `facets` was asked for.
    pub buckets: Vec<(String, u64)>,
    /// `(model version, documents)`, when `facets` was asked for.
    pub models: Vec<(String, u64)>,
    /// `(value, documents)` per photo facet ([`crate::photo::Facet`]: years, cameras,
    /// countries), when `facets` was asked for; in the order of `Facet::ALL`.
    pub photo_facets: Vec<Vec<(String, u64)>>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Index failures, classified.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index at {location} cannot be opened: {reason}")]
    Open { location: String, reason: String },
    #[error("the index at {location} is being written by another bucketlens process; stop it, or search instead of indexing")]
    Locked { location: String },
    #[error("the index is read-only here (opened for searching)")]
    ReadOnly,
    #[error("index operation failed: {reason}")]
    Failed { reason: String, retryable: bool },
}

impl IndexError {
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Failed { retryable: true, .. })
    }
}

/// A search index of labeled images.
#[async_trait]
pub trait Index: Send + Sync + 'static {
    /// Applies `records` in order: an upsert replaces, a removal deletes, a stale
    /// record is ignored. Durable when it returns.
    async fn write(&self, records: Vec<ImageLabeled>) -> Result<WriteStats, IndexError>;

    /// Runs a search.
    async fn search(&self, request: SearchRequest) -> Result<SearchResponse, IndexError>;

    /// The document of one object, in whatever state (a removed object's tombstone
    /// too); `None` if the index never saw it.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Hit>, IndexError>;
}

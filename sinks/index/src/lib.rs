//! The index sink: consumes `images.labeled.v1` into a search index, idempotently.
//!
//! Layout:
//! - [`config`]: the `[index]` section;
//! - [`index`]: the index seam (write a batch durably; search) and its types;
//! - [`query`]: the label query language (`dog AND (grass OR "golden retriever")`);
//! - [`version`]: which of two states of a document wins: stale records never
//!   overwrite newer ones, and deletes are not undone by late creates;
//! - [`tantivy`]: the embedded index in the data dir (its [`tantivy::page`]: cursor
//!   paging in the order OpenSearch's `search_after` gives);
//! - [`opensearch`]: an OpenSearch cluster, same semantics;
//! - [`stage`]: the consumer loop: batch → write (durable) → commit offsets;
//! - [`reindex`]: the blue/green rebuild of an OpenSearch index from the label log,
//!   moving the alias at once;
//! - [`metrics`]: the sink's counters.
//!
//! A record's key (`bucket/key`) becomes the document id (its SHA-256, see
//! [`bucketlens_schemas::document_id`]): every record of one object lands on one
//! document, applied in log order.
//!
//! The sink never labels and never reads objects: the label log is its only input,
//! so replaying that log rebuilds the index without running a model.

pub mod config;
pub mod duplicates;
pub mod index;
pub mod metrics;
pub mod opensearch;
pub mod photo;
pub mod query;
pub mod reindex;
pub mod similar;
pub mod stage;
pub mod tantivy;
pub mod version;

use std::path::Path;
use std::sync::Arc;

pub use config::{Backend, Config, OpenSearchConfig};
pub use index::{
    Cursor, DocState, Hit, Index, IndexError, Like, Rejected, SearchRequest, SearchResponse, Sort, WriteStats,
};
pub use metrics::Metrics;
pub use opensearch::OpenSearchIndex;
pub use query::Expr;
pub use stage::{run, Stage};
pub use tantivy::TantivyIndex;

/// The index the sink writes: tantivy at `path`, or OpenSearch.
pub async fn open_writer(config: &Config, path: &Path) -> Result<Arc<dyn Index>, IndexError> {
    Ok(match config.backend {
        Backend::Tantivy => Arc::new(TantivyIndex::open_writer(path, config.writer_memory)?),
        Backend::OpenSearch => Arc::new(OpenSearchIndex::open(&config.opensearch).await?),
    })
}

/// The index searches read: no writer lock on tantivy, nothing created on OpenSearch.
pub async fn open_reader(config: &Config, path: &Path) -> Result<Arc<dyn Index>, IndexError> {
    Ok(match config.backend {
        Backend::Tantivy => Arc::new(TantivyIndex::open_reader(path)?),
        Backend::OpenSearch => Arc::new(OpenSearchIndex::open_for_search(&config.opensearch).await?),
    })
}

/// Whether the index exists: something was indexed there (tantivy), or the index or
/// alias is on the cluster (OpenSearch). Nothing is created.
pub async fn exists(config: &Config, path: &Path) -> Result<bool, IndexError> {
    match config.backend {
        Backend::Tantivy => Ok(path.join("meta.json").exists()),
        Backend::OpenSearch => OpenSearchIndex::open_for_search(&config.opensearch).await?.exists().await,
    }
}

/// Where the index is, for messages: the tantivy folder, or the cluster and index.
pub fn describe(config: &Config, path: &Path) -> String {
    match config.backend {
        Backend::Tantivy => path.display().to_string(),
        Backend::OpenSearch => format!("{}/{}", config.opensearch.url.trim_end_matches('/'), config.opensearch.index),
    }
}

//! The index sink: consumes `images.labeled.v1` into a search index, idempotently.
//!
//! Layout:
//! - [`config`]: the `[index]` section;
//! - [`index`]: the index seam (write a batch durably; search) and its types;
//! - [`query`]: the label query language (`dog AND (grass OR "golden retriever")`);
//! - [`version`]: which of two states of a document wins: stale records never
//!   overwrite newer ones, and deletes are not undone by late creates;
//! - [`tantivy`]: the embedded index in the data dir;
//! - [`opensearch`]: an OpenSearch cluster, same semantics;
//! - [`stage`]: the consumer loop: batch → write (durable) → commit offsets;
//! - [`metrics`]: the sink's counters.
//!
//! The sink never labels and never reads objects: the label log is its only input,
//! so replaying that log rebuilds the index without running a model.

pub mod config;
pub mod index;
pub mod metrics;
pub mod opensearch;
pub mod query;
pub mod stage;
pub mod tantivy;
pub mod version;

pub use config::{Backend, Config, OpenSearchConfig};
pub use index::{DocState, Hit, Index, IndexError, Rejected, SearchRequest, SearchResponse, WriteStats};
pub use metrics::Metrics;
pub use opensearch::OpenSearchIndex;
pub use query::Expr;
pub use tantivy::TantivyIndex;

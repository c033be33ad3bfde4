//! `[index]` configuration.

use std::time::Duration;

use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

/// Which index the sink writes and `search` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// tantivy in `<data-dir>/index`.
    Tantivy,
    /// An OpenSearch cluster (`[index.opensearch]`).
    OpenSearch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    pub backend: Backend,
    /// The consumer group of the index sink.
    pub group: String,
    /// Records written per index commit, at most.
    pub batch_size: usize,
    /// A batch is committed at the latest this long after its first record, so
    /// search sees changes within about this delay.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Memory for tantivy's indexing buffer, in bytes (at least 15 MB).
    pub writer_memory: usize,
    pub opensearch: OpenSearchConfig,
}

/// `[index.opensearch]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct OpenSearchConfig {
    /// The cluster's endpoint.
    pub url: String,
    /// The index (or alias) written and searched; it gets an index template of its
    /// own (matching exactly this name), so indices side by side never collide.
    pub index: String,
    /// Basic authentication (self-hosted clusters with the security plugin).
    pub username: String,
    pub password: String,
    /// SigV4 signing with aws-config's credentials: `es` (Amazon OpenSearch
    /// Service) or `aoss` (Serverless); empty for none.
    pub aws_service: String,
    /// The region to sign for (default: aws-config's, e.g. AWS_REGION).
    pub region: Option<String>,
    /// A `_bulk` request holds at most this many documents…
    pub bulk_max_docs: usize,
    /// …and at most this many bytes (a larger single document goes alone).
    pub bulk_max_bytes: usize,
    /// Per-request timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `_bulk` returns once its changes are searchable (refresh=wait_for), so search
    /// sees what the sink has committed. Off: faster, visible at the next refresh.
    pub wait_for_refresh: bool,
}

impl Default for OpenSearchConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9200".into(),
            index: "bucketlens-images".into(),
            username: String::new(),
            password: String::new(),
            aws_service: String::new(),
            region: None,
            bulk_max_docs: 500,
            bulk_max_bytes: 5 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            wait_for_refresh: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: Backend::Tantivy,
            group: "bucketlens-index".into(),
            batch_size: 1000,
            commit_interval: Duration::from_millis(250),
            writer_memory: 50_000_000,
            opensearch: OpenSearchConfig::default(),
        }
    }
}

impl Config {
    /// Checks every value (no IO): nothing, or every key that is wrong. The sink
    /// reads the checked `Config` itself (its fields are typed already).
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        problems.at_least_one("index.batch-size", self.batch_size);
        let memory = self.writer_memory;
        problems.check(memory >= 15_000_000, "index.writer-memory", || {
            format!("must be at least 15000000 bytes (tantivy's minimum), got {memory}")
        });
        let os = &self.opensearch;
        problems.at_least_one("index.opensearch.bulk-max-docs", os.bulk_max_docs);
        problems.at_least_one("index.opensearch.bulk-max-bytes", os.bulk_max_bytes);
        let service = os.aws_service.as_str();
        problems.check(matches!(service, "" | "es" | "aoss"), "index.opensearch.aws-service", || {
            format!("is \"es\" (OpenSearch Service), \"aoss\" (Serverless) or empty, got {service:?}")
        });
        problems.check(service.is_empty() || os.username.is_empty(), "index.opensearch.aws-service", || {
            "and index.opensearch.username: give either SigV4 signing or basic authentication, not both".into()
        });
        problems.check(os.url.starts_with("http://") || os.url.starts_with("https://"), "index.opensearch.url", || {
            format!("must be an http:// or https:// URL, got {:?}", os.url)
        });
        problems.finish(|| ())
    }
}

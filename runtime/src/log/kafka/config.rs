//! `[log.kafka]`: how bucketlens reaches the cluster, and the librdkafka properties
//! each client gets (bucketlens' defaults, MSK IAM's, then the user's, which win).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use serde::{Deserialize, Serialize};

/// How bucketlens reaches Kafka (`[log.kafka]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct KafkaConfig {
    /// `host:port,host:port` (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    /// Prepended to every topic name: `prod.` gives `prod.objects.changed.v1`.
    pub topic_prefix: String,
    /// Replication factor of the topics bucketlens creates (3 on a production cluster).
    pub replication_factor: i32,
    /// How long a revoked member may spend finishing its in-flight work before the
    /// rebalance goes on without it (the new owner then redoes that work).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Timeout of admin and metadata requests.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Any librdkafka property, passed through as it is: `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, `client.id`, …
    pub properties: BTreeMap<String, String>,
    /// A Confluent-compatible schema registry: the state topics are then written in
    /// Confluent's wire format with registered schemas (empty: Avro single-object
    /// encoding, no registry).
    pub schema_registry_url: String,
    /// Basic authentication for the registry (Confluent Cloud: API key and secret).
    pub schema_registry_username: String,
    pub schema_registry_password: String,
    /// Amazon MSK with IAM access control (port 9098): SASL/OAUTHBEARER tokens signed
    /// with the default AWS credential chain. Implies `security.protocol=SASL_SSL`
    /// and `sasl.mechanism=OAUTHBEARER` unless `properties` say otherwise.
    pub msk_iam: bool,
    /// The cluster's region for MSK IAM (empty: read from the brokers' names, else
    /// `AWS_REGION` or the profile).
    pub msk_iam_region: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            topic_prefix: String::new(),
            replication_factor: 1,
            drain_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            properties: BTreeMap::new(),
            schema_registry_url: String::new(),
            schema_registry_username: String::new(),
            schema_registry_password: String::new(),
            msk_iam: false,
            msk_iam_region: String::new(),
        }
    }
}

/// A client's settings: the brokers, bucketlens' `defaults` for this client (and
/// MSK IAM's), then the user's properties, which win.
pub(super) fn client_config(config: &KafkaConfig, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    // OpenSSL is built into the binary, so its own CA path may not exist here:
    // librdkafka then looks for the system's CA bundle (TLS brokers, MSK).
    c.set("ssl.ca.location", "probe");
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    if config.msk_iam {
        c.set("security.protocol", "SASL_SSL");
        c.set("sasl.mechanism", "OAUTHBEARER");
    }
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

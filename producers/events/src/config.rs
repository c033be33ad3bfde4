//! `[events]` configuration: the SQS and webhook inputs.

use std::time::Duration;

use bucketlens_runtime::config::{Invalid, Problems};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// SQS: an endpoint for SQS-compatible queues; unset = Amazon SQS, or
    /// `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL`.
    pub sqs_endpoint_url: Option<String>,
    /// SQS: long-poll wait per receive (at most 20 s).
    #[serde(with = "humantime_serde")]
    pub sqs_wait: Duration,
    /// SQS: messages per receive (1 to 10).
    pub sqs_batch: i32,
    /// SQS: how long a received message stays hidden from other consumers; it must
    /// cover producing its records to the log.
    #[serde(with = "humantime_serde")]
    pub sqs_visibility_timeout: Duration,
    /// Webhook: the token senders must present as `Authorization: Bearer TOKEN`.
    /// Unset = no authentication (only bind to a trusted network then).
    pub webhook_token: Option<String>,
    /// Webhook: the largest request body accepted, in bytes (larger → 413).
    pub webhook_max_body: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sqs_endpoint_url: None,
            sqs_wait: Duration::from_secs(20),
            sqs_batch: 10,
            sqs_visibility_timeout: Duration::from_secs(60),
            webhook_token: None,
            webhook_max_body: 4 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Checks the ranges SQS accepts.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut problems = Problems::default();
        let (batch, wait) = (self.sqs_batch, self.sqs_wait);
        problems.check((1..=10).contains(&batch), "events.sqs-batch", || {
            format!("must be 1 to 10 (SQS's limit), got {batch}")
        });
        problems.check(wait <= Duration::from_secs(20), "events.sqs-wait", || {
            format!("must be at most 20s (SQS's longest wait), got {}", humantime::format_duration(wait))
        });
        problems.at_least_one("events.webhook-max-body", self.webhook_max_body);
        problems.finish(|| ())
    }
}

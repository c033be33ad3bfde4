//! `[events]` configuration: the SQS and webhook inputs.

use std::time::Duration;

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
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10).contains(&self.sqs_batch) {
            return Err(format!("events.sqs-batch is {}; SQS takes 1 to 10", self.sqs_batch));
        }
        if self.sqs_wait > Duration::from_secs(20) {
            return Err(format!("events.sqs-wait is {:?}; SQS waits 20 s at most", self.sqs_wait));
        }
        Ok(())
    }
}

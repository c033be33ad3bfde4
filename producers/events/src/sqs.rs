//! S3 notifications from an SQS queue (S3 → SQS, or S3 → SNS → SQS, or an
//! EventBridge rule → SQS). Long polling; a message is deleted only after the log
//! has its records. A message that is not a notification goes to `notifications.dlq.v1` with
//! the reason in its headers, then is deleted, so it never blocks the queue. When
//! the log is down, nothing is deleted: the messages come back after their
//! visibility timeout.

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use bucketlens_runtime::aws::AwsFailure;
use bucketlens_runtime::log::{dead_letter, Output};
use bucketlens_runtime::produce::ProduceError;
use bucketlens_schemas::{error_codes, topics};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{produce, Config, Metrics};

/// A queue to receive from: its URL, the client, and the endpoint that client calls
/// (named in every error, with the settings that change it).
pub struct Queue {
    pub url: String,
    client: aws_sdk_sqs::Client,
    endpoint: String,
}

impl Queue {
    /// A client from the AWS default chain for `url`. The endpoint is `[events]
    /// sqs-endpoint-url`, else `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL`, else the
    /// queue URL's own host when it is not Amazon's (a local SQS: ElasticMQ, moto,
    /// LocalStack), else Amazon SQS in the configured region.
    pub async fn connect(config: &Config, url: &str) -> Self {
        let shared = bucketlens_runtime::aws::sdk_config(None).await;
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
        let from_env = std::env::var("AWS_ENDPOINT_URL_SQS").ok().or_else(|| shared.endpoint_url().map(str::to_string));
        let endpoint = match (&config.sqs_endpoint_url, from_env, queue_host(url)) {
            (Some(set), _, _) => {
                builder = builder.endpoint_url(set);
                format!("{set} ([events] sqs-endpoint-url)")
            }
            (None, Some(env), _) => format!("{env} (AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL)"),
            (None, None, Some(host)) if !host.contains(".amazonaws.com") => {
                builder = builder.endpoint_url(&host);
                format!("{host} (the queue URL's host)")
            }
            (None, None, _) => {
                let region = shared.region().map_or_else(|| "us-east-1".to_string(), ToString::to_string);
                format!("Amazon SQS in {region}")
            }
        };
        Self { url: url.to_string(), client: aws_sdk_sqs::Client::from_conf(builder.build()), endpoint }
    }

    /// `what` failed on this queue, naming the endpoint and how to change it.
    fn failure(&self, what: &str) -> String {
        format!(
            "{what} {} at {} (set [events] sqs-endpoint-url or AWS_ENDPOINT_URL_SQS for another endpoint)",
            self.url, self.endpoint
        )
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.url, self.endpoint)
    }
}

/// `scheme://host[:port]` of a queue URL.
fn queue_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// Receives and produces until `shutdown`.
pub async fn run(
    queue: &Queue,
    config: &Config,
    output: &Output,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(), ProduceError> {
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let receive = queue
            .client
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(config.sqs_batch)
            .wait_time_seconds(config.sqs_wait.as_secs() as i32)
            .visibility_timeout(config.sqs_visibility_timeout.as_secs() as i32)
            .send();
        let received = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            received = receive => received,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                let failure = AwsFailure::of(&e);
                if !failure.retryable {
                    return Err(ProduceError::reading(queue.failure("receiving from"), failure));
                }
                warn!(error = %failure, "{}; retrying", queue.failure("receiving from"));
                sleep_or_stop(&mut backoff, &shutdown).await;
                continue;
            }
        };
        match handle(&queue.client, &queue.url, output, metrics, messages).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                warn!(queue = %queue, error = %e, "messages left in the queue; they come back after the visibility timeout");
                sleep_or_stop(&mut backoff, &shutdown).await;
            }
        }
    }
    Ok(())
}

async fn sleep_or_stop(backoff: &mut Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(*backoff) => {}
        () = shutdown.cancelled() => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(30));
}

/// Produces each message's records (or its DLQ record), then deletes them all.
async fn handle(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    output: &Output,
    metrics: &Metrics,
    messages: Vec<aws_sdk_sqs::types::Message>,
) -> Result<(), ProduceError> {
    let mut done = Vec::with_capacity(messages.len());
    for message in messages {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        let (parsed, malformed) = match crate::parse(body) {
            Ok(parsed) => {
                let bad = (!parsed.bad.is_empty()).then(|| parsed.bad.join("; "));
                (Some(parsed), bad)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        if let Some(parsed) = parsed {
            produce(output, metrics, parsed).await?;
        }
        if let Some(reason) = malformed {
            metrics.malformed.add(1);
            warn!(queue = queue_url, message = %id, error = %reason, "not an S3 notification (or records of it); sent to the DLQ");
            let origin = vec![("source.queue".into(), queue_url.to_string()), ("source.message-id".into(), id.clone())];
            let dlq = dead_letter(
                format!("sqs/{id}"),
                body.as_bytes().to_vec(),
                error_codes::MALFORMED_EVENT,
                &reason,
                origin,
            );
            let readable = serde_json::json!({ "malformed": id, "reason": reason });
            output.send(topics::NOTIFICATIONS_DLQ, vec![(dlq, readable)]).await?;
        }
        if let Some(handle) = message.receipt_handle {
            done.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(done.len().to_string())
                    .receipt_handle(handle)
                    .build()
                    .map_err(|e| ProduceError::reading(format!("message {id} of {queue_url}"), e))?,
            );
        }
    }
    if done.is_empty() {
        return Ok(());
    }
    let count = done.len();
    let deleted =
        client.delete_message_batch().queue_url(queue_url).set_entries(Some(done)).send().await.map_err(|e| {
            ProduceError::reading(format!("deleting handled messages from {queue_url}"), AwsFailure::of(&e))
        })?;
    for failed in deleted.failed {
        // Produced already: a redelivery only produces the same records again.
        warn!(queue = queue_url, entry = failed.id, code = failed.code, "a handled message was not deleted");
    }
    debug!(queue = queue_url, count, "messages handled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_urls_host_is_its_endpoint() {
        assert_eq!(queue_host("http://127.0.0.1:5000/123456789012/photos").as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            queue_host("https://sqs.eu-west-1.amazonaws.com/123456789012/photos").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com")
        );
        assert_eq!(queue_host("photos"), None);
    }
}

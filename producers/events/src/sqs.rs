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

/// An SQS client from the AWS default chain, with `[events] sqs-endpoint-url`.
pub async fn client(config: &Config) -> aws_sdk_sqs::Client {
    let shared = bucketlens_runtime::aws::sdk_config(None).await;
    let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
    if let Some(url) = &config.sqs_endpoint_url {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}

/// Receives and produces until `shutdown`.
pub async fn run(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    config: &Config,
    output: &Output,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(), ProduceError> {
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let receive = client
            .receive_message()
            .queue_url(queue_url)
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
                    return Err(ProduceError::reading(format!("receiving from {queue_url}"), failure));
                }
                warn!(queue = queue_url, error = %failure, "receive failed; retrying");
                sleep_or_stop(&mut backoff, &shutdown).await;
                continue;
            }
        };
        match handle(client, queue_url, output, metrics, messages).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                warn!(queue = queue_url, error = %e, "messages left in the queue; they come back after the visibility timeout");
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
        match crate::parse(body) {
            Ok(parsed) => produce(output, metrics, parsed).await?,
            Err(e) => {
                metrics.malformed.add(1);
                warn!(queue = queue_url, message = %id, error = %e, "not an S3 notification; sent to the DLQ");
                let origin =
                    vec![("source.queue".into(), queue_url.to_string()), ("source.message-id".into(), id.clone())];
                let reason = e.to_string();
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

//! librdkafka's errors as [`LogError`]s: retryable when the cluster is unreachable
//! or busy, an unknown topic named, anything else a storage failure.

use rdkafka::error::KafkaError;
use rdkafka::producer::DeliveryFuture;
use rdkafka::types::RDKafkaErrorCode as Code;

use super::super::LogError;

pub(super) fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable { reason: e.to_string() }
}

/// Sorts a client error into retryable (the cluster is unreachable or busy) or not.
pub(super) fn kafka_error(what: &str, e: &KafkaError) -> LogError {
    let code = e.rdkafka_error_code();
    let retryable = matches!(
        code,
        None | Some(
            Code::MessageTimedOut
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::NetworkException
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::CoordinatorNotAvailable
                | Code::NotCoordinator
                | Code::CoordinatorLoadInProgress
                | Code::RebalanceInProgress
                // The group moved on (a rebalance, an expired session): uncommitted
                // records are redone by their next owner.
                | Code::AssignmentLost
                | Code::UnknownMemberId
                | Code::IllegalGeneration
                | Code::NotEnoughReplicas
                | Code::NotEnoughReplicasAfterAppend
                | Code::QueueFull
                | Code::UnknownTopicOrPartition
        )
    );
    let reason = format!("{what}: {e}");
    match code {
        Some(Code::UnknownTopic | Code::UnknownTopicOrPartition) if what.starts_with("topic") => {
            LogError::UnknownTopic { topic: what.trim_start_matches("topic ").to_string() }
        }
        _ if retryable => LogError::Unavailable { reason },
        _ => LogError::Storage { reason },
    }
}

/// Runs blocking librdkafka calls off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Storage { reason: format!("kafka call panicked: {e}") })?
}

pub(super) async fn settle(delivery: DeliveryFuture, topic: &str) -> Result<(), LogError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(kafka_error(&format!("delivery to {topic}"), &e)),
        Err(_) => Err(unavailable(format!("delivery to {topic}: the producer was dropped"))),
    }
}

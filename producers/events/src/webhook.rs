//! The HTTP webhook: S3-format, EventBridge-format (an API destination) and
//! MinIO/RustFS notifications POSTed to any path. A request is answered 200 only
//! once its records are in the log; 400 names what is wrong with a body that is
//! not a notification; 401 without the configured bearer token; 413 above
//! `webhook-max-body`; 503 when the log cannot take the records (the sender retries).
//! A GET or HEAD of `/` answers 200 with no token: the liveness check RustFS makes of
//! a webhook target before it delivers to it, and a health check for orchestrators.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bucketlens_runtime::log::Output;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{produce, Config, Metrics};

struct Shared {
    output: Output,
    metrics: Arc<Metrics>,
    token: Option<String>,
}

/// Binds `addr` and serves until `shutdown`; returns the bound address at once and
/// the server as a task.
pub async fn serve(
    addr: SocketAddr,
    config: &Config,
    output: Output,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let shared = Arc::new(Shared { output, metrics, token: config.webhook_token.clone() });
    let app = Router::new()
        .route("/", post(receive).get(alive))
        .route("/{*path}", post(receive))
        .layer(DefaultBodyLimit::max(config.webhook_max_body))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let server = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
    });
    Ok((bound, server))
}

/// GET (and HEAD) of `/`: the webhook is up.
async fn alive() -> &'static str {
    "bucketlens webhook: POST S3, EventBridge, MinIO or RustFS event notifications here\n"
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    if let Some(token) = &shared.token {
        let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let presented = presented.strip_prefix("Bearer ").unwrap_or(presented);
        if !same_secret(presented.as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong bearer token\n",
            )
                .into_response();
        }
    }
    let parsed = match crate::parse(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            shared.metrics.malformed.add(1);
            warn!(error = %e, "webhook request is not an S3 notification");
            let message = match e {
                crate::ParseError::Unknown => format!("{e}\n"),
                _ => format!("not an S3 event notification: {e}\n"),
            };
            return (StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let bad = parsed.bad.join("; ");
    let count = parsed.changes.len();
    if !bad.is_empty() {
        // The readable records are produced; the sender cannot fix the others by
        // sending them again, so the request goes to the DLQ and is answered 200.
        shared.metrics.malformed.add(1);
        warn!(bad = %bad, "webhook request has records that are not S3 notifications; sent to the DLQ");
        let code = bucketlens_schemas::error_codes::MALFORMED_EVENT;
        let dlq = bucketlens_runtime::log::dead_letter(
            "webhook".to_string(),
            body.clone().into_bytes(),
            code,
            &bad,
            Vec::new(),
        );
        let readable = serde_json::json!({ "malformed": "webhook request", "reason": bad });
        if let Err(e) = shared.output.send(bucketlens_schemas::topics::NOTIFICATIONS_DLQ, vec![(dlq, readable)]).await {
            warn!(error = %e, "webhook request not dead-lettered; the sender must retry");
            return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], format!("{e}\n")).into_response();
        }
    }
    match produce(&shared.output, &shared.metrics, parsed).await {
        Ok(()) => (StatusCode::OK, format!("{{\"produced\":{count}}}\n")).into_response(),
        Err(e) => {
            warn!(error = %e, "webhook records not produced; the sender must retry");
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], format!("{e}\n")).into_response()
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

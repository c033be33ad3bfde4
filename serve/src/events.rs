//! `/api/events`: live changes as Server-Sent Events.
//!
//! The feed is a consumer of `images.labeled.v1` like any other: its own group
//! (one per `serve` process, started at the end of the log, never committed), so
//! every server sees every change. A change is announced only once the index
//! returns it: for each record, the document is read back until it reflects the
//! record (or a newer state), then the document's current state is sent. An event
//! therefore never names a document a search cannot return yet; when the sink is
//! behind, events wait for it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as Extract;
use axum::response::sse::{Event, KeepAlive, Sse};
use bucketlens_index::{version::reflects, DocState};
use bucketlens_runtime::log::Position;
use bucketlens_schemas::{topics, AvroRecord, ImageLabeled};
use futures_util::stream::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::State;

/// How often a record not yet in the index is looked for again.
const RECHECK: Duration = Duration::from_millis(100);

/// The announcements, to every open page.
pub struct Feed {
    sender: broadcast::Sender<String>,
    /// Cancelled when the server stops: every open stream ends then, so that the
    /// server's drain does not wait for pages that would never close them.
    closing: CancellationToken,
}

impl Feed {
    pub fn new(closing: CancellationToken) -> Self {
        Self { sender: broadcast::channel(1024).0, closing }
    }
}

/// Starts the feed's consumer; fails only if the log cannot be read at all.
pub async fn spawn_feed(state: State, shutdown: CancellationToken) -> Result<(), String> {
    let log = Arc::clone(&state.parts.log);
    let group = format!("bucketlens-serve-{}-{:x}", std::process::id(), started_at());
    let topic = topics::IMAGES_LABELED;
    log.reset_group(&group, topic, Position::End)
        .await
        .map_err(|e| format!("cannot follow {topic} for live changes: {e}"))?;
    let mut consumer =
        log.subscribe(&group, topic).await.map_err(|e| format!("cannot follow {topic} for live changes: {e}"))?;
    info!(group, topic, "following the label log for live changes");
    tokio::spawn(async move {
        loop {
            let polled = tokio::select! {
                polled = consumer.poll(256, Duration::from_millis(500)) => polled,
                () = shutdown.cancelled() => return,
            };
            let records = match polled {
                Ok(records) => records,
                Err(e) => {
                    warn!(error = %e, topic, "cannot read the label log; live changes wait");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for record in records {
                let labeled = match ImageLabeled::from_bytes(&record.value) {
                    Ok(labeled) => labeled,
                    Err(e) => {
                        warn!(error = %e, key = record.key, offset = record.offset, "a label record cannot be decoded; not announced");
                        continue;
                    }
                };
                if !announce(&state, &labeled, &shutdown).await {
                    return;
                }
            }
        }
    });
    Ok(())
}

/// This start's time, so a restarted process with the same PID gets a group of its own.
fn started_at() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Waits until the index reflects `record`, then sends the document's state.
/// Returns false when shutting down.
async fn announce(state: &State, record: &ImageLabeled, shutdown: &CancellationToken) -> bool {
    loop {
        match state.parts.index.get(&record.bucket, &record.key).await {
            Ok(Some(doc)) if reflects(&doc, record) => {
                let kind = doc.state.as_str();
                let document = (doc.state != DocState::Removed).then(|| doc.to_json());
                let event = json!({ "kind": kind, "bucket": doc.bucket, "key": doc.key, "document": document });
                // No open page is not an error.
                let _ = state.events.sender.send(event.to_string());
                state.metrics.events_sent.inc();
                return true;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, object = %format!("{}/{}", record.bucket, record.key), "cannot read the index for a live change")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RECHECK) => {}
            () = shutdown.cancelled() => return false,
        }
    }
}

/// `GET /api/events`: `change` events, `{"kind": "labeled"|"failed"|"removed",
/// "bucket", "key", "document": hit | null}`; `lagged` when this page fell behind
/// (it should search again). Every stream ends when the server stops.
pub async fn stream(Extract(state): Extract<State>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.events.sender.subscribe();
    let closing = state.events.closing.clone();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(data) => Event::default().event("change").data(data),
            Err(broadcast::error::RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    // A page reconnects by itself (EventSource retries), and searches again then.
    Sse::new(stream.take_until(closing.cancelled_owned())).keep_alive(KeepAlive::default())
}

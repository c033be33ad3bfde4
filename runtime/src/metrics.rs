//! Stage metrics: counters read by progress displays and summaries, and exported in
//! Prometheus' text format on `/metrics` by the long-running roles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
pub use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::log::Log;

/// A monotonically increasing count.
#[derive(Debug, Default, Clone)]
pub struct Counter(PromCounter);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }

    pub fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.0.clone());
    }
}

/// Counts by one label, `kind` unless named otherwise (errors by kind, records by
/// outcome, skips by reason).
#[derive(Debug, Clone)]
pub struct ByKind {
    label: &'static str,
    family: Family<Vec<(String, String)>, PromCounter>,
}

impl Default for ByKind {
    fn default() -> Self {
        Self::labelled("kind")
    }
}

impl ByKind {
    /// Counts by the label `label`.
    pub fn labelled(label: &'static str) -> Self {
        Self { label, family: Family::default() }
    }

    pub fn add(&self, kind: &str) {
        self.family.get_or_create(&vec![(self.label.to_string(), kind.to_string())]).inc();
    }

    /// The count for `kind` so far.
    pub fn get(&self, kind: &str) -> u64 {
        self.family.get_or_create(&vec![(self.label.to_string(), kind.to_string())]).get()
    }

    pub fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.family.clone());
    }
}

/// Processing time of one record (or one batch), in seconds.
#[derive(Debug, Clone)]
pub struct Latency(Histogram);

impl Default for Latency {
    fn default() -> Self {
        // 5 ms … about 40 s.
        Self(Histogram::new(exponential_buckets(0.005, 2.0, 14)))
    }
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }

    pub fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.0.clone());
    }
}

type LagLabels = Vec<(String, String)>;

/// Keeps `bucketlens_consumer_lag{group,topic,partition}` current (every `every`)
/// until `shutdown`. A failed read leaves the last values and is retried.
pub fn track_lag(
    registry: &mut Registry,
    log: Arc<dyn Log>,
    groups: Vec<(String, &'static str)>,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let lag: Family<LagLabels, Gauge> = Family::default();
    registry.register("consumer_lag", "Records on the topic not yet committed by the group", lag.clone());
    tokio::spawn(async move {
        loop {
            for (group, topic) in &groups {
                let (marks, committed) = match (log.watermarks(topic).await, log.committed(group, topic).await) {
                    (Ok(m), Ok(c)) => (m, c),
                    (Err(e), _) | (_, Err(e)) => {
                        warn!(error = %e, group, topic, "cannot read the consumer lag");
                        continue;
                    }
                };
                for mark in marks {
                    let behind = mark.lag(&committed);
                    let labels = vec![
                        ("group".to_string(), group.clone()),
                        ("topic".to_string(), (*topic).to_string()),
                        ("partition".to_string(), mark.partition.to_string()),
                    ];
                    lag.get_or_create(&labels).set(behind);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
        }
    })
}

/// Serves `registry` on `http://addr/metrics` until `shutdown`; returns the bound
/// address (port 0 picks a free one).
pub async fn serve(addr: SocketAddr, registry: Registry, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let registry = Arc::new(registry);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = Arc::clone(&registry);
            async move {
                let mut body = String::new();
                match encode(&mut body, &registry) {
                    Ok(()) => (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response(),
                    Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            warn!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(bound)
}

//! `/metrics` in Prometheus' text format: requests by route and status, their
//! latency, and the thumbnail cache's hits and misses.

use axum::extract::State as Extract;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::State;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    pub requests: Family<Labels, Counter>,
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
    pub thumbnail_hits: Counter,
    pub thumbnail_misses: Counter,
    pub events_sent: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms … about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            thumbnail_hits: Counter::default(),
            thumbnail_misses: Counter::default(),
            events_sent: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let route = ("route".to_string(), route.to_string());
        self.requests.get_or_create(&vec![route.clone(), ("status".to_string(), status.to_string())]).inc();
        self.latency.get_or_create(&vec![route]).observe(seconds);
    }

    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("bucketlens_serve");
        registry.register("http_requests", "HTTP requests by route and status", self.requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer, by route", self.latency.clone());
        registry.register("thumbnail_cache_hits", "Thumbnails served from the disk cache", self.thumbnail_hits.clone());
        registry.register("thumbnail_cache_misses", "Thumbnails made from the object", self.thumbnail_misses.clone());
        registry.register("events_sent", "Live changes announced to the open pages", self.events_sent.clone());
        registry
    }
}

/// `GET /metrics`.
pub async fn export(Extract(state): Extract<State>) -> Response {
    let mut body = String::new();
    match encode(&mut body, &state.metrics.registry()) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

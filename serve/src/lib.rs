//! `bucketlens serve`: the HTTP search API and the web UI over the index.
//!
//! Layout:
//! - [`config`]: the `[serve]` section;
//! - [`api`]: the JSON routes (`/api/search`, `/api/objects/…`, `/api/status`,
//!   `/api/suggest`) and their error shape `{"error", "code"}`;
//! - [`thumbnails`]: `/api/thumbnails/…` and `/api/images/…`, read through the same
//!   object sources the labeler reads, thumbnails cached on disk;
//! - [`events`]: `/api/events`, Server-Sent Events fed from the label log, each sent
//!   only once the index returns the change;
//! - [`guard`]: the token, security headers, timeouts and request metrics;
//! - [`assets`]: the web UI, compiled into the binary.
//!
//! The index is opened for reading only, so `serve` runs beside a writing
//! `index --watch` or `sink`. An object's key is only ever looked up in the index,
//! never joined onto a path: no request reads anything the index does not hold.

pub mod api;
pub mod assets;
pub mod config;
pub mod events;
pub mod guard;
pub mod metrics;
pub mod thumbnails;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bucketlens_index::Index;
use bucketlens_runtime::bucket::ObjectSource;
use bucketlens_runtime::log::Log;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub use config::Config;

/// Everything but RFC 3986's unreserved characters is percent-encoded.
pub const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What `status --json` prints, made by the wiring (it knows the groups).
pub type StatusFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>> + Send + Sync>;

/// Everything the routes read.
pub struct Parts {
    pub config: Config,
    pub index: Arc<dyn Index>,
    /// Where thumbnails and images are read from (folders and S3, as the labeler reads).
    pub source: Arc<dyn ObjectSource>,
    /// The label log, for live changes.
    pub log: Arc<dyn Log>,
    pub status: StatusFn,
    /// The thumbnail cache folder.
    pub cache_dir: PathBuf,
    /// Objects above this many bytes are not read (the labeler's limit).
    pub max_bytes: u64,
    /// Images above this many pixels are not decoded (the labeler's limit).
    pub max_pixels: u64,
    /// The labeler's settings: their `embedder` is the model whose text tower a search
    /// by meaning encodes its phrase with (loaded at the first such search).
    pub labeler: bucketlens_labeler::Settings,
}

/// Shared state of the routes.
pub struct App {
    pub parts: Parts,
    pub metrics: metrics::Metrics,
    pub thumbnails: thumbnails::Thumbnails,
    pub events: events::Feed,
    pub suggestions: api::Suggestions,
    /// The embedder's text tower, once a search by meaning has loaded it (or why not).
    pub meaning: tokio::sync::OnceCell<Result<Arc<api::Meaning>, String>>,
    pub throttle: guard::Throttle,
    /// Searches run at once (`serve.searches-at-once`); the others wait their turn.
    pub searches: tokio::sync::Semaphore,
}

pub type State = Arc<App>;

impl App {
    /// The routes' state; open event streams end when `closing` is cancelled.
    pub fn new(parts: Parts, closing: CancellationToken) -> std::io::Result<State> {
        let thumbnails = thumbnails::Thumbnails::new(&parts.config, parts.cache_dir.clone())?;
        Ok(Arc::new(Self {
            metrics: metrics::Metrics::default(),
            thumbnails,
            events: events::Feed::new(closing),
            suggestions: api::Suggestions::default(),
            meaning: tokio::sync::OnceCell::new(),
            throttle: guard::Throttle::default(),
            searches: tokio::sync::Semaphore::new(parts.config.searches_at_once),
            parts,
        }))
    }
}

/// Every route, behind the guard.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/failed", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/login", get(guard::login_page).post(guard::login))
        .route("/logout", axum::routing::post(guard::logout))
        .route("/api/session", get(guard::session_info))
        .route("/api/search", get(api::search))
        .route("/api/suggest", get(api::suggest))
        .route("/api/status", get(api::status))
        .route("/api/duplicates", get(api::duplicates))
        .route("/api/similar/{bucket}/{*key}", get(api::similar))
        .route("/duplicates", get(assets::index))
        .route("/api/objects/{bucket}/{*key}", get(api::object))
        .route("/api/thumbnails/{bucket}/{*key}", get(thumbnails::thumbnail))
        .route("/api/images/{bucket}/{*key}", get(thumbnails::image))
        .route("/api/events", get(events::stream))
        .route("/metrics", get(metrics::export))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        // gzip where the client takes it: JSON shrinks about tenfold. Never the event
        // stream nor images (tower-http's default predicate leaves those alone).
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), guard::guard))
        .with_state(state)
}

/// How long requests still open when the server is asked to stop may run on.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Serves until `shutdown`: binds `config.listen`, starts the live feed, returns the
/// bound address at once and the server's task. On `shutdown` no new connection is
/// taken, the live streams end, and the requests still running get [`DRAIN`] to
/// finish.
pub async fn start(
    parts: Parts,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), String> {
    let listen = parts.config.listen;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let state = App::new(parts, shutdown.clone()).map_err(|e| format!("cannot open the thumbnail cache: {e}"))?;
    events::spawn_feed(Arc::clone(&state), shutdown.clone()).await?;
    let app = router(state);
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future();
        let drained = async {
            shutdown.cancelled().await;
            tokio::time::sleep(DRAIN).await;
        };
        tokio::select! {
            served = serving => served,
            () = drained => {
                warn!("requests still open {} s after the stop was asked for: stopping anyway", DRAIN.as_secs());
                Ok(())
            }
        }
    });
    Ok((bound, task))
}

//! The web UI: plain HTML, CSS and JavaScript modules, compiled into the binary (no
//! build step). It uses only the HTTP API.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

use crate::api::ApiError;

const INDEX: &str = include_str!("../assets/index.html");

/// `(name, content type, body)` of each asset.
const ASSETS: [(&str, &str, &str); 4] = [
    ("app.js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
    ("login.css", "text/css; charset=utf-8", include_str!("../assets/login.css")),
    ("icon.svg", "image/svg+xml", include_str!("../assets/icon.svg")),
];

/// `GET /` and the views: the one page.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, kind, body) =
        ASSETS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| ApiError::not_found(format!("no asset {name}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        *body,
    )
        .into_response())
}

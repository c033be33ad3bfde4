//! What every request passes: the token (when one is set), a timeout, security
//! headers, and the request metrics.
//!
//! With `[serve] token`, a request carries it as `Authorization: Bearer TOKEN`, or
//! as the HttpOnly, SameSite=Strict cookie the login page sets; it is compared in
//! constant time. Without it, API routes answer 401 and pages redirect to `/login`.

use std::time::Instant;

use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::State;

const COOKIE: &str = "bucketlens_token";

/// No inline script or style, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn token_matches(expected: &str, given: &str) -> bool {
    // Equal lengths are compared byte by byte in constant time; the length itself is
    // not secret enough to matter (the token is at least 16 characters).
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

fn presented(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(bearer) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        out.push(bearer.trim().to_string());
    }
    for cookies in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        for pair in cookies.split(';') {
            if let Some(value) = pair.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')) {
                out.push(value.to_string());
            }
        }
    }
    out
}

fn authorized(state: &State, headers: &HeaderMap) -> bool {
    match &state.parts.config.token {
        None => true,
        Some(expected) => presented(headers).iter().any(|given| token_matches(expected, given)),
    }
}

fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The route a path belongs to, for metrics (keys are not labels: unbounded).
fn route_of(path: &str) -> &'static str {
    const ROUTES: [&str; 9] = [
        "/api/search",
        "/api/suggest",
        "/api/status",
        "/api/objects",
        "/api/thumbnails",
        "/api/images",
        "/api/events",
        "/metrics",
        "/login",
    ];
    let under = |route: &str| path.strip_prefix(route).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if let Some(route) = ROUTES.iter().find(|r| under(r)) {
        return route;
    }
    match path {
        "/" | "/failed" => "/",
        p if p.starts_with("/assets/") => "/assets",
        _ => "other",
    }
}

/// The middleware.
pub async fn guard(Extract(state): Extract<State>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_string();
    let route = route_of(&path);
    let open = path == "/login" || path == "/assets/login.css";
    let mut response = if !open && !authorized(&state, request.headers()) {
        if path.starts_with("/api/") || path == "/metrics" {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs its token: send Authorization: Bearer TOKEN, or sign in at /login",
            )
            .into_response()
        } else {
            Redirect::to("/login").into_response()
        }
    } else if route == "/api/events" || route == "/api/images" {
        next.run(request).await // a stream: open as long as the page is
    } else {
        let timeout = state.parts.config.request_timeout;
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("{path} took longer than serve.request-timeout ({timeout:?})"),
            )
            .into_response(),
        }
    };
    secure(&mut response);
    state.metrics.observe(route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

const LOGIN: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bucketlens · sign in</title><link rel="stylesheet" href="/assets/login.css"></head>
<body><main><h1>bucketlens</h1>
<form method="post" action="/login"><label for="token">This server needs its token (serve.token)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>{message}</form></main></body></html>"#;

/// `GET /login`.
pub async fn login_page() -> Html<String> {
    Html(LOGIN.replace("{message}", ""))
}

#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /login`: sets the cookie when the token is right. Behind a proxy that ends
/// TLS (an ALB, an Ingress: `X-Forwarded-Proto: https`) the cookie is `Secure`, so
/// that a browser never sends it over plain HTTP.
pub async fn login(
    Extract(state): Extract<State>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let Some(expected) = &state.parts.config.token else { return Redirect::to("/").into_response() };
    if !token_matches(expected, &form.token) {
        let page = LOGIN.replace("{message}", r#"<p class="error" role="alert">That is not this server's token.</p>"#);
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let over_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.split(',').next().is_some_and(|first| first.trim().eq_ignore_ascii_case("https")));
    let secure = if over_tls { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}", form.token);
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

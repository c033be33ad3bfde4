//! What every request passes: the token (when one is set), a timeout, security
//! headers, and the request metrics.
//!
//! With `[serve] token`, a request carries it as `Authorization: Bearer TOKEN` (any
//! case of `Bearer`), or the HttpOnly, SameSite=Strict session cookie the login page
//! sets. The cookie never holds the token: it holds the time of the sign-in and an
//! HMAC-SHA256 of it keyed by the token, so a leaked cookie does not give the token
//! away, lapses after [`SESSION_DAYS`] days, and every session ends when the token
//! changes. Comparisons are constant-time. Without either, API routes answer 401 and
//! pages redirect to `/login?next=PAGE`, which returns to that page after sign-in.
//! Wrong tokens are slowed down and, past [`FAILURES_PER_MINUTE`], refused for a
//! while (429). `POST /logout` ends the browser's session.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::State;

const COOKIE: &str = "bucketlens_session";
/// How long a sign-in lasts.
pub const SESSION_DAYS: u64 = 30;
/// Wrong tokens a server takes in a minute before it refuses sign-ins for the rest of it.
pub const FAILURES_PER_MINUTE: u32 = 10;
/// How long a wrong token waits for its answer.
const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Failed sign-ins in the current minute.
#[derive(Default)]
pub struct Throttle {
    window: Mutex<Option<(Instant, u32)>>,
}

impl Throttle {
    /// Whether another attempt may be judged now.
    fn open(&self) -> bool {
        let window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !matches!(*window, Some((start, n)) if start.elapsed() < Duration::from_secs(60) && n >= FAILURES_PER_MINUTE)
    }

    fn failed(&self) {
        let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *window = match *window {
            Some((start, n)) if start.elapsed() < Duration::from_secs(60) => Some((start, n + 1)),
            _ => Some((Instant::now(), 1)),
        };
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn mac(token: &str, issued: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("bucketlens session {issued}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A session cookie's value for a sign-in at `issued` (seconds since 1970).
fn session(token: &str, issued: u64) -> String {
    format!("{issued}.{}", mac(token, issued))
}

fn session_valid(token: &str, value: &str) -> bool {
    let Some((issued, _)) = value.split_once('.') else { return false };
    let Ok(issued) = issued.parse::<u64>() else { return false };
    let age = now_secs().saturating_sub(issued);
    issued <= now_secs() + 60 && age < SESSION_DAYS * 86_400 && token_matches(&session(token, issued), value)
}

/// No inline script or style, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn token_matches(expected: &str, given: &str) -> bool {
    // Equal lengths are compared byte by byte in constant time; the length itself is
    // not secret enough to matter (the token is at least 16 characters).
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The bearer token, whatever the case of its scheme (RFC 9110: schemes are
/// case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

fn sessions(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
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
        Some(expected) => {
            bearer(headers).is_some_and(|given| token_matches(expected, &given))
                || sessions(headers).iter().any(|value| session_valid(expected, value))
        }
    }
}

/// Where to go after signing in: a path of this site only (never `//elsewhere`).
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && !next.starts_with("/login") {
        next
    } else {
        "/"
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
    let open = path == "/login" || path == "/logout" || path == "/assets/login.css";
    let mut response = if !open && !authorized(&state, request.headers()) {
        if path.starts_with("/api/") || path == "/metrics" {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs its token: send Authorization: Bearer TOKEN, or sign in at /login",
            )
            .into_response()
        } else {
            let asked = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let next: String = form_urlencoded(asked);
            Redirect::to(&format!("/login?next={next}")).into_response()
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
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>{message}</form></main></body></html>"#;

/// Percent-encodes `text` for a query value (slashes kept, as a path reads).
fn form_urlencoded(text: &str) -> String {
    const PATH: &percent_encoding::AsciiSet = &crate::UNRESERVED.remove(b'/');
    percent_encoding::utf8_percent_encode(text, PATH).to_string()
}

/// `text` safe inside an HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

fn login_form(next: &str, message: &str) -> String {
    LOGIN.replace("{next}", &attribute(local_path(next))).replace("{message}", message)
}

#[derive(serde::Deserialize)]
pub struct Asked {
    #[serde(default)]
    next: String,
}

/// `GET /login?next=PAGE`.
pub async fn login_page(axum::extract::Query(asked): axum::extract::Query<Asked>) -> Html<String> {
    Html(login_form(&asked.next, ""))
}

#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
    #[serde(default)]
    next: String,
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
    if !state.throttle.open() {
        let message = format!(
            r#"<p class="error" role="alert">More than {FAILURES_PER_MINUTE} wrong tokens in a minute: wait a minute and try again.</p>"#
        );
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Html(login_form(&form.next, &message))).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    if !token_matches(expected, &form.token) {
        state.throttle.failed();
        tokio::time::sleep(FAILURE_DELAY).await;
        let page = login_form(&form.next, r#"<p class="error" role="alert">That is not this server's token.</p>"#);
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let over_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.split(',').next().is_some_and(|first| first.trim().eq_ignore_ascii_case("https")));
    let secure = if over_tls { "; Secure" } else { "" };
    let max_age = SESSION_DAYS * 86_400;
    let value = session(expected, now_secs());
    let cookie = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    let mut response = Redirect::to(local_path(&form.next)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`: forgets this browser's session and shows the sign-in page.
pub async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /api/session`: whether this server asks for a token (the page shows "Sign
/// out" then).
pub async fn session_info(Extract(state): Extract<State>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "token_required": state.parts.config.token.is_some() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_the_token_s_mac_of_its_time_and_lapses() {
        let token = "a-long-enough-token";
        let now = now_secs();
        assert!(session_valid(token, &session(token, now)));
        assert!(!session_valid("another-long-token", &session(token, now)), "a new token ends every session");
        assert!(!session_valid(token, &session(token, now - SESSION_DAYS * 86_400)), "lapsed");
        assert!(!session_valid(token, &session(token, now + 3600)), "from the future");
        assert!(!session_valid(token, token), "the raw token is not a session");
        assert!(!session(token, now).contains(token));
        let forged = format!("{}.{}", now + 1, session(token, now).split_once('.').unwrap().1);
        assert!(!session_valid(token, &forged), "a MAC is for its own time only");
    }

    #[test]
    fn sign_in_returns_only_to_a_page_of_this_site() {
        assert_eq!(local_path("/?q=cat&photo=photos%2Fa.png"), "/?q=cat&photo=photos%2Fa.png");
        for elsewhere in ["//evil.example/", "https://evil.example/", "/\\evil.example", "", "/login?next=/"] {
            assert_eq!(local_path(elsewhere), "/", "{elsewhere}");
        }
    }
}

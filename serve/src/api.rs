//! The JSON routes. Every error is `{"error": "...", "code": "..."}` with a 4xx/5xx
//! status and a message naming what was wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bucketlens_index::photo::Facet;
use bucketlens_index::{Cursor, DocState, Expr, Hit, IndexError, SearchRequest, Sort};
use serde_json::{json, Value};

use crate::State;

/// The longest query accepted, in bytes.
pub const MAX_QUERY: usize = 2_000;
/// The most hits one page returns.
pub const MAX_LIMIT: usize = 500;
/// Hits per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 60;
/// Facet values returned per facet.
pub const FACETS: usize = 50;
/// The most label counts `facet_limit` may ask for ("show all labels").
pub const MAX_FACETS: usize = 2_000;

/// An API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        let status = if e.retryable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
        Self::new(status, "index_failed", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message, "code": self.code }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

type Params = Query<HashMap<String, String>>;

fn number<T: std::str::FromStr>(params: &HashMap<String, String>, name: &str) -> ApiResult<Option<T>> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|_| ApiError::bad_request(format!("{name} must be a number, got {v:?}"))))
        .transpose()
}

fn time(params: &HashMap<String, String>, name: &str) -> ApiResult<Option<i64>> {
    let Some(text) = params.get(name).filter(|v| !v.is_empty()) else { return Ok(None) };
    let at = humantime::parse_rfc3339_weak(text).map_err(|e| {
        ApiError::bad_request(format!("{name} must be an RFC 3339 time such as 2024-06-01T00:00:00Z: {e}"))
    })?;
    Ok(Some(at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)))
}

fn text(params: &HashMap<String, String>, name: &str) -> Option<String> {
    params.get(name).filter(|v| !v.is_empty()).cloned()
}

pub fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode_cursor(text: &str) -> ApiResult<Cursor> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("cursor is not one this server gave (use the `next` of a response)"))
}

/// The search a query string asks for.
pub fn request(params: &HashMap<String, String>) -> ApiResult<SearchRequest> {
    let q = params.get("q").map(String::as_str).unwrap_or("");
    if q.len() > MAX_QUERY {
        return Err(ApiError::bad_request(format!("q is {} bytes, above the limit of {MAX_QUERY}", q.len())));
    }
    let query = Expr::parse(q).map_err(ApiError::bad_request)?;
    let mut request = SearchRequest::new(query);
    let min_confidence: f32 = number(params, "min_confidence")?.unwrap_or(0.0);
    if !(0.0..=100.0).contains(&min_confidence) {
        return Err(ApiError::bad_request(format!("min_confidence must be between 0 and 100, got {min_confidence}")));
    }
    request.min_confidence = min_confidence;
    request.bucket = text(params, "bucket");
    request.prefix = text(params, "prefix");
    request.model_version = text(params, "model_version");
    request.modified = (time(params, "modified_after")?, time(params, "modified_before")?);
    request.size = (number(params, "min_size")?, number(params, "max_size")?);
    request.state = match params.get("state").map(String::as_str) {
        None | Some("" | "labeled") => DocState::Labeled,
        Some("failed") => DocState::Failed,
        Some(other) => return Err(ApiError::bad_request(format!("state must be labeled or failed, got {other:?}"))),
    };
    let limit: usize = number(params, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit must be at most {MAX_LIMIT}, got {limit}")));
    }
    request.limit = limit;
    request.after = params.get("cursor").filter(|c| !c.is_empty()).map(|c| decode_cursor(c)).transpose()?;
    request.sort = match params.get("sort").filter(|s| !s.is_empty()) {
        None => Sort::Relevance,
        Some(text) => Sort::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!("sort must be relevance, name, newest, oldest or taken, got {text:?}"))
        })?,
    };
    let facets = match params.get("facets").map(String::as_str) {
        None | Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!("facets must be true or false (1 or 0), got {other:?}")))
        }
    };
    let facet_limit: usize = number(params, "facet_limit")?.unwrap_or(FACETS);
    if !(1..=MAX_FACETS).contains(&facet_limit) {
        return Err(ApiError::bad_request(format!("facet_limit must be from 1 to {MAX_FACETS}, got {facet_limit}")));
    }
    if facets {
        request.label_counts = Some(facet_limit);
        request.facets = Some(FACETS);
    }
    Ok(request)
}

fn pairs(counts: &[(String, u64)]) -> Value {
    Value::Array(counts.iter().map(|(name, n)| json!([name, n])).collect())
}

/// A turn among `serve.searches-at-once` (see [`search`]).
async fn turn(state: &State) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
    state
        .searches
        .acquire()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the server is stopping"))
}

/// `GET /api/search`. Searches use the CPU and hold their hits in memory, so running
/// more than `serve.searches-at-once` at once would make each slower and the process
/// bigger, not the answers sooner: the rest wait in order of arrival.
///
/// `like=BUCKET/KEY`: the photos that look most like that one, most similar first,
/// among those the other parameters match; each hit has its `similarity` (0-1), and
/// there is one page (`limit` long).
///
/// `semantic=PHRASE`: the photos nearest the phrase by meaning (the embedder's text
/// tower), the same way, at least `min_similarity` (0-1; the model's floor unless
/// given) alike.
pub async fn search(Extract(state): Extract<State>, Query(params): Params) -> ApiResult<Json<Value>> {
    let mut request = request(&params)?;
    if let Some(like) = params.get("like").filter(|l| !l.is_empty()) {
        request.like = Some(like_of(&state, like).await?);
        request.after = None;
    }
    let mut floor = None;
    if let Some(phrase) = params.get("semantic").filter(|p| !p.trim().is_empty()) {
        let meaning = meaning(&state).await?;
        let min = match params.get("min_similarity") {
            None => meaning.model.entry.min_similarity,
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|m| (0.0..=1.0).contains(m))
                .ok_or_else(|| ApiError::bad_request(format!("min_similarity={text:?}: a number from 0 to 1")))?,
        };
        let phrase = phrase.clone();
        let encoded = tokio::task::spawn_blocking(move || meaning.tower.embed(&phrase)).await.map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("encoding the phrase failed: {e}"))
        })?;
        let embedding = encoded.map_err(ApiError::bad_request)?;
        request.like = Some(bucketlens_index::Like { embedding, except: None });
        request.after = None;
        floor = Some(min);
    }
    let _turn = turn(&state).await?;
    let mut response = state.parts.index.search(request).await?;
    if let Some(min) = floor {
        // Under the floor is not a match: a phrase about nothing here finds nothing.
        response.hits.retain(|hit| hit.similarity.unwrap_or(0.0) >= min);
        response.total = response.hits.len() as u64;
    }
    let mut facets = json!({
        "labels": pairs(&response.label_counts),
        "buckets": pairs(&response.buckets),
        "models": pairs(&response.models),
    });
    for (i, facet) in Facet::ALL.iter().enumerate() {
        facets[facet.plural()] = pairs(response.photo_facets.get(i).map_or(&[][..], Vec::as_slice));
    }
    Ok(Json(json!({
        "total": response.total,
        "hits": response.hits.iter().map(Hit::to_json).collect::<Vec<_>>(),
        "next": response.next.as_ref().map(encode_cursor),
        "facets": facets,
    })))
}

/// `(label, documents)` pairs, most frequent first.
type Counts = Vec<(String, u64)>;

/// The index's label names, most frequent first, remembered for a few seconds.
#[derive(Default)]
pub struct Suggestions {
    names: Mutex<Option<(Instant, Counts)>>,
}

const SUGGESTIONS_FOR: Duration = Duration::from_secs(5);

impl Suggestions {
    async fn names(&self, state: &State) -> ApiResult<Counts> {
        if let Ok(guard) = self.names.lock() {
            if let Some((at, names)) = guard.as_ref() {
                if at.elapsed() < SUGGESTIONS_FOR {
                    return Ok(names.clone());
                }
            }
        }
        let mut request = SearchRequest::new(Expr::All);
        request.limit = 0;
        request.label_counts = Some(65_536);
        let names = state.parts.index.search(request).await?.label_counts;
        if let Ok(mut guard) = self.names.lock() {
            *guard = Some((Instant::now(), names.clone()));
        }
        Ok(names)
    }
}

/// `GET /api/suggest?q=PREFIX`: up to 10 label names that start with (then contain)
/// the prefix, most frequent first. With `near=1`: up to 5 names spelled like `q`
/// (for a search that found nothing: `kiten` → Kitten, `grey hound` → Greyhound).
pub async fn suggest(Extract(state): Extract<State>, Query(params): Params) -> ApiResult<Json<Value>> {
    let prefix = params.get("q").map(|q| q.trim().to_lowercase()).unwrap_or_default();
    if prefix.len() > MAX_QUERY {
        return Err(ApiError::bad_request(format!("q is above the limit of {MAX_QUERY} bytes")));
    }
    let names = state.suggestions.names(&state).await?;
    let lower: Vec<(String, &String, u64)> = names.iter().map(|(n, c)| (n.to_lowercase(), n, *c)).collect();
    if params.get("near").is_some_and(|v| v == "1") {
        return Ok(Json(Value::Array(near(&prefix, &lower))));
    }
    let out: Vec<Value> = lower
        .iter()
        .filter(|(l, _, _)| l.starts_with(&prefix))
        .chain(lower.iter().filter(|(l, _, _)| !l.starts_with(&prefix) && l.contains(&prefix)))
        .take(10)
        .map(|(_, name, n)| json!([name, n]))
        .collect();
    Ok(Json(Value::Array(out)))
}

/// The names most like `word` (Jaro-Winkler 0.85 or more, or the same with spaces
/// taken out), best first.
fn near(word: &str, names: &[(String, &String, u64)]) -> Vec<Value> {
    let squeezed = word.replace(' ', "");
    let mut scored: Vec<(f64, &String, u64)> = names
        .iter()
        .map(|(lower, name, n)| {
            let score = strsim::jaro_winkler(word, lower).max(strsim::jaro_winkler(&squeezed, &lower.replace(' ', "")));
            (score, *name, *n)
        })
        .filter(|(score, _, _)| *score >= 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.2.cmp(&a.2)));
    scored.into_iter().take(5).map(|(_, name, n)| json!([name, n])).collect()
}

/// `GET /api/status`: what `status --json` prints.
pub async fn status(Extract(state): Extract<State>) -> ApiResult<Json<Value>> {
    let report = (state.parts.status)()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "status_unavailable", e))?;
    Ok(Json(report))
}

/// The document of `bucket/key`, unless the index has none or only a tombstone.
pub async fn document(state: &State, bucket: &str, key: &str) -> ApiResult<Hit> {
    match state.parts.index.get(bucket, key).await? {
        Some(hit) if hit.state != DocState::Removed => Ok(hit),
        _ => Err(ApiError::not_found(format!("the index has no object {bucket}/{key}"))),
    }
}

/// The embedder's text tower and its model, loaded by the first search by meaning.
#[derive(Debug)]
pub struct Meaning {
    pub tower: bucketlens_labeler::analyzers::embedder::TextTower,
    pub model: bucketlens_labeler::models::Installed,
}

async fn meaning(state: &State) -> ApiResult<Arc<Meaning>> {
    let loaded = state
        .meaning
        .get_or_init(|| async {
            bucketlens_labeler::text_tower(&state.parts.labeler)
                .await
                .map(|(tower, model)| Arc::new(Meaning { tower, model }))
        })
        .await;
    loaded.clone().map_err(|e| ApiError::new(StatusCode::NOT_IMPLEMENTED, "no_embedder", e))
}

/// What `like=BUCKET/KEY` compares with: that photo's embedding, the photo itself left out.
async fn like_of(state: &State, like: &str) -> ApiResult<bucketlens_index::Like> {
    let (bucket, key) = like
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("like={like:?} is not BUCKET/KEY")))?;
    let hit = document(state, bucket, key).await?;
    let embedding = hit.embedding.filter(|_| hit.state == DocState::Labeled).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{bucket}/{key} has no embedding (not labeled, labeled before embeddings or with labeler.embedding off, \
             or by Rekognition)"
        ))
    })?;
    Ok(bucketlens_index::Like { embedding, except: Some((hit.bucket, hit.key)) })
}

/// `GET /api/objects/{bucket}/{key}`.
pub async fn object(
    Extract(state): Extract<State>,
    Path((bucket, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(document(&state, &bucket, &key).await?.to_json()))
}

/// `min_similarity` of a duplicates or similar request: the default, or 0.83-1.
fn min_similarity(params: &HashMap<String, String>) -> ApiResult<f64> {
    use bucketlens_index::duplicates as dup;
    match params.get("min_similarity") {
        None => Ok(dup::DEFAULT_MIN_SIMILARITY),
        Some(text) => match text.parse::<f64>() {
            Ok(s) if (dup::similarity(dup::MAX_DISTANCE) - 1e-9..=1.0).contains(&s) => Ok(s),
            _ => Err(ApiError::bad_request(format!(
                "min_similarity={text:?}: a number from {:.2} to 1",
                dup::similarity(dup::MAX_DISTANCE)
            ))),
        },
    }
}

/// `GET /api/similar/{bucket}/{key}[?min_similarity=S]`: where else the photo is (its
/// exact copies, and the same picture resized, recompressed or converted), most alike
/// first, as `bucketlens similar BUCKET/KEY --copies --json` prints it.
pub async fn similar(
    Extract(state): Extract<State>,
    Path((bucket, key)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult<Json<Value>> {
    use bucketlens_index::duplicates as dup;
    let min_similarity = min_similarity(&params)?;
    let hit = document(&state, &bucket, &key).await?;
    let Some(hashes) = hit.hashes.clone().filter(|_| hit.state == DocState::Labeled) else {
        return Ok(Json(json!({ "hits": [], "unhashed": true })));
    };
    let _turn = turn(&state).await?;
    let collected = dup::collect(state.parts.index.as_ref(), None, None).await?;
    let mut found = dup::alike(collected.members, &hashes, Some((&bucket, &key)), dup::max_distance(min_similarity));
    found.truncate(MAX_LIMIT);
    Ok(Json(json!({ "hits": found })))
}

/// `GET /api/duplicates[?bucket=B&prefix=P&min_similarity=S&exact=true]`: the groups of
/// exact copies and near duplicates, as `bucketlens duplicates --json` prints them.
pub async fn duplicates(Extract(state): Extract<State>, Query(params): Params) -> ApiResult<Json<Value>> {
    use bucketlens_index::duplicates as dup;
    let min_similarity = min_similarity(&params)?;
    let _turn = turn(&state).await?;
    let non_empty = |name: &str| params.get(name).filter(|v| !v.is_empty()).map(String::as_str);
    let collected = dup::collect(state.parts.index.as_ref(), non_empty("bucket"), non_empty("prefix")).await?;
    let mut members = collected.members;
    if params.get("exact").is_some_and(|v| v == "true") {
        members.iter_mut().for_each(|m| m.dhash = None);
    }
    let report = dup::find(members, dup::max_distance(min_similarity));
    let mut value = serde_json::to_value(&report).unwrap_or_default();
    value["unhashed"] = json!(collected.unhashed);
    Ok(Json(value))
}

/// Any other path.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such page or API route: {}", uri.path()))
}

/// A route asked with a method it does not take: the documented error shape.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{uri} does not take {method}"))
}

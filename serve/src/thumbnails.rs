//! Thumbnails and original images, read through the object sources the labeler
//! reads (folders, S3), for objects the index holds only.
//!
//! A thumbnail is made once per object version: the JPEG is decoded at the smallest
//! DCT scale that still covers the asked size (the labeler's decode), turned upright
//! by its EXIF orientation, scaled so its long side is at most `size`, encoded as
//! JPEG and kept in `<data-dir>/thumbnails/`, named by a hash of bucket, key, etag,
//! version and size: a replaced object gets a new name. The cache is bounded: past
//! `thumbnail-cache-mb`, the oldest files are removed. At most `thumbnail-workers`
//! thumbnails are made at once, so many large decodes cannot exhaust memory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bucketlens_index::Hit;
use bucketlens_runtime::bucket::{ObjectRef, SourceError};
use bucketlens_schemas::ImageFormat;
use futures_util::StreamExt;
use image::DynamicImage;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::api::{document, ApiError, ApiResult};
use crate::State;

/// The long side of a thumbnail when `size` is not given.
pub const DEFAULT_SIZE: u32 = 320;
/// The largest `size` accepted.
pub const MAX_SIZE: u32 = 1024;
const MIN_SIZE: u32 = 16;
const QUALITY: u8 = 82;

pub struct Thumbnails {
    dir: PathBuf,
    limit_bytes: u64,
    /// Bytes in the cache folder (as far as this process knows).
    used: Arc<AtomicU64>,
    workers: Arc<Semaphore>,
    evicting: Arc<Mutex<()>>,
}

impl Thumbnails {
    pub fn new(config: &crate::Config, dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let used = cache_files(&dir)?.iter().map(|(_, len, _)| len).sum();
        Ok(Self {
            dir,
            limit_bytes: config.thumbnail_cache_mb.saturating_mul(1 << 20),
            used: Arc::new(AtomicU64::new(used)),
            workers: Arc::new(Semaphore::new(config.thumbnail_workers.max(1))),
            evicting: Arc::new(Mutex::new(())),
        })
    }

    fn store(&self, path: &std::path::Path, jpeg: &[u8]) {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, jpeg).and_then(|()| std::fs::rename(&tmp, path)).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return; // a full or read-only disk costs the cache, not the response
        }
        let used = self.used.fetch_add(jpeg.len() as u64, Ordering::Relaxed) + jpeg.len() as u64;
        if used > self.limit_bytes {
            self.evict();
        }
    }

    /// Removes the oldest thumbnails until the cache is at 90% of its limit.
    fn evict(&self) {
        let Ok(_one) = self.evicting.try_lock() else { return };
        let Ok(mut files) = cache_files(&self.dir) else { return };
        files.sort_by_key(|(_, _, modified)| *modified);
        let mut used: u64 = files.iter().map(|(_, len, _)| len).sum();
        let target = self.limit_bytes / 10 * 9;
        for (path, len, _) in files {
            if used <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                used -= len;
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}

fn cache_files(dir: &std::path::Path) -> std::io::Result<Vec<(PathBuf, u64, std::time::SystemTime)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() && entry.path().extension().is_some_and(|e| e == "jpg") {
            out.push((entry.path(), meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH)));
        }
    }
    Ok(out)
}

/// The name of one version of an object's thumbnail at one size.
fn version_tag(hit: &Hit, size: u32) -> String {
    let mut hash = Sha256::new();
    for part in [
        hit.bucket.as_str(),
        hit.key.as_str(),
        hit.etag.as_deref().unwrap_or(""),
        hit.version_id.as_deref().unwrap_or(""),
        &hit.last_modified.unwrap_or(0).to_string(),
        &size.to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn source_error(e: SourceError) -> ApiError {
    let status = match &e {
        SourceError::PermissionDenied { .. } | SourceError::InvalidKey { .. } => StatusCode::FORBIDDEN,
        SourceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ if e.retryable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, "source_failed", e.to_string())
}

/// The object's bytes, as the index knows it (its version, when it has one).
async fn read(state: &State, hit: &Hit) -> ApiResult<Vec<u8>> {
    let object = ObjectRef { bucket: &hit.bucket, key: &hit.key, version_id: hit.version_id.as_deref() };
    state
        .parts
        .source
        .get(object, state.parts.max_bytes)
        .await
        .map_err(source_error)?
        .map(|read| read.bytes)
        .ok_or_else(|| ApiError::not_found(format!("{object} is in the index but no longer in its bucket")))
}

/// Makes the thumbnail: CPU work, for the blocking pool.
pub fn make(bytes: &[u8], size: u32, max_pixels: u64) -> Result<Vec<u8>, String> {
    let properties = bucketlens_labeler::image::properties(bytes).map_err(|f| f.message)?;
    let (w, h) = (properties.width.max(1) as u64, properties.height.max(1) as u64);
    // The short side that a long side of `size` implies: the scaled decode keeps at least that.
    let short_side = (u64::from(size) * w.min(h)).div_ceil(w.max(h)).max(1) as u32;
    // Decoded as the labeler sees it: the EXIF orientation applied.
    let (rgb, _) = bucketlens_labeler::image::decode(bytes, max_pixels, short_side).map_err(|f| f.message)?;
    let mut image = DynamicImage::ImageRgb8(rgb);
    if image.width().max(image.height()) > size {
        // Fits the long side to `size`, the aspect kept.
        image = image.thumbnail(size, size);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&image)
        .map_err(|e| format!("cannot encode the thumbnail: {e}"))?;
    Ok(out)
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn cache_control(params: &std::collections::HashMap<String, String>, hit: &Hit) -> &'static str {
    // A URL that names the version (`v` = the etag the page was given) never changes.
    match (params.get("v"), &hit.etag) {
        (Some(v), Some(etag)) if v == etag => "private, max-age=31536000, immutable",
        _ => "private, no-cache",
    }
}

/// `GET /api/thumbnails/{bucket}/{key}?size=N`.
pub async fn thumbnail(
    Extract(state): Extract<State>,
    Path((bucket, key)): Path<(String, String)>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let size = match params.get("size") {
        None => DEFAULT_SIZE,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (MIN_SIZE..=MAX_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got {text:?}"
                )))
            }
        },
    };
    let hit = document(&state, &bucket, &key).await?;
    let tag = version_tag(&hit, size);
    let etag = format!("\"{tag}\"");
    let cache_control = cache_control(&params, &hit);
    let respond = |body: Vec<u8>| {
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
                (header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""))),
            ],
            body,
        )
            .into_response()
    };
    if etag_matches(&headers, &etag) {
        let mut response = respond(Vec::new());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(response);
    }
    let path = state.thumbnails.dir.join(format!("{tag}.jpg"));
    if let Ok(cached) = tokio::fs::read(&path).await {
        state.metrics.thumbnail_hits.inc();
        return Ok(respond(cached));
    }
    state.metrics.thumbnail_misses.inc();
    let _worker = Arc::clone(&state.thumbnails.workers)
        .acquire_owned()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is stopping"))?;
    let bytes = read(&state, &hit).await?;
    let max_pixels = state.parts.max_pixels;
    // Kept in the cache before it is sent: the next request for it is a hit, even one
    // sent the moment this one is answered.
    let (app, store_path) = (Arc::clone(&state), path.clone());
    let jpeg = tokio::task::spawn_blocking(move || {
        let jpeg = make(&bytes, size, max_pixels)?;
        app.thumbnails.store(&store_path, &jpeg);
        Ok::<_, String>(jpeg)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "thumbnail_failed", e.to_string()))?
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "thumbnail_failed",
            format!("{}/{} cannot be shown: {e}", hit.bucket, hit.key),
        )
    })?;
    Ok(respond(jpeg))
}

/// `GET /api/images/{bucket}/{key}`: the original bytes, streamed from the source as
/// they are read. Only images are sent as images; anything else (a failed object
/// that is not an image) as a download.
pub async fn image(
    Extract(state): Extract<State>,
    Path((bucket, key)): Path<(String, String)>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let hit = document(&state, &bucket, &key).await?;
    // The object's version is its tag: a browser that has it is told so, unread.
    let etag = format!("\"{}\"", version_tag(&hit, 0));
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if etag_matches(&headers, etag.to_str().unwrap_or_default()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let object = ObjectRef { bucket: &hit.bucket, key: &hit.key, version_id: hit.version_id.as_deref() };
    let mut chunks = state
        .parts
        .source
        .stream(object, state.parts.max_bytes)
        .await
        .map_err(source_error)?
        .ok_or_else(|| ApiError::not_found(format!("{object} is in the index but no longer in its bucket")))?;
    // The first chunk tells the format (the magic bytes are its first few). An
    // empty object has none, and its stream, ended, is not polled again.
    let first = chunks.next().await.transpose().map_err(|e| {
        ApiError::new(StatusCode::BAD_GATEWAY, "source_failed", format!("reading {object} failed: {e}"))
    })?;
    let (kind, disposition) = match first.as_deref().and_then(ImageFormat::sniff) {
        Some(format) => (format.media_type(), "inline"),
        None => ("application/octet-stream", "attachment"),
    };
    let disposition = HeaderValue::from_str(&content_disposition(disposition, &hit.key))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let cache_control = cache_control(&params, &hit);
    let headers_of = |etag: HeaderValue| {
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CONTENT_DISPOSITION, disposition.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
            (header::ETAG, etag),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        ]
    };
    let Some(first) = first else { return Ok((headers_of(etag), Body::empty()).into_response()) };
    let whole = futures_util::stream::iter([Ok(first)]).chain(chunks);
    let size = hit.size.and_then(|s| u64::try_from(s).ok());
    match (size, wanted_range(&headers, &etag, size)) {
        (Some(size), Some(Ok(range))) => {
            let (start, end) = (*range.start(), *range.end());
            let part = Body::from_stream(slice(whole, start, end - start + 1));
            let content_range = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
                .unwrap_or(HeaderValue::from_static("bytes */0"));
            Ok((StatusCode::PARTIAL_CONTENT, headers_of(etag), [(header::CONTENT_RANGE, content_range)], part)
                .into_response())
        }
        (Some(size), Some(Err(()))) => {
            let content_range =
                HeaderValue::from_str(&format!("bytes */{size}")).unwrap_or(HeaderValue::from_static("bytes */0"));
            let error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("{object} has {size} bytes; the range asked for is not within them"),
            );
            Ok((StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, content_range)], error).into_response())
        }
        _ => Ok((headers_of(etag), Body::from_stream(whole)).into_response()),
    }
}

/// The one byte range a request asks for (RFC 9110 §14), if it asks for one this
/// answers as a range: `Ok` a range within the object, `Err` one that is not. A
/// range that does not parse, several ranges, or an `If-Range` naming another
/// version are answered with the whole object, as the RFC allows.
fn wanted_range(
    headers: &HeaderMap,
    etag: &HeaderValue,
    size: Option<u64>,
) -> Option<Result<std::ops::RangeInclusive<u64>, ()>> {
    let size = size?;
    let asked = headers.get(header::RANGE)?.to_str().ok()?;
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        if if_range != etag {
            return None;
        }
    }
    let parsed = http_range_header::parse_range_header(asked).ok()?;
    if parsed.ranges.len() != 1 {
        return None;
    }
    Some(match parsed.validate(size) {
        Ok(ranges) => ranges.into_iter().next().filter(|r| r.start() <= r.end() && *r.start() < size).ok_or(()),
        Err(_) => Err(()),
    })
}

/// The `len` bytes from `start` of a stream of chunks.
fn slice(
    chunks: impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let end = start + len;
    chunks
        .scan(0u64, move |offset, chunk| {
            let chunk_start = *offset;
            if chunk_start >= end {
                return futures_util::future::ready(None);
            }
            let item = chunk.map(|bytes| {
                *offset += bytes.len() as u64;
                let from = start.saturating_sub(chunk_start).min(bytes.len() as u64) as usize;
                let to = (end - chunk_start).min(bytes.len() as u64) as usize;
                bytes[from..to.max(from)].to_vec()
            });
            futures_util::future::ready(Some(item))
        })
        .filter(|item| futures_util::future::ready(!matches!(item, Ok(bytes) if bytes.is_empty())))
}

/// `inline` or `attachment`, with the key's file name: plain ASCII for old clients and
/// RFC 6266's `filename*` (UTF-8, percent-encoded) for the exact name.
fn content_disposition(kind: &str, key: &str) -> String {
    let name = key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("image");
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let exact = percent_encoding::utf8_percent_encode(name, crate::UNRESERVED);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

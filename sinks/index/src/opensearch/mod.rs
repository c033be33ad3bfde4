//! The OpenSearch index (Amazon OpenSearch Service, Serverless, or self-hosted).
//!
//! Same semantics as the embedded index, through the same [`Index`] trait:
//! - `_id` is [`document_id`] (a fixed-length hash of bucket and key: S3 keys reach
//!   1024 bytes, `_id` is capped at 512);
//! - ordering is decided by [`crate::version::supersedes`], the very function the
//!   embedded index uses, on the version stored in the document (the S3 sequencer,
//!   else `last_modified`). Sequencers are hex strings longer than 64 bits, so they
//!   cannot be OpenSearch external versions; instead each write is conditional on
//!   the document being unchanged since it was read (`if_seq_no`/`if_primary_term`,
//!   `create` when absent). A 409 means another writer got there first: the document
//!   is read again and the decision made again. A replay finds every record equal
//!   to the stored version and rewrites the same state: no error, no change;
//! - a removal leaves a tombstone document (state `removed`), never returned by
//!   searches, so a late create with an older sequencer cannot resurrect the object;
//! - `_bulk` requests are bounded by count and bytes; every item of a 200 response is
//!   checked. 429 and 5xx items are retried with backoff and jitter; any other 4xx
//!   is returned as rejected (the sink sends it to the DLQ with the reason).

mod credentials;
mod doc;
mod mapping;
mod query;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bucketlens_schemas::{document_id, ImageLabeled};
use opensearch::auth::Credentials;
use opensearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::{Method, Url};
use opensearch::OpenSearch;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::config::OpenSearchConfig;
use crate::index::{Hit, Index, IndexError, Like, Rejected, SearchRequest, SearchResponse, WriteStats};
use crate::version::{judge, Decision, Version};
use doc::{Doc, Pending, Stored};

/// Rounds of conflict or throttling retries within one `write` before it gives up
/// (retryably: the sink then retries the whole batch with its own backoff).
const WRITE_ROUNDS: u32 = 6;

/// The OpenSearch index.
pub struct OpenSearchIndex {
    client: OpenSearch,
    config: OpenSearchConfig,
}

/// An HTTP failure, classified.
fn transport_error(e: opensearch::Error) -> IndexError {
    // Connection refused, timeouts, TLS: the server may come back.
    IndexError::Failed { reason: format!("OpenSearch unreachable: {e}"), retryable: true }
}

fn status_error(what: &str, status: u16, body: &Value) -> IndexError {
    let retryable = status == 429 || status >= 500;
    IndexError::Failed { reason: format!("OpenSearch {what} answered {status}: {}", error_text(body)), retryable }
}

/// The `type: reason` of an OpenSearch error body (or the body itself).
fn error_text(body: &Value) -> String {
    let error = body.get("error").unwrap_or(body);
    match (error.get("type").and_then(Value::as_str), error.get("reason").and_then(Value::as_str)) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ => error.to_string(),
    }
}

/// What a name is on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Missing,
    /// A plain index (made by bucketlens before it made aliases, or by hand).
    Index,
    /// An alias, and the indices it points to.
    Alias(Vec<String>),
}

impl OpenSearchIndex {
    /// Connects, and creates the index (`<index>-v1`, aliased `<index>`) and its
    /// template when missing.
    pub async fn open(config: &OpenSearchConfig) -> Result<Self, IndexError> {
        let index = Self::connect(config).await?;
        index
            .ensure_index()
            .await
            .map_err(|e| IndexError::Open { location: config.url.clone(), reason: e.to_string() })?;
        Ok(index)
    }

    /// Connects for searching only: creates nothing, so read-only credentials do.
    pub async fn open_for_search(config: &OpenSearchConfig) -> Result<Self, IndexError> {
        Self::connect(config).await
    }

    /// Whether the index (or alias) exists.
    pub async fn exists(&self) -> Result<bool, IndexError> {
        let (status, body) = self.call(Method::Head, &format!("/{}", self.config.index), None, false).await?;
        match status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error("index check", status, &body)),
        }
    }

    async fn connect(config: &OpenSearchConfig) -> Result<Self, IndexError> {
        let open_err = |reason: String| IndexError::Open { location: config.url.clone(), reason };
        let url = Url::parse(&config.url).map_err(|e| open_err(format!("not a URL: {e}")))?;
        let mut transport = TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(config.timeout);
        if !config.aws_service.is_empty() {
            let provider = credentials::cached_provider(config.region.as_deref()).await.map_err(open_err)?;
            transport = transport.auth(Credentials::AwsSigV4(provider.0, provider.1)).service_name(&config.aws_service);
        } else if !config.username.is_empty() {
            transport = transport.auth(Credentials::Basic(config.username.clone(), config.password.clone()));
        }
        let transport = transport.build().map_err(|e| open_err(e.to_string()))?;
        Ok(Self { client: OpenSearch::new(transport), config: config.clone() })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        ndjson: bool,
    ) -> Result<(u16, Value), IndexError> {
        let mut headers = HeaderMap::new();
        let kind = if ndjson { "application/x-ndjson" } else { "application/json" };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        let response =
            self.client.send::<Vec<u8>, ()>(method, path, headers, None, body, None).await.map_err(transport_error)?;
        let status = response.status_code().as_u16();
        let text = response.text().await.map_err(transport_error)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    async fn json(&self, method: Method, path: &str, body: &Value) -> Result<(u16, Value), IndexError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| IndexError::Failed { reason: e.to_string(), retryable: false })?;
        self.call(method, path, Some(bytes), false).await
    }

    /// The index when missing, with its template. A new name becomes the alias of
    /// `<name>-v1`, so that `bucketlens reindex` can later move it to another index
    /// while readers and writers go on using the name. An alias or an index that is
    /// there already is used as it is.
    async fn ensure_index(&self) -> Result<(), IndexError> {
        let name = &self.config.index;
        match self.resolve(name).await? {
            Resolved::Alias(_) => self.add_photo_fields(name).await,
            Resolved::Index => {
                self.put_template(name).await?;
                self.add_photo_fields(name).await
            }
            Resolved::Missing => {
                let first = format!("{name}-v1");
                self.create_index(&first, Some(name)).await?;
                info!(index = %first, alias = %name, "created the OpenSearch index and its alias");
                Ok(())
            }
        }
    }

    /// Adds the photo metadata's fields to an index (or the indices of an alias) made
    /// before them; without them, its documents' dates, cameras and keywords would be
    /// stored but never found.
    async fn add_photo_fields(&self, name: &str) -> Result<(), IndexError> {
        let body = json!({ "properties": mapping::photo_fields() });
        let (status, body) = self.json(Method::Put, &format!("/{name}/_mapping"), &body).await?;
        if status >= 300 {
            return Err(status_error("mapping update (the photo metadata's fields)", status, &body));
        }
        Ok(())
    }

    async fn put_template(&self, index: &str) -> Result<(), IndexError> {
        let (status, body) =
            self.json(Method::Put, &format!("/_index_template/{index}"), &mapping::template(index)).await?;
        if status >= 300 {
            return Err(status_error("index template", status, &body));
        }
        Ok(())
    }

    /// Creates `index` with its own template, `alias` pointing to it if given. One
    /// made meanwhile by another sink is taken as it is (the alias added to it).
    async fn create_index(&self, index: &str, alias: Option<&str>) -> Result<(), IndexError> {
        self.put_template(index).await?;
        let aliases: serde_json::Map<String, Value> = alias.map(|a| (a.to_string(), json!({}))).into_iter().collect();
        let (status, body) = self.json(Method::Put, &format!("/{index}"), &json!({ "aliases": aliases })).await?;
        let exists = body.pointer("/error/type").and_then(Value::as_str) == Some("resource_already_exists_exception");
        if status >= 300 && !exists {
            return Err(status_error("index creation", status, &body));
        }
        if let (true, Some(alias)) = (exists, alias) {
            let (status, body) = self.json(Method::Put, &format!("/{index}/_alias/{alias}"), &json!({})).await?;
            if status >= 300 {
                return Err(status_error("alias creation", status, &body));
            }
        }
        Ok(())
    }

    /// What `name` is on the cluster: an alias (and the indices it points to), an
    /// index, or nothing.
    pub async fn resolve(&self, name: &str) -> Result<Resolved, IndexError> {
        let (status, body) = self.call(Method::Get, &format!("/_alias/{name}"), None, false).await?;
        match status {
            200..=299 => {
                let mut indices: Vec<String> =
                    body.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
                indices.sort();
                Ok(Resolved::Alias(indices))
            }
            404 => {
                let (status, body) = self.call(Method::Head, &format!("/{name}"), None, false).await?;
                match status {
                    200..=299 => Ok(Resolved::Index),
                    404 => Ok(Resolved::Missing),
                    _ => Err(status_error("index check", status, &body)),
                }
            }
            _ => Err(status_error("alias check", status, &body)),
        }
    }

    /// Connects and creates `config.index` as a plain index with its own template
    /// (a reindex target; no alias).
    pub async fn create(config: &OpenSearchConfig) -> Result<Self, IndexError> {
        let index = Self::connect(config).await?;
        index
            .create_index(&config.index, None)
            .await
            .map_err(|e| IndexError::Open { location: config.url.clone(), reason: e.to_string() })?;
        Ok(index)
    }

    /// Points `alias` at `to` in one atomic step: away from the index `from`, or,
    /// with `from = None`, deleting the index that has the alias' name (an alias
    /// cannot share a name with an index).
    pub async fn switch_alias(&self, alias: &str, from: Option<&str>, to: &str) -> Result<(), IndexError> {
        let actions = match from {
            Some(from) => json!([
                { "remove": { "index": from, "alias": alias } },
                { "add": { "index": to, "alias": alias } },
            ]),
            None => json!([
                { "add": { "index": to, "alias": alias } },
                { "remove_index": { "index": alias } },
            ]),
        };
        let (status, body) = self.json(Method::Post, "/_aliases", &json!({ "actions": actions })).await?;
        if status >= 300 {
            return Err(status_error("alias switch", status, &body));
        }
        Ok(())
    }

    /// The stored version of each of `ids` (absent ones are left out).
    async fn stored(&self, ids: &[&str]) -> Result<HashMap<String, Stored>, IndexError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(self.config.bulk_max_docs.max(1)) {
            let body = json!({ "ids": chunk });
            let path = format!(
                "/{}/_mget?_source_includes=labeled_at,etag,version_id,model.name,model.version",
                self.config.index
            );
            let (status, body) = self.json(Method::Post, &path, &body).await?;
            if status >= 300 {
                return Err(status_error("_mget", status, &body));
            }
            for doc in body["docs"].as_array().into_iter().flatten() {
                if doc["found"] != true {
                    continue;
                }
                let (Some(id), Some(seq_no), Some(primary_term)) =
                    (doc["_id"].as_str(), doc["_seq_no"].as_i64(), doc["_primary_term"].as_i64())
                else {
                    continue;
                };
                let text = |field: &str| doc.pointer(&format!("/_source/{field}")).and_then(Value::as_str);
                let version = Version {
                    labeled_at: doc.pointer("/_source/labeled_at").and_then(Value::as_i64).unwrap_or(0),
                    etag: text("etag").map(str::to_string),
                    version_id: text("version_id").map(str::to_string),
                    model: format!("{} {}", text("model/name").unwrap_or(""), text("model/version").unwrap_or("")),
                };
                out.insert(id.to_string(), Stored { version, seq_no, primary_term });
            }
        }
        Ok(out)
    }

    /// Decides each pending document against its stored version and writes the
    /// winners. Returns the ids to try again, with the status OpenSearch gave them
    /// (409: a conflict; 429, 5xx: throttling), and the rejected records; `stats`
    /// counts applied and stale records per document.
    async fn round(
        &self,
        pending: &[&Pending],
        stats: &mut HashMap<String, WriteStats>,
        rejected: &mut Vec<Rejected>,
    ) -> Result<Vec<(String, u16)>, IndexError> {
        let ids: Vec<&str> = pending.iter().map(|p| p.id.as_str()).collect();
        let stored = self.stored(&ids).await?;
        let mut ops: Vec<(&str, Vec<u8>, &ImageLabeled)> = Vec::new();
        for p in pending {
            let mut current = stored.get(&p.id).map(|s| s.version.clone());
            let mut winner = None;
            let mut counted = WriteStats::default();
            for record in &p.records {
                let incoming = Version::of(record);
                let decision = match &current {
                    Some(c) => counted.count(judge(record, &incoming, c)),
                    None => counted.count(Decision::Apply),
                };
                if decision == Decision::Apply {
                    current = Some(incoming);
                    winner = Some(record);
                }
            }
            stats.insert(p.id.clone(), counted);
            let Some(record) = winner else { continue };
            let action = match stored.get(&p.id) {
                Some(s) => {
                    json!({ "index": { "_id": p.id, "if_seq_no": s.seq_no, "if_primary_term": s.primary_term } })
                }
                None => json!({ "create": { "_id": p.id } }),
            };
            let mut lines = serde_json::to_vec(&action).unwrap_or_default();
            lines.push(b'\n');
            let doc = serde_json::to_vec(&Doc::of(record))
                .map_err(|e| IndexError::Failed { reason: e.to_string(), retryable: false })?;
            lines.extend(doc);
            lines.push(b'\n');
            ops.push((&p.id, lines, record));
        }
        let mut again = Vec::new();
        let mut start = 0;
        while start < ops.len() {
            // A bulk request holds at most bulk-max-docs items and bulk-max-bytes (or one item).
            let mut end = start;
            let mut bytes = 0;
            while end < ops.len()
                && end - start < self.config.bulk_max_docs
                && (end == start || bytes + ops[end].1.len() <= self.config.bulk_max_bytes)
            {
                bytes += ops[end].1.len();
                end += 1;
            }
            let chunk = &ops[start..end];
            start = end;
            let body: Vec<u8> = chunk.iter().flat_map(|(_, lines, _)| lines.iter().copied()).collect();
            let refresh = if self.config.wait_for_refresh { "?refresh=wait_for" } else { "" };
            let path = format!("/{}/_bulk{refresh}", self.config.index);
            let (status, response) = self.call(Method::Post, &path, Some(body), true).await?;
            if status >= 300 {
                return Err(status_error("_bulk", status, &response));
            }
            let items = response["items"].as_array().cloned().unwrap_or_default();
            if items.len() != chunk.len() {
                return Err(IndexError::Failed {
                    reason: format!("OpenSearch _bulk answered {} items for {} operations", items.len(), chunk.len()),
                    retryable: true,
                });
            }
            for ((id, _, record), item) in chunk.iter().zip(items) {
                let result = item.as_object().and_then(|o| o.values().next()).cloned().unwrap_or_default();
                let status = result["status"].as_u64().unwrap_or(0);
                match status {
                    200..=299 => {}
                    // 409: changed since we read it (another writer), decide again; 429/5xx: later.
                    409 | 429 | 500..=599 => again.push((id.to_string(), status as u16)),
                    _ => rejected.push(Rejected {
                        record: (*record).clone(),
                        reason: format!("OpenSearch rejected the document ({status}): {}", error_text(&result)),
                    }),
                }
            }
        }
        Ok(again)
    }
}

#[async_trait]
impl Index for OpenSearchIndex {
    async fn write(&self, records: Vec<ImageLabeled>) -> Result<WriteStats, IndexError> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        for record in records {
            let id = document_id(&record.bucket, &record.key);
            match position.get(&id) {
                Some(&i) => pending[i].records.push(record),
                None => {
                    position.insert(id.clone(), pending.len());
                    pending.push(Pending { id, records: vec![record] });
                }
            }
        }
        let mut stats: HashMap<String, WriteStats> = HashMap::new();
        let mut rejected = Vec::new();
        let mut todo: Vec<&Pending> = pending.iter().collect();
        let mut delay = Duration::from_millis(100);
        let (mut conflicts, mut throttled) = (0, 0);
        for round in 1..=WRITE_ROUNDS {
            let again = self.round(&todo, &mut stats, &mut rejected).await?;
            if again.is_empty() {
                let mut total = WriteStats { rejected, conflicts, throttled, ..WriteStats::default() };
                for counted in stats.values() {
                    total.applied += counted.applied;
                    total.stale += counted.stale;
                    total.stale_relabel += counted.stale_relabel;
                }
                return Ok(total);
            }
            let conflicted = again.iter().filter(|(_, status)| *status == 409).count() as u64;
            let (conflicts_now, throttled_now) = (conflicted, again.len() as u64 - conflicted);
            conflicts += conflicts_now;
            throttled += throttled_now;
            warn!(
                conflicts = conflicts_now,
                throttled = throttled_now,
                round,
                "OpenSearch did not write some documents (conflicts are read and decided again, throttled ones \
                 wait); writing those again"
            );
            todo = again.iter().filter_map(|(id, _)| position.get(id).map(|&i| &pending[i])).collect();
            // Backoff with full jitter, so competing writers spread out.
            tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64())).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        Err(IndexError::Failed {
            reason: format!("OpenSearch kept refusing {} documents (conflicts or throttling)", todo.len()),
            retryable: true,
        })
    }

    async fn search(&self, request: SearchRequest) -> Result<SearchResponse, IndexError> {
        if let Some(like) = &request.like {
            return self.nearest(&request, like).await;
        }
        let body = query::search_body(&request);
        let (status, response) = self.json(Method::Post, &format!("/{}/_search", self.config.index), &body).await?;
        if status == 404 && response.pointer("/error/type").and_then(Value::as_str) == Some("index_not_found_exception")
        {
            return Ok(SearchResponse::default()); // nothing indexed yet, as with an absent tantivy index
        }
        if status >= 300 {
            return Err(status_error("_search", status, &response));
        }
        let total = response.pointer("/hits/total/value").and_then(Value::as_u64).unwrap_or(0);
        let mut hits = Vec::new();
        let mut next = None;
        for (n, hit) in response.pointer("/hits/hits").and_then(Value::as_array).into_iter().flatten().enumerate() {
            if n == request.limit {
                break;
            }
            let id = hit["_id"].as_str().unwrap_or_default().to_string();
            let doc: Doc = serde_json::from_value(hit["_source"].clone()).map_err(|e| IndexError::Failed {
                reason: format!("document {id} does not have bucketlens's shape: {e}"),
                retryable: false,
            })?;
            if n + 1 == request.limit {
                next = Some(query::cursor(request.sort, hit, &doc.key, &doc.bucket));
            }
            hits.push(doc.hit(id));
        }
        let more = response.pointer("/hits/hits").and_then(Value::as_array).is_some_and(|h| h.len() > request.limit);
        let counts = |name: &str| -> Vec<(String, u64)> {
            response
                .pointer(&format!("/aggregations/{name}/buckets"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| Some((b["key"].as_str()?.to_string(), b["doc_count"].as_u64()?)))
                .collect()
        };
        Ok(SearchResponse {
            total,
            hits,
            label_counts: counts("labels"),
            buckets: counts("buckets"),
            models: counts("models"),
            photo_facets: if request.facets.is_some() {
                crate::photo::Facet::ALL.iter().map(|f| counts(f.field())).collect()
            } else {
                Vec::new()
            },
            next: if more { next } else { None },
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Hit>, IndexError> {
        let id = document_id(bucket, key);
        self.get_by_id(id).await
    }
}

impl OpenSearchIndex {
    /// The photos most like `like` among those `request` matches: by the k-NN
    /// plugin's `knn` query, or, on a server that has not got it, by reading the
    /// matching documents and comparing each here (exact; said once, as a warning).
    /// Either way ranked by [`crate::similar`]'s cosine, as on the embedded index.
    async fn nearest(&self, request: &SearchRequest, like: &Like) -> Result<SearchResponse, IndexError> {
        let Some(body) = query::knn_body(request, like) else {
            return Err(IndexError::Failed {
                reason: format!(
                    "OpenSearch compares embeddings of {} components; this one has {}",
                    crate::similar::KNN_FIELDS.map(|(length, _)| length.to_string()).join(", "),
                    like.embedding.vector.len()
                ),
                retryable: false,
            });
        };
        let (status, response) = self.json(Method::Post, &format!("/{}/_search", self.config.index), &body).await?;
        if status == 404 && response.pointer("/error/type").and_then(Value::as_str) == Some("index_not_found_exception")
        {
            return Ok(SearchResponse::default());
        }
        let reason = response.pointer("/error/reason").and_then(Value::as_str).unwrap_or_default();
        if status == 400 && reason.contains("knn") {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                warn!(
                    reason,
                    "this OpenSearch cannot run the k-NN plugin's knn query: similar photos are found by reading \
                     every matching document's vector (exact, slower)"
                );
            });
            return self.nearest_by_reading(request, like).await;
        }
        if status >= 300 {
            return Err(status_error("_search (knn)", status, &response));
        }
        let total = response.pointer("/hits/total/value").and_then(Value::as_u64).unwrap_or(0);
        let mut hits = Vec::new();
        for hit in response.pointer("/hits/hits").and_then(Value::as_array).into_iter().flatten() {
            let id = hit["_id"].as_str().unwrap_or_default().to_string();
            let doc: Doc = serde_json::from_value(hit["_source"].clone()).map_err(|e| IndexError::Failed {
                reason: format!("document {id} does not have bucketlens's shape: {e}"),
                retryable: false,
            })?;
            let mut hit = doc.hit(id);
            hit.similarity = Some(crate::similar::similarity(&like.embedding, hit.embedding.as_ref()));
            hits.push(hit);
        }
        crate::similar::rank(&mut hits);
        Ok(SearchResponse { total, hits, ..SearchResponse::default() })
    }

    /// [`Self::nearest`] without the k-NN plugin: every matching document, a page of
    /// 1,000 at a time, compared here; the best `limit` kept.
    async fn nearest_by_reading(&self, request: &SearchRequest, like: &Like) -> Result<SearchResponse, IndexError> {
        let mut page = request.clone();
        page.like = None;
        page.sort = crate::Sort::Name;
        page.limit = 1000;
        page.after = None;
        page.label_counts = None;
        page.facets = None;
        page.with_embeddings = true;
        let (mut best, mut total) = (Vec::new(), 0);
        loop {
            let found = self.search(page.clone()).await?;
            for mut hit in found.hits {
                let same_model = hit.embedding.as_ref().is_some_and(|e| e.model == like.embedding.model);
                let asked = like.except.as_ref().is_some_and(|(b, k)| (b, k) == (&hit.bucket, &hit.key));
                if !same_model || asked {
                    continue;
                }
                total += 1;
                hit.similarity = Some(crate::similar::similarity(&like.embedding, hit.embedding.as_ref()));
                best.push(hit);
            }
            crate::similar::rank(&mut best);
            best.truncate(request.limit);
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        Ok(SearchResponse { total, hits: best, ..SearchResponse::default() })
    }

    async fn get_by_id(&self, id: String) -> Result<Option<Hit>, IndexError> {
        let path = format!("/{}/_doc/{id}", self.config.index);
        let (status, response) = self.call(Method::Get, &path, None, false).await?;
        if status == 404 {
            return Ok(None); // no such document, or no index yet
        }
        if status >= 300 {
            return Err(status_error("get", status, &response));
        }
        let doc: Doc = serde_json::from_value(response["_source"].clone()).map_err(|e| IndexError::Failed {
            reason: format!("document {id} does not have bucketlens's shape: {e}"),
            retryable: false,
        })?;
        Ok(Some(doc.hit(id)))
    }
}

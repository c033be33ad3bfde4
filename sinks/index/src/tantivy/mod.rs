//! The embedded index: tantivy in `<data-dir>/index`.
//!
//! One process writes (tantivy's writer lock); any number search. Writes are
//! version-checked against the stored document (see [`crate::version`]) and
//! committed before `write` returns, so the caller may then commit its offsets: a
//! crash between the two re-applies the batch, which changes nothing.

mod fields;
mod nearest;
pub mod page;
mod query;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bucketlens_schemas::{document_id, ImageLabeled};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::agg_result::{AggregationResult, BucketResult};
use tantivy::aggregation::AggregationCollector;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Index as TantivyRaw, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError, Term};

use crate::index::{Hit, Index, IndexError, Like, SearchRequest, SearchResponse, WriteStats};
use crate::similar;
use crate::version::{judge, Decision, Version};
use fields::Fields;
use page::Page;

/// The tantivy index.
#[derive(Clone)]
pub struct TantivyIndex {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    fields: Fields,
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter>>,
    /// The segments' embedding sketches, once a similar-photos search has read them.
    sketches: Arc<nearest::Sketches>,
}

fn failed(e: TantivyError) -> IndexError {
    let retryable = matches!(e, TantivyError::IoError(_) | TantivyError::LockFailure(..));
    IndexError::Failed { reason: e.to_string(), retryable }
}

impl TantivyIndex {
    /// Opens (creating if needed) the index at `path` for writing; takes the writer lock.
    pub fn open_writer(path: &Path, writer_memory: usize) -> Result<Self, IndexError> {
        let (index, fields) = open_or_create(path)?;
        let writer = index.writer_with_num_threads(1, writer_memory).map_err(|e| match e {
            TantivyError::LockFailure(..) => IndexError::Locked { location: path.display().to_string() },
            other => IndexError::Open { location: path.display().to_string(), reason: other.to_string() },
        })?;
        Self::finish(path, index, fields, Some(writer))
    }

    /// Opens the index at `path` for searching only (no lock); an absent index is empty.
    pub fn open_reader(path: &Path) -> Result<Self, IndexError> {
        let (index, fields) = open_or_create(path)?;
        Self::finish(path, index, fields, None)
    }

    fn finish(path: &Path, index: TantivyRaw, fields: Fields, writer: Option<IndexWriter>) -> Result<Self, IndexError> {
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e: TantivyError| {
                IndexError::Open { location: path.display().to_string(), reason: e.to_string() }
            })?;
        let inner = Inner {
            path: path.to_path_buf(),
            fields,
            reader,
            writer: writer.map(Mutex::new),
            sketches: Arc::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, IndexError> + Send + 'static,
    ) -> Result<T, IndexError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| IndexError::Failed { reason: format!("index task failed: {e}"), retryable: false })?
    }
}

/// The threads a similar-photos search scans segments on: one per core (at most 8),
/// made once per process.
fn executor() -> Result<&'static tantivy::Executor, IndexError> {
    static EXECUTOR: std::sync::OnceLock<Result<tantivy::Executor, String>> = std::sync::OnceLock::new();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 8);
    EXECUTOR
        .get_or_init(|| tantivy::Executor::multi_thread(threads, "bucketlens-similar-").map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| IndexError::Failed { reason: format!("cannot start the search threads: {e}"), retryable: true })
}

fn open_or_create(path: &Path) -> Result<(TantivyRaw, Fields), IndexError> {
    let open_err = |reason: String| IndexError::Open { location: path.display().to_string(), reason };
    std::fs::create_dir_all(path).map_err(|e| open_err(e.to_string()))?;
    let fields = Fields::new();
    let dir = MmapDirectory::open(path).map_err(|e| open_err(e.to_string()))?;
    let index = TantivyRaw::open_or_create(dir, fields.schema.clone()).map_err(|e| match e {
        TantivyError::SchemaError(_) => open_err(format!(
            "it was made by another bucketlens version (its fields differ from this version's); the index is \
             rebuilt from the label log without labeling anything: delete {} and run \
             `bucketlens replay --group bucketlens-index --from earliest --until-end`",
            path.display()
        )),
        other => open_err(other.to_string()),
    })?;
    Ok((index, fields))
}

impl Inner {
    fn stored_version(&self, searcher: &tantivy::Searcher, id: &str) -> Result<Option<Version>, IndexError> {
        let query = TermQuery::new(self.fields.id_term(id), IndexRecordOption::Basic);
        let top = searcher.search(&query, &TopDocs::with_limit(1)).map_err(failed)?;
        let Some((_, address)) = top.first() else { return Ok(None) };
        let doc: TantivyDocument = searcher.doc(*address).map_err(failed)?;
        Ok(Some(self.fields.version(&doc)))
    }

    fn write(&self, records: Vec<ImageLabeled>) -> Result<WriteStats, IndexError> {
        let Some(writer) = &self.writer else { return Err(IndexError::ReadOnly) };
        let mut writer = writer
            .lock()
            .map_err(|_| IndexError::Failed { reason: "index writer poisoned".into(), retryable: false })?;
        let searcher = self.reader.searcher();
        // Versions written earlier in this batch, not yet visible to the searcher.
        let mut pending: HashMap<String, Version> = HashMap::new();
        let mut stats = WriteStats::default();
        for record in records {
            let id = document_id(&record.bucket, &record.key);
            let incoming = Version::of(&record);
            let current = match pending.get(&id) {
                Some(v) => Some(v.clone()),
                None => self.stored_version(&searcher, &id)?,
            };
            let decision = match &current {
                Some(current) => judge(&record, &incoming, current),
                None => Decision::Apply,
            };
            if stats.count(decision) != Decision::Apply {
                continue;
            }
            // Replace the document; a removal leaves a tombstone (see DocState::Removed).
            writer.delete_term(self.fields.id_term(&id));
            writer.add_document(self.fields.document(&record)).map_err(failed)?;
            pending.insert(id, incoming);
        }
        writer.commit().map_err(failed)?;
        drop(writer);
        self.reader.reload().map_err(failed)?;
        Ok(stats)
    }

    fn search(&self, request: &SearchRequest) -> Result<SearchResponse, IndexError> {
        // Another process may be writing: see its latest commit.
        self.reader.reload().map_err(failed)?;
        let searcher = self.reader.searcher();
        if let Some(like) = &request.like {
            return self.nearest(&searcher, request, like);
        }
        let query = query::build(&self.fields, request);
        // One more than asked for tells whether there is a next page.
        let page = Page { after: request.after.clone(), want: request.limit.saturating_add(1), sort: request.sort };
        let (total, ranked) = searcher.search(&query, &(Count, page)).map_err(failed)?;
        let mut hits = Vec::new();
        for candidate in ranked.iter().take(request.limit) {
            let doc: TantivyDocument = searcher.doc(candidate.address).map_err(failed)?;
            hits.push(self.fields.hit(&doc));
        }
        let next = match (ranked.len() > request.limit, request.limit.checked_sub(1)) {
            (true, Some(last)) => ranked.get(last).map(page::Ranked::cursor),
            _ => None,
        };
        let mut response = SearchResponse { total: total as u64, hits, next, ..SearchResponse::default() };
        if let Some(n) = request.label_counts {
            response.label_counts = self.terms(&searcher, &*query, "label", n)?;
        }
        if let Some(n) = request.facets {
            response.buckets = self.terms(&searcher, &*query, "bucket", n)?;
            response.models = self.terms(&searcher, &*query, "model_version", n)?;
            for facet in crate::photo::Facet::ALL {
                response.photo_facets.push(self.terms(&searcher, &*query, facet.field(), n)?);
            }
        }
        Ok(response)
    }

    /// The photos most like `like` among those `request` matches: the best
    /// [`similar::CANDIDATES`] by sketch, ranked by their whole embeddings (see [`crate::similar`]).
    fn nearest(
        &self,
        searcher: &tantivy::Searcher,
        request: &SearchRequest,
        like: &Like,
    ) -> Result<SearchResponse, IndexError> {
        let Some(sketch) = similar::sketch(&like.embedding.vector) else {
            return Err(IndexError::Failed {
                reason: format!(
                    "photos are compared by embeddings of 1 to {} components; this one has {}",
                    similar::DIMENSIONS,
                    like.embedding.vector.len()
                ),
                retryable: false,
            });
        };
        let model = Term::from_field_text(self.fields.embedding_model, &like.embedding.model);
        let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> = vec![
            (Occur::Must, query::build(&self.fields, request)),
            (Occur::Must, Box::new(TermQuery::new(model, IndexRecordOption::Basic))),
        ];
        if let Some((bucket, key)) = &like.except {
            let id = self.fields.id_term(&document_id(bucket, key));
            clauses.push((Occur::MustNot, Box::new(TermQuery::new(id, IndexRecordOption::Basic))));
        }
        let query = BooleanQuery::new(clauses);
        self.sketches.keep_only(searcher.segment_readers());
        let first = nearest::Nearest {
            query: sketch,
            want: request.limit.max(similar::CANDIDATES),
            sketches: Arc::clone(&self.sketches),
        };
        // The scan is CPU work per segment: the segments go to the cores at once.
        let scoring = tantivy::query::EnableScoring::disabled_from_searcher(searcher);
        let (total, candidates) =
            searcher.search_with_executor(&query, &(Count, first), executor()?, scoring).map_err(failed)?;
        // The second stage: the candidates' whole embeddings, from their stored documents.
        let mut hits = Vec::with_capacity(candidates.len());
        for (_, address) in candidates {
            let doc: TantivyDocument = searcher.doc(address).map_err(failed)?;
            let mut hit = self.fields.hit(&doc);
            hit.similarity = Some(similar::similarity(&like.embedding, hit.embedding.as_ref()));
            hits.push(hit);
        }
        similar::rank(&mut hits);
        hits.truncate(request.limit);
        Ok(SearchResponse { total: total as u64, hits, ..SearchResponse::default() })
    }

    fn get(&self, bucket: &str, key: &str) -> Result<Option<Hit>, IndexError> {
        self.reader.reload().map_err(failed)?;
        let searcher = self.reader.searcher();
        let query = TermQuery::new(self.fields.id_term(&document_id(bucket, key)), IndexRecordOption::Basic);
        let top = searcher.search(&query, &TopDocs::with_limit(1)).map_err(failed)?;
        let Some((_, address)) = top.first() else { return Ok(None) };
        let doc: TantivyDocument = searcher.doc(*address).map_err(failed)?;
        Ok(Some(self.fields.hit(&doc)))
    }

    /// The `n` most frequent values of a FAST text field over the matching documents.
    fn terms(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn tantivy::query::Query,
        field: &str,
        n: usize,
    ) -> Result<Vec<(String, u64)>, IndexError> {
        // Every value is counted (a model has a few thousand labels at most), so that
        // ties at the cut are broken by name, the order OpenSearch's terms aggregation gives.
        let request: Aggregations = serde_json::from_value(serde_json::json!({
            "terms": { "terms": { "field": field, "size": 65_536, "segment_size": 65_536 } }
        }))
        .map_err(|e| IndexError::Failed { reason: e.to_string(), retryable: false })?;
        let collector = AggregationCollector::from_aggs(request, Default::default());
        let results = searcher.search(query, &collector).map_err(failed)?;
        let mut counts = Vec::new();
        if let Some(AggregationResult::BucketResult(BucketResult::Terms { buckets, .. })) = results.0.get("terms") {
            for bucket in buckets {
                counts.push((bucket.key.to_string(), bucket.doc_count));
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(n.max(1));
        Ok(counts)
    }
}

#[async_trait]
impl Index for TantivyIndex {
    async fn write(&self, records: Vec<ImageLabeled>) -> Result<WriteStats, IndexError> {
        self.blocking(move |inner| inner.write(records)).await
    }

    async fn search(&self, request: SearchRequest) -> Result<SearchResponse, IndexError> {
        self.blocking(move |inner| inner.search(&request)).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Hit>, IndexError> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.blocking(move |inner| inner.get(&bucket, &key)).await
    }
}

#[cfg(test)]
mod tests;

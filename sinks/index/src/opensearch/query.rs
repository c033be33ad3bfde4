//! A search request as an OpenSearch query: the same meaning as the embedded index's.
//!
//! A label term matches a nested label whose lowercased name is the term and whose
//! confidence is at least the minimum; it scores by 5%-wide confidence bands, so
//! results come highest-confidence first (then by key).

use serde_json::{json, Value};

use crate::index::{Cursor, Like, SearchRequest, Sort};
use crate::query::Expr;

const BAND: f32 = 5.0;

/// Hits one search returns at most on OpenSearch.
pub const MAX_RESULT_WINDOW: usize = 10_000;

fn label_query(label: &str, min_confidence: f32) -> Value {
    let mut bands = Vec::new();
    let mut low = (min_confidence / BAND).floor() * BAND;
    while low <= 100.0 {
        let from = low.max(min_confidence);
        bands.push(json!({ "constant_score": {
            "filter": { "range": { "labels.confidence": { "gte": from, "lt": low + BAND } } },
            "boost": 1.0 + low / BAND
        } }));
        low += BAND;
    }
    json!({ "nested": {
        "path": "labels",
        "score_mode": "max",
        "query": { "bool": {
            "filter": [
                // By name or by alias ("human" finds Person).
                { "bool": { "should": [
                    { "term": { "labels.name_lc": label } },
                    { "term": { "labels.aliases_lc": label } }
                ], "minimum_should_match": 1 } },
                { "range": { "labels.confidence": { "gte": min_confidence } } }
            ],
            "should": bands
        } }
    } })
}

/// A Lucene regular expression matching `text` literally: every character but a
/// letter or digit is escaped (Lucene takes `\` before any character as that character).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn expr_query(expr: &Expr, min_confidence: f32) -> Value {
    match expr {
        Expr::All => json!({ "match_all": {} }),
        Expr::Label(name) => label_query(name, min_confidence),
        Expr::AnyLabel => json!({ "constant_score": { "filter": { "nested": {
            "path": "labels",
            "query": { "range": { "labels.confidence": { "gte": min_confidence } } }
        } } } }),
        // The file name, the key after its last `/`, holds the text in any case.
        Expr::Name(text) => json!({ "constant_score": { "filter": { "regexp": { "key": {
            "value": format!("(.*/)?[^/]*{}[^/]*", literal(text)),
            "case_insensitive": true
        } } } } }),
        Expr::Meta(field, value) => {
            let (whole, words) = crate::photo::wanted(value);
            let words: Vec<Value> = words.iter().map(|w| json!({ "term": { field.name(): w } })).collect();
            json!({ "constant_score": { "filter": { "bool": {
                "should": [{ "term": { field.name(): whole } }, { "bool": { "must": words } }],
                "minimum_should_match": 1
            } } } })
        }
        Expr::Text(value) => {
            let wanted: Vec<Value> =
                crate::photo::text_wanted(value).iter().map(|w| json!({ "term": { "text_terms": w } })).collect();
            json!({ "constant_score": { "filter": { "bool": { "must": wanted } } } })
        }
        Expr::Taken(from, to) => json!({ "constant_score": { "filter": { "range": { "taken": {
            "gte": from, "lt": to, "format": "epoch_millis"
        } } } } }),
        Expr::And(items) => {
            let (mut must, mut must_not) = (Vec::new(), Vec::new());
            for item in items {
                match item {
                    Expr::Not(inner) => must_not.push(expr_query(inner, min_confidence)),
                    other => must.push(expr_query(other, min_confidence)),
                }
            }
            if must.is_empty() {
                must.push(json!({ "match_all": {} }));
            }
            json!({ "bool": { "must": must, "must_not": must_not } })
        }
        Expr::Or(items) => json!({ "bool": {
            "should": items.iter().map(|e| expr_query(e, min_confidence)).collect::<Vec<_>>(),
            "minimum_should_match": 1
        } }),
        Expr::Not(inner) => json!({ "bool": {
            "must": [{ "match_all": {} }],
            "must_not": [expr_query(inner, min_confidence)]
        } }),
    }
}

fn range(field: &str, (low, high): (Option<i64>, Option<i64>)) -> Option<Value> {
    if low.is_none() && high.is_none() {
        return None;
    }
    let mut bounds = serde_json::Map::new();
    if let Some(low) = low {
        bounds.insert("gte".into(), json!(low));
    }
    if let Some(high) = high {
        bounds.insert("lte".into(), json!(high));
    }
    Some(json!({ "range": { field: bounds } }))
}

fn sort(sort: Sort) -> Value {
    let by_date = |order: &str| json!({ "last_modified": { "order": order, "missing": 0 } });
    let by_taken = json!({ "taken": { "order": "desc", "missing": 0 } });
    match sort {
        Sort::Relevance => json!(["_score", { "key": "asc" }, { "bucket": "asc" }]),
        Sort::Name => json!([{ "key": "asc" }, { "bucket": "asc" }]),
        Sort::Newest => json!([by_date("desc"), { "key": "asc" }, { "bucket": "asc" }]),
        Sort::Oldest => json!([by_date("asc"), { "key": "asc" }, { "bucket": "asc" }]),
        Sort::Taken => json!([by_taken, { "key": "asc" }, { "bucket": "asc" }]),
    }
}

/// The cursor after `hit`, from its sort values.
pub fn cursor(sort: Sort, hit: &Value, key: &str, bucket: &str) -> Cursor {
    let first = hit.pointer("/sort/0");
    let (score, modified) = match sort {
        Sort::Relevance => (first.and_then(Value::as_f64).unwrap_or(0.0) as f32, None),
        Sort::Name => (0.0, None),
        Sort::Newest | Sort::Oldest | Sort::Taken => (0.0, Some(first.and_then(Value::as_i64).unwrap_or(0))),
    };
    Cursor { score, modified, key: key.to_string(), bucket: bucket.to_string() }
}

/// The `_search` body for a request.
pub fn search_body(request: &SearchRequest) -> Value {
    search_body_of(request, matching(request))
}

/// The `_search` body of a similar-photos search: the `k` nearest by the k-NN
/// plugin's `knn` query, the request's query and filters inside it as its filter
/// (the Lucene engine filters while it searches, so all `k` match), with only
/// vectors of the same model, and the photo asked about left out.
pub fn knn_body(request: &SearchRequest, like: &Like) -> Option<Value> {
    let mut filter = matching(request);
    if let Some(must) = filter.pointer_mut("/bool/filter").and_then(Value::as_array_mut) {
        must.push(json!({ "term": { "embedding_model": like.embedding.model } }));
    }
    if let Some((bucket, key)) = &like.except {
        filter["bool"]["must_not"] = json!([{ "ids": { "values": [bucketlens_schemas::document_id(bucket, key)] } }]);
    }
    let k = request.limit.clamp(1, MAX_RESULT_WINDOW);
    Some(json!({
        "size": k,
        "track_total_hits": true,
        "query": crate::similar::knn_query(&like.embedding, k, filter)?
    }))
}

/// The fields that hold vectors, left out of an answer unless asked for.
fn embedding_fields() -> Vec<&'static str> {
    crate::similar::KNN_FIELDS.iter().map(|(_, field)| *field).collect()
}

/// What a request matches, as one `bool` query.
fn matching(request: &SearchRequest) -> Value {
    let mut filter = vec![json!({ "term": { "state": request.state.as_str() } })];
    if let Some(bucket) = &request.bucket {
        filter.push(json!({ "term": { "bucket": bucket } }));
    }
    if let Some(prefix) = request.prefix.as_deref().filter(|p| !p.is_empty()) {
        filter.push(json!({ "prefix": { "key": prefix } }));
    }
    if let Some(version) = &request.model_version {
        filter.push(json!({ "term": { "model.version": version } }));
    }
    filter.extend(range("last_modified", request.modified));
    filter.extend(range("size", request.size));
    json!({ "bool": { "must": [expr_query(&request.expression(), request.min_confidence)], "filter": filter } })
}

fn search_body_of(request: &SearchRequest, query: Value) -> Value {
    let mut body = json!({
        "_source": { "excludes": if request.with_embeddings { json!([]) } else { json!(embedding_fields()) } },
        "query": query,
        // One more than asked for tells whether there is a next page. OpenSearch refuses
        // a result window past index.max_result_window (10,000 by default); deeper pages
        // come with `search_after`, which has no such limit.
        "size": request.limit.saturating_add(1).min(MAX_RESULT_WINDOW),
        "track_total_hits": true,
        // The embedded index's order too (see tantivy::page): a total order.
        "sort": sort(request.sort)
    });
    if let Some(after) = &request.after {
        body["search_after"] = match request.sort {
            Sort::Relevance => json!([after.score, after.key, after.bucket]),
            Sort::Name => json!([after.key, after.bucket]),
            Sort::Newest | Sort::Oldest | Sort::Taken => json!([after.modified.unwrap_or(0), after.key, after.bucket]),
        };
    }
    let mut aggs = serde_json::Map::new();
    if let Some(n) = request.label_counts {
        aggs.insert("labels".into(), json!({ "terms": { "field": "label", "size": n.max(1) } }));
    }
    if let Some(n) = request.facets {
        aggs.insert("buckets".into(), json!({ "terms": { "field": "bucket", "size": n.max(1) } }));
        aggs.insert("models".into(), json!({ "terms": { "field": "model.version", "size": n.max(1) } }));
        for facet in crate::photo::Facet::ALL {
            aggs.insert(facet.field().into(), json!({ "terms": { "field": facet.field(), "size": n.max(1) } }));
        }
    }
    if !aggs.is_empty() {
        body["aggs"] = Value::Object(aggs);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Expr;

    #[test]
    fn not_inside_and_becomes_must_not() {
        let expr = Expr::And(vec![Expr::Label("cat".into()), Expr::Not(Box::new(Expr::Label("dog".into())))]);
        let q = expr_query(&expr, 50.0);
        assert_eq!(q["bool"]["must"].as_array().unwrap().len(), 1);
        let by_name = &q["bool"]["must_not"][0]["nested"]["query"]["bool"]["filter"][0]["bool"]["should"];
        assert_eq!(by_name[0]["term"]["labels.name_lc"], "dog");
        assert_eq!(by_name[1]["term"]["labels.aliases_lc"], "dog");
    }

    /// The k-NN plugin's `knn` query as its documentation gives it: the vector, `k`,
    /// and the request's filters inside as `filter` (so the Lucene engine filters
    /// while it searches), with only the same model's vectors and the photo itself
    /// left out; and the mapping's `knn_vector` of the embedding's dimension.
    #[test]
    fn a_similar_photos_search_is_a_filtered_knn_query_on_a_knn_vector() {
        let like = Like {
            embedding: bucketlens_schemas::ImageEmbedding {
                model: "efficientnet-lite0@x/int8".into(),
                vector: vec![3; crate::similar::DIMENSIONS],
            },
            except: Some(("photos".into(), "cat.jpg".into())),
        };
        let mut request = SearchRequest::new(Expr::Label("cat".into()));
        request.limit = 7;
        request.bucket = Some("photos".into());
        let body = knn_body(&request, &like).unwrap();
        assert_eq!(body["size"], 7);
        let knn = &body["query"]["knn"]["embedding"];
        assert_eq!(knn["k"], 7);
        assert_eq!(knn["vector"].as_array().unwrap().len(), crate::similar::DIMENSIONS);
        assert_eq!(knn["vector"][0], 3.0);
        let filter = &knn["filter"]["bool"];
        let terms = filter["filter"].to_string();
        assert!(terms.contains(r#"{"term":{"embedding_model":"efficientnet-lite0@x/int8"}}"#), "{terms}");
        assert!(terms.contains(r#"{"term":{"bucket":"photos"}}"#) && terms.contains(r#"{"term":{"state":"labeled"}}"#));
        assert_eq!(filter["must_not"][0]["ids"]["values"][0], bucketlens_schemas::document_id("photos", "cat.jpg"));
        assert!(filter["must"][0]["nested"].is_object(), "the label query is inside the filter too");
        let short = Like {
            embedding: bucketlens_schemas::ImageEmbedding { model: "m".into(), vector: vec![1; 10] },
            except: None,
        };
        assert!(knn_body(&request, &short).is_none(), "another length has no knn_vector to search");
        let template = super::super::mapping::template("photos");
        assert_eq!(template["template"]["settings"]["index"]["knn"], true);
        let field = &template["template"]["mappings"]["properties"]["embedding"];
        assert_eq!(field["type"], "knn_vector");
        assert_eq!(field["dimension"], crate::similar::DIMENSIONS);
        assert_eq!(field["method"]["space_type"], "cosinesimil");
        // A plain search leaves the vectors out of OpenSearch's answer.
        assert_eq!(search_body(&request)["_source"]["excludes"][0], "embedding");
    }

    #[test]
    fn bands_start_at_the_minimum_confidence() {
        let q = label_query("cat", 62.0);
        let bands = q["nested"]["query"]["bool"]["should"].as_array().unwrap();
        assert_eq!(bands[0]["constant_score"]["filter"]["range"]["labels.confidence"]["gte"], 62.0);
        assert_eq!(bands.last().unwrap()["constant_score"]["filter"]["range"]["labels.confidence"]["lt"], 105.0);
    }
}

use bucketlens_schemas::{LabelError, LabelKind};

use super::*;

#[path = "../../tests/support/records.rs"]
mod records;
use crate::index::DocState;
use crate::query::Expr;
use records::{label, record};

fn open() -> (tempfile::TempDir, TantivyIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyIndex::open_writer(&dir.path().join("index"), 20_000_000).unwrap();
    (dir, index)
}

async fn keys(index: &TantivyIndex, query: &str, min: f32) -> Vec<String> {
    let mut request = SearchRequest::new(Expr::parse(query).unwrap());
    request.min_confidence = min;
    let mut keys: Vec<String> = index.search(request).await.unwrap().hits.into_iter().map(|h| h.key).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn upserts_replace_and_writing_twice_keeps_one_document() {
    let (_dir, index) = open();
    let batch = vec![record("a.jpg", 0x01, LabelKind::Labeled, vec![label("Cat", 90.0)])];
    index.write(batch.clone()).await.unwrap();
    index.write(batch).await.unwrap();
    let all = index.search(SearchRequest::new(Expr::All)).await.unwrap();
    assert_eq!(all.total, 1);
    index.write(vec![record("a.jpg", 0x02, LabelKind::Labeled, vec![label("Dog", 80.0)])]).await.unwrap();
    assert_eq!(keys(&index, "cat", 0.0).await, Vec::<String>::new());
    assert_eq!(keys(&index, "dog", 0.0).await, vec!["a.jpg"]);
}

#[tokio::test]
async fn a_label_at_100_percent_is_found_by_its_name() {
    // The top band once ended where it began (1000 tenths, excluded): a label the
    // model was sure of (Rekognition's 99.96, a zero-shot label's 100) was found by
    // no search for it.
    let (_dir, index) = open();
    let batch = vec![
        record("sure.jpg", 0x01, LabelKind::Labeled, vec![label("Red", 100.0)]),
        record("almost.jpg", 0x01, LabelKind::Labeled, vec![label("Red", 99.96)]),
        record("less.jpg", 0x01, LabelKind::Labeled, vec![label("Red", 97.0)]),
    ];
    index.write(batch).await.unwrap();
    assert_eq!(keys(&index, "red", 0.0).await, vec!["almost.jpg", "less.jpg", "sure.jpg"]);
    assert_eq!(keys(&index, "red", 100.0).await, vec!["almost.jpg", "sure.jpg"]);
    let mut request = SearchRequest::new(Expr::parse("red").unwrap());
    request.sort = crate::Sort::Relevance;
    let first = index.search(request).await.unwrap().hits.into_iter().map(|h| h.key).collect::<Vec<_>>();
    assert_eq!(first[2], "less.jpg", "surest first: {first:?}");
}

#[tokio::test]
async fn stale_records_and_late_creates_after_a_delete_are_ignored() {
    let (_dir, index) = open();
    index.write(vec![record("a.jpg", 0x05, LabelKind::Labeled, vec![label("Cat", 90.0)])]).await.unwrap();
    let stats = index.write(vec![record("a.jpg", 0x04, LabelKind::Labeled, vec![label("Dog", 90.0)])]).await.unwrap();
    assert_eq!(
        stats,
        WriteStats { applied: 0, stale: 1, stale_relabel: 0, rejected: vec![], conflicts: 0, throttled: 0 }
    );
    assert_eq!(keys(&index, "cat", 0.0).await, vec!["a.jpg"]);

    index.write(vec![record("a.jpg", 0x06, LabelKind::Removed, vec![])]).await.unwrap();
    assert_eq!(index.search(SearchRequest::new(Expr::All)).await.unwrap().total, 0, "deleted");
    let stats = index.write(vec![record("a.jpg", 0x05, LabelKind::Labeled, vec![label("Cat", 90.0)])]).await.unwrap();
    assert_eq!(stats.stale, 1, "a late create does not resurrect a deleted object");
    assert_eq!(index.search(SearchRequest::new(Expr::All)).await.unwrap().total, 0);
    index.write(vec![record("a.jpg", 0x07, LabelKind::Labeled, vec![label("Cat", 90.0)])]).await.unwrap();
    assert_eq!(keys(&index, "cat", 0.0).await, vec!["a.jpg"], "a newer create does");
}

#[tokio::test]
async fn ordering_holds_within_one_batch_too() {
    let (_dir, index) = open();
    let batch = vec![
        record("a.jpg", 0x02, LabelKind::Labeled, vec![label("Cat", 90.0)]),
        record("a.jpg", 0x03, LabelKind::Removed, vec![]),
        record("a.jpg", 0x01, LabelKind::Labeled, vec![label("Dog", 90.0)]),
    ];
    let stats = index.write(batch).await.unwrap();
    assert_eq!(
        stats,
        WriteStats { applied: 2, stale: 1, stale_relabel: 0, rejected: vec![], conflicts: 0, throttled: 0 }
    );
    assert_eq!(index.search(SearchRequest::new(Expr::All)).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_new_model_relabels_the_same_object_version() {
    let (_dir, index) = open();
    index.write(vec![record("a.jpg", 0x01, LabelKind::Labeled, vec![label("Cat", 60.0)])]).await.unwrap();
    let mut relabeled = record("a.jpg", 0x01, LabelKind::Labeled, vec![label("Cat", 95.0)]);
    relabeled.model.version = "2".into();
    index.write(vec![relabeled]).await.unwrap();
    let hits = index.search(SearchRequest::new(Expr::All)).await.unwrap().hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].model.version, "2");
    assert_eq!(hits[0].labels[0].confidence, 95.0);
}

#[tokio::test]
async fn boolean_queries_confidence_filters_and_ranking() {
    let (_dir, index) = open();
    index
        .write(vec![
            record("dog-grass.jpg", 0x1, LabelKind::Labeled, vec![label("Dog", 80.0), label("Grass", 70.0)]),
            record("dog-weak-grass.jpg", 0x1, LabelKind::Labeled, vec![label("Dog", 90.0), label("Grass", 40.0)]),
            record("cat.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 97.0), label("Tiger Cat", 60.0)]),
            record("golden.jpg", 0x1, LabelKind::Labeled, vec![label("Golden Retriever", 66.0), label("Dog", 99.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(keys(&index, "dog AND grass", 0.0).await, vec!["dog-grass.jpg", "dog-weak-grass.jpg"]);
    assert_eq!(keys(&index, "dog AND grass", 60.0).await, vec!["dog-grass.jpg"], "each label must pass the bar");
    assert_eq!(keys(&index, "DOG -grass", 0.0).await, vec!["golden.jpg"]);
    assert_eq!(keys(&index, "cat OR \"golden retriever\"", 0.0).await, vec!["cat.jpg", "golden.jpg"]);
    assert_eq!(keys(&index, "cat", 0.0).await, vec!["cat.jpg"], "whole labels: Tiger Cat is not Cat");
    assert_eq!(keys(&index, "cat", 97.0).await, vec!["cat.jpg"], "the bar is inclusive");
    assert_eq!(keys(&index, "cat", 97.1).await, Vec::<String>::new());

    let ranked: Vec<String> = index
        .search(SearchRequest::new(Expr::parse("dog").unwrap()))
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.key)
        .collect();
    assert_eq!(ranked, vec!["golden.jpg", "dog-weak-grass.jpg", "dog-grass.jpg"], "highest confidence first");

    let mut counts = SearchRequest::new(Expr::All);
    counts.label_counts = Some(10);
    counts.limit = 0;
    let response = index.search(counts).await.unwrap();
    assert_eq!(response.total, 4);
    assert!(response.hits.is_empty());
    assert_eq!(response.label_counts[0], ("Dog".to_string(), 3));
    assert!(response.label_counts.contains(&("Grass".to_string(), 2)));
}

#[tokio::test]
async fn bucket_prefix_and_failed_filters() {
    let (_dir, index) = open();
    let mut other = record("2024/b.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 90.0)]);
    other.bucket = "other".into();
    let mut failed = record("2024/bad.jpg", 0x1, LabelKind::Failed, vec![]);
    failed.error = Some(LabelError { code: "CorruptImage".into(), message: "truncated".into(), retryable: false });
    index
        .write(vec![
            record("2024/a.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 90.0)]),
            record("2025/a.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 90.0)]),
            other,
            failed,
        ])
        .await
        .unwrap();
    let mut request = SearchRequest::new(Expr::parse("cat").unwrap());
    request.bucket = Some("photos".into());
    request.prefix = Some("2024/".into());
    let hits = index.search(request).await.unwrap().hits;
    assert_eq!(
        hits.iter().map(|h| (h.bucket.as_str(), h.key.as_str())).collect::<Vec<_>>(),
        vec![("photos", "2024/a.jpg")]
    );

    let mut failed_only = SearchRequest::new(Expr::All);
    failed_only.state = DocState::Failed;
    let hits = index.search(failed_only).await.unwrap().hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, "2024/bad.jpg");
    assert_eq!(hits[0].error.as_ref().unwrap().code, "CorruptImage");
}

#[tokio::test]
async fn a_second_writer_is_refused_but_readers_see_commits() {
    let (dir, index) = open();
    let err = TantivyIndex::open_writer(&dir.path().join("index"), 20_000_000).err().unwrap();
    assert!(matches!(err, IndexError::Locked { .. }), "{err}");
    let reader = TantivyIndex::open_reader(&dir.path().join("index")).unwrap();
    index.write(vec![record("a.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 90.0)])]).await.unwrap();
    assert_eq!(reader.search(SearchRequest::new(Expr::All)).await.unwrap().total, 1);
    assert!(matches!(reader.write(vec![]).await, Err(IndexError::ReadOnly)));
}

#[tokio::test]
async fn size_modified_and_model_version_filters() {
    let (_dir, index) = open();
    let mut small = record("small.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 90.0)]);
    small.size = Some(10);
    small.last_modified = Some(1_000);
    let mut big = record("big.jpg", 0x1, LabelKind::Labeled, vec![label("Cat", 90.0)]);
    big.size = Some(5_000_000);
    big.last_modified = Some(9_000);
    big.model.version = "2".into();
    index.write(vec![small, big]).await.unwrap();
    let run = |f: &dyn Fn(&mut SearchRequest)| {
        let mut request = SearchRequest::new(Expr::parse("cat").unwrap());
        f(&mut request);
        let index = index.clone();
        async move { index.search(request).await.unwrap().hits.into_iter().map(|h| h.key).collect::<Vec<_>>() }
    };
    assert_eq!(run(&|r| r.size = (Some(1_000), None)).await, vec!["big.jpg"]);
    assert_eq!(run(&|r| r.size = (None, Some(10))).await, vec!["small.jpg"], "bounds are inclusive");
    assert_eq!(run(&|r| r.modified = (Some(2_000), Some(9_000))).await, vec!["big.jpg"]);
    assert_eq!(run(&|r| r.model_version = Some("1".into())).await, vec!["small.jpg"]);
}

/// Every page after the cursor of the one before, until `next` is `None`.
async fn all_pages(index: &TantivyIndex, query: &str, limit: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut request = SearchRequest::new(Expr::parse(query).unwrap());
        request.limit = limit;
        request.after = after;
        let page = index.search(request).await.unwrap();
        assert!(page.hits.len() <= limit);
        seen.extend(page.hits.into_iter().map(|h| (h.bucket, h.key)));
        match page.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn cursor_paging_returns_every_hit_once_in_score_then_key_order_across_segments() {
    let (_dir, index) = open();
    // Several commits (segments); the same key in two buckets; scores in bands.
    for batch in 0..5 {
        let mut records = Vec::new();
        for i in 0..300 {
            let n = batch * 300 + i;
            let mut r =
                record(&format!("k{:05}.jpg", n % 1000), 0x01, LabelKind::Labeled, vec![label("Cat", (n % 97) as f32)]);
            r.bucket = if n >= 1000 { "other".into() } else { "photos".into() };
            records.push(r);
        }
        index.write(records).await.unwrap();
    }
    for (query, limit) in [("cat", 7), ("*", 100), ("cat", 1500)] {
        let seen = all_pages(&index, query, limit).await;
        assert_eq!(seen.len(), 1500, "{query} by {limit}");
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 1500, "{query} by {limit}: no hit twice");
        let mut one = SearchRequest::new(Expr::parse(query).unwrap());
        one.limit = 1500;
        let whole: Vec<_> = index.search(one).await.unwrap().hits.into_iter().map(|h| (h.bucket, h.key)).collect();
        assert_eq!(seen, whole, "{query} by {limit}: pages follow the one-page order");
    }
    // Highest confidence first, then key, then bucket.
    let mut first = SearchRequest::new(Expr::parse("cat").unwrap());
    first.limit = 3;
    let hits = index.search(first).await.unwrap().hits;
    let confidences: Vec<f32> = hits.iter().map(|h| h.labels[0].confidence).collect();
    assert!(confidences.iter().all(|c| *c >= 95.0), "{confidences:?}");
    assert!(hits[0].key <= hits[1].key);
}

#[tokio::test]
async fn a_page_goes_on_from_its_cursor_while_documents_before_it_change() {
    let (_dir, index) = open();
    let records: Vec<_> =
        (0..50).map(|i| record(&format!("k{i:02}.jpg"), 0x01, LabelKind::Labeled, vec![label("Cat", 90.0)])).collect();
    index.write(records).await.unwrap();
    let mut request = SearchRequest::new(Expr::parse("cat").unwrap());
    request.limit = 20;
    let page = index.search(request.clone()).await.unwrap();
    // Documents already seen are deleted: the next page still starts at k20.
    let gone: Vec<_> = (0..10).map(|i| record(&format!("k{i:02}.jpg"), 0x02, LabelKind::Removed, vec![])).collect();
    index.write(gone).await.unwrap();
    request.after = page.next;
    let next = index.search(request).await.unwrap();
    assert_eq!(next.hits.first().map(|h| h.key.as_str()), Some("k20.jpg"));
    assert_eq!(next.total, 40);
}

#[tokio::test]
async fn facets_count_buckets_and_models_over_all_matches_and_get_finds_tombstones() {
    let (_dir, index) = open();
    let mut a = record("a.jpg", 0x01, LabelKind::Labeled, vec![label("Cat", 90.0)]);
    a.model.version = "2".into();
    let b = record("b.jpg", 0x01, LabelKind::Labeled, vec![label("Cat", 80.0)]);
    let mut c = record("c.jpg", 0x01, LabelKind::Labeled, vec![label("Dog", 80.0)]);
    c.bucket = "other".into();
    index.write(vec![a, b, c]).await.unwrap();
    let mut request = SearchRequest::new(Expr::parse("cat").unwrap());
    request.limit = 1;
    request.facets = Some(10);
    let response = index.search(request).await.unwrap();
    assert_eq!(response.buckets, vec![("photos".to_string(), 2)]);
    assert_eq!(response.models, vec![("1".to_string(), 1), ("2".to_string(), 1)]);
    assert!(index.get("photos", "a.jpg").await.unwrap().is_some());
    assert!(index.get("photos", "nope.jpg").await.unwrap().is_none());
    index.write(vec![record("a.jpg", 0x02, LabelKind::Removed, vec![])]).await.unwrap();
    assert_eq!(index.get("photos", "a.jpg").await.unwrap().map(|h| h.state), Some(DocState::Removed));
}

#[test]
fn an_index_of_another_version_says_how_to_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    std::fs::create_dir_all(&path).unwrap();
    let mut older = tantivy::schema::Schema::builder();
    older.add_text_field("id", tantivy::schema::STRING | tantivy::schema::STORED);
    TantivyRaw::create_in_dir(&path, older.build()).unwrap();
    let err = TantivyIndex::open_reader(&path).err().unwrap().to_string();
    assert!(
        err.contains("another bucketlens version")
            && err.contains("bucketlens replay --group bucketlens-index --from earliest --until-end"),
        "{err}"
    );
}

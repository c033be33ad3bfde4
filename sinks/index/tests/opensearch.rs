//! The OpenSearch index against a real OpenSearch-API server (osmem-server, started
//! here on 127.0.0.1; `scripts/test` installs it and sets OSMEM_SERVER): ordering by
//! labeling time, tombstones, replays, concurrent writers, and refused documents.
#![allow(clippy::unwrap_used)]

#[path = "../../../tests/common/opensearch.rs"]
mod osmem_server;
#[path = "support/records.rs"]
mod records;

use bucketlens_index::{Expr, Index, OpenSearchConfig, OpenSearchIndex, SearchRequest};
use bucketlens_schemas::{ImageLabeled, LabelKind};
use osmem_server::Osmem;
use records::{label, record};

fn config(server: &Osmem, index: &str) -> OpenSearchConfig {
    OpenSearchConfig { url: server.url.clone(), index: index.into(), ..OpenSearchConfig::default() }
}

async fn keys(index: &OpenSearchIndex, query: &str) -> Vec<String> {
    let request = SearchRequest::new(Expr::parse(query).unwrap());
    let mut keys: Vec<String> = index.search(request).await.unwrap().hits.into_iter().map(|h| h.key).collect();
    keys.sort();
    keys
}

// Labeling times (ms): the newest labeling of an object wins.
const OLD: i64 = 1_764_000_000_000;
const NEW: i64 = OLD + 1;
const NEWER: i64 = OLD + 2;

#[tokio::test]
async fn stale_records_never_win_and_a_delete_is_not_undone_by_a_late_create() {
    let server = Osmem::start();
    let index = OpenSearchIndex::open(&config(&server, "photos-order")).await.unwrap();
    let cat = || vec![label("Cat", 90.0)];
    let stats = index.write(vec![record("a.jpg", NEW, LabelKind::Labeled, cat())]).await.unwrap();
    assert_eq!((stats.applied, stats.stale), (1, 0));
    // An older event for the same key changes nothing.
    let stats = index.write(vec![record("a.jpg", OLD, LabelKind::Labeled, vec![label("Dog", 99.0)])]).await.unwrap();
    assert_eq!((stats.applied, stats.stale), (0, 1));
    assert_eq!(keys(&index, "cat").await, ["a.jpg"]);
    assert!(keys(&index, "dog").await.is_empty());

    // Deleted by a newer labeling: gone, and the late create (older) stays out.
    index.write(vec![record("a.jpg", NEWER, LabelKind::Removed, vec![])]).await.unwrap();
    let stats = index.write(vec![record("a.jpg", NEW, LabelKind::Labeled, cat())]).await.unwrap();
    assert_eq!(stats.stale, 1, "a late create resurrected a deleted object");
    assert!(keys(&index, "*").await.is_empty());

    // Within one batch, the newest state wins whatever the order.
    let batch = vec![
        record("b.jpg", NEWER, LabelKind::Labeled, vec![label("Dog", 80.0)]),
        record("b.jpg", OLD, LabelKind::Labeled, cat()),
    ];
    let stats = index.write(batch).await.unwrap();
    assert_eq!((stats.applied, stats.stale), (1, 1));
    assert_eq!(keys(&index, "dog").await, ["b.jpg"]);
}

#[tokio::test]
async fn a_replay_changes_nothing_and_relabelling_with_a_newer_model_overwrites() {
    let server = Osmem::start();
    let index = OpenSearchIndex::open(&config(&server, "photos-replay")).await.unwrap();
    let batch: Vec<ImageLabeled> =
        (0..30).map(|i| record(&format!("k{i:02}.jpg"), NEW, LabelKind::Labeled, vec![label("Cat", 90.0)])).collect();
    index.write(batch.clone()).await.unwrap();
    let before = index.search(SearchRequest { limit: 100, ..SearchRequest::new(Expr::All) }).await.unwrap();
    for _ in 0..2 {
        let stats = index.write(batch.clone()).await.unwrap();
        assert_eq!((stats.applied, stats.stale, stats.rejected.len()), (30, 0, 0));
    }
    let after = index.search(SearchRequest { limit: 100, ..SearchRequest::new(Expr::All) }).await.unwrap();
    assert_eq!(before, after);

    let mut relabelled = record("k00.jpg", NEW, LabelKind::Labeled, vec![label("Tabby", 70.0)]);
    relabelled.model.version = "2".into();
    index.write(vec![relabelled]).await.unwrap();
    assert_eq!(keys(&index, "tabby").await, ["k00.jpg"]);
    let mut request = SearchRequest::new(Expr::All);
    request.model_version = Some("2".into());
    assert_eq!(index.search(request).await.unwrap().total, 1);
}

#[tokio::test]
async fn concurrent_writers_of_one_key_end_with_the_newest_state() {
    let server = Osmem::start();
    let a = OpenSearchIndex::open(&config(&server, "photos-race")).await.unwrap();
    let b = OpenSearchIndex::open(&config(&server, "photos-race")).await.unwrap();
    for round in 0..10u32 {
        let key = format!("race-{round}.jpg");
        let old = record(&key, OLD, LabelKind::Labeled, vec![label("Cat", 90.0)]);
        let new = record(&key, NEW, LabelKind::Labeled, vec![label("Dog", 90.0)]);
        let (x, y) = tokio::join!(a.write(vec![old]), b.write(vec![new]));
        x.unwrap();
        y.unwrap();
    }
    let dogs = keys(&a, "dog").await;
    assert_eq!(dogs.len(), 10, "an older write overwrote a newer one: {dogs:?}");
}

#[tokio::test]
async fn a_document_the_index_refuses_is_returned_with_the_reason() {
    let server = Osmem::start();
    // An index someone made by hand, where `key` is a number: every document is refused.
    let client = opensearch::OpenSearch::new(opensearch::http::transport::Transport::single_node(&server.url).unwrap());
    let created = client
        .indices()
        .create(opensearch::indices::IndicesCreateParts::Index("handmade"))
        .body(serde_json::json!({ "mappings": { "properties": { "key": { "type": "long" } } } }))
        .send()
        .await
        .unwrap();
    assert!(created.status_code().is_success());
    let index = OpenSearchIndex::open(&config(&server, "handmade")).await.unwrap();
    let stats = index.write(vec![record("cat.jpg", NEW, LabelKind::Labeled, vec![label("Cat", 90.0)])]).await.unwrap();
    assert_eq!(stats.rejected.len(), 1);
    assert_eq!(stats.rejected[0].record.key, "cat.jpg");
    assert!(stats.rejected[0].reason.contains("mapper_parsing_exception"), "{}", stats.rejected[0].reason);
}

#[tokio::test]
async fn searching_before_anything_is_indexed_finds_nothing_and_creates_nothing() {
    let server = Osmem::start();
    let index = OpenSearchIndex::open_for_search(&config(&server, "not-yet")).await.unwrap();
    let found = index.search(SearchRequest::new(Expr::All)).await.unwrap();
    assert_eq!(found.total, 0);
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = OpenSearchConfig { url: format!("http://127.0.0.1:{port}"), ..OpenSearchConfig::default() };
    let err = OpenSearchIndex::open(&config).await.err().unwrap().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("unreachable"), "{err}");
}

#[tokio::test]
async fn an_index_made_before_photo_metadata_gets_its_fields_and_finds_photos_by_them() {
    let server = Osmem::start();
    // An index as an older bucketlens made it: its alias, no metadata fields.
    let older = serde_json::json!({ "mappings": { "dynamic": false, "properties": {
        "bucket": { "type": "keyword" }, "key": { "type": "keyword" }, "state": { "type": "keyword" }
    } } });
    assert_eq!(server.request("PUT", "/old-v1", &older.to_string()), 200);
    assert_eq!(server.request("PUT", "/old-v1/_alias/old", "{}"), 200);
    let index = OpenSearchIndex::open(&config(&server, "old")).await.unwrap();
    let mut tagged = record("tagged.jpg", NEW, LabelKind::Labeled, vec![label("Cat", 90.0)]);
    tagged.metadata = Some(bucketlens_schemas::PhotoMetadata {
        taken_at: Some("2019-07-14T09:30:00".into()),
        keywords: vec!["invoice".into()],
        ..Default::default()
    });
    index.write(vec![tagged]).await.unwrap();
    assert_eq!(keys(&index, "year:2019").await, ["tagged.jpg"]);
    assert_eq!(keys(&index, "keyword:invoice").await, ["tagged.jpg"]);
}

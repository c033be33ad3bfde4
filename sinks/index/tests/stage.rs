//! The index sink in process, against the embedded log and a real tantivy index.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bucketlens_index::stage::{run, Stage};
use bucketlens_index::{Config, Expr, Index, Metrics, SearchRequest, TantivyIndex};
use bucketlens_runtime::log::{EmbeddedLog, Log, OutRecord, Until};
use bucketlens_schemas::{
    record_key, topics, AvroRecord, ChangeKind, ChangeSource, ImageLabeled, Label, LabelKind, ModelInfo, ObjectChanged,
};
use tokio_util::sync::CancellationToken;

fn labeled(key: &str, seq: &str) -> OutRecord {
    let change = ObjectChanged {
        bucket: "photos".into(),
        key: key.into(),
        version_id: None,
        kind: ChangeKind::Upsert,
        size: Some(1),
        etag: None,
        last_modified: None,
        sequencer: Some(seq.into()),
        source: ChangeSource::Listing,
        observed_at: 0,
        storage_class: None,
        access_tier: None,
    };
    let mut record =
        ImageLabeled::for_change(&change, LabelKind::Labeled, ModelInfo { name: "m".into(), version: "1".into() }, 1);
    record.labels = vec![Label {
        name: "Cat".into(),
        confidence: 90.0,
        parents: vec![],
        categories: vec![],
        aliases: vec![],
        instances: vec![],
    }];
    OutRecord::new(record_key("photos", key), record.to_bytes().unwrap())
}

#[tokio::test]
async fn an_undecodable_label_record_goes_to_the_dlq_and_the_partition_keeps_moving() {
    let tmp = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&tmp.path().join("log.sqlite")).unwrap();
    for topic in [topics::IMAGES_LABELED, topics::IMAGES_LABELED_DLQ] {
        log.ensure_topic(topic, 1, false).await.unwrap();
    }
    let mut truncated = labeled("b.jpg", "02").value;
    truncated.truncate(truncated.len() - 3);
    log.produce(
        topics::IMAGES_LABELED,
        vec![labeled("a.jpg", "01"), OutRecord::new("photos/b.jpg", truncated), labeled("c.jpg", "03")],
    )
    .await
    .unwrap();

    let index = Arc::new(TantivyIndex::open_writer(&tmp.path().join("index"), 20_000_000).unwrap());
    let metrics = Arc::new(Metrics::default());
    let config = Config::default();
    let stage = Stage {
        config: config.clone(),
        log: Arc::new(log.clone()) as Arc<dyn Log>,
        index: index.clone(),
        metrics: metrics.clone(),
    };
    run(stage, Until::drain(), CancellationToken::new()).await.unwrap();

    let hits = index.search(SearchRequest::new(Expr::parse("cat").unwrap())).await.unwrap();
    let mut keys: Vec<String> = hits.hits.into_iter().map(|h| h.key).collect();
    keys.sort();
    assert_eq!(keys, vec!["a.jpg", "c.jpg"]);
    assert_eq!(metrics.undecodable.get(), 1);
    assert_eq!(log.committed(&config.group, topics::IMAGES_LABELED).await.unwrap()[0].committed, Some(3));
    let mut dlq = log.subscribe("inspect", topics::IMAGES_LABELED_DLQ).await.unwrap();
    let dead = dlq.poll(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, "photos/b.jpg");
    assert_eq!(dead[0].header("source.topic"), Some(topics::IMAGES_LABELED));
    assert!(dead[0].header("error.message").unwrap().contains("truncated"), "{:?}", dead[0].headers);
}

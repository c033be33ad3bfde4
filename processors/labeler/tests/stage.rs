//! The labeler stage in process, against the embedded log, a real folder and the
//! real model: shutdown with records queued behind a busy key, then a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bucketlens_labeler::local::{LocalLabeler, LocalOptions};
use bucketlens_labeler::stage::{run, Stage};
use bucketlens_labeler::{Config, Metrics};
use bucketlens_runtime::bucket::LocalDir;
use bucketlens_runtime::log::{EmbeddedLog, Log, OutRecord, Until};
use bucketlens_schemas::{record_key, topics, AvroRecord, ChangeKind, ChangeSource, ObjectChanged};
use tokio_util::sync::CancellationToken;

fn change(key: &str, seq: u32) -> OutRecord {
    let c = ObjectChanged {
        bucket: "photos".into(),
        key: key.into(),
        version_id: None,
        kind: ChangeKind::Upsert,
        size: None,
        etag: None,
        last_modified: None,
        sequencer: Some(format!("{seq:08X}")),
        source: ChangeSource::Listing,
        observed_at: 0,
        storage_class: None,
        access_tier: None,
    };
    OutRecord::new(record_key("photos", key), c.to_bytes().unwrap())
}

/// A temp dir with `photos/NAME` (a copy of an example) and an embedded log with the topics.
async fn world(example: &str, name: &str) -> (tempfile::TempDir, std::path::PathBuf, EmbeddedLog) {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos").join(example);
    std::fs::copy(&source, photos.join(name)).unwrap();
    let log = EmbeddedLog::open(&tmp.path().join("log.sqlite")).unwrap();
    for (topic, _) in topics::ALL {
        log.ensure_topic(topic, 1, false).await.unwrap();
    }
    (tmp, photos, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_records_queued_behind_a_key_commits_only_finished_work() {
    let (_tmp, photos, log) = world("chelsea.png", "cat.png").await;
    log.produce(topics::OBJECTS_CHANGED, (0..40).map(|i| change("cat.png", i)).collect()).await.unwrap();

    let settings = Config::default().validate().unwrap();
    let options = LocalOptions {
        threads: 2,
        min_confidence: 50.0,
        max_labels: 20,
        max_pixels: 100_000_000,
        faces: Some(60.0),
        detector: None,
        ..LocalOptions::default()
    };
    let labeler = Arc::new(LocalLabeler::load(None, &options).unwrap());
    let source = Arc::new(LocalDir::new(&photos).unwrap());
    let stage = |metrics: Arc<Metrics>| Stage {
        settings: settings.clone(),
        log: Arc::new(log.clone()) as Arc<dyn Log>,
        source: source.clone(),
        labeler: labeler.clone(),
        metrics,
        ledger: bucketlens_labeler::Ledger::open(None).unwrap(),
        isolation: None,
    };

    // One key: the 40 records run one after another. Stop after a few.
    let shutdown = CancellationToken::new();
    let first = Arc::new(Metrics::default());
    let running = tokio::spawn(run(stage(first.clone()), Until::Shutdown, shutdown.clone()));
    while first.labeled.get() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();
    let done_first = first.labeled.get();
    assert!(done_first < 40, "stopped early: {done_first}");
    let committed = log.committed(&settings.group, topics::OBJECTS_CHANGED).await.unwrap()[0].committed.unwrap();
    assert!(committed as u64 <= done_first, "committed {committed} past the {done_first} finished records");

    // A restart finishes the rest; nothing is skipped.
    let second = Arc::new(Metrics::default());
    run(stage(second.clone()), Until::drain(), CancellationToken::new()).await.unwrap();
    assert_eq!(log.committed(&settings.group, topics::OBJECTS_CHANGED).await.unwrap()[0].committed, Some(40));
    assert!(done_first + second.labeled.get() >= 40, "every record labeled at least once");
    let labeled = log.watermarks(topics::IMAGES_LABELED).await.unwrap()[0].high;
    assert!(labeled >= 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_goes_to_the_dlq_and_the_rest_are_labeled() {
    let (_tmp, photos, log) = world("coffee.png", "coffee.png").await;
    let garbage = OutRecord::new("photos/garbage", b"{\"not\": \"avro\"}".to_vec());
    log.produce(topics::OBJECTS_CHANGED, vec![change("coffee.png", 1), garbage, change("coffee.png", 2)])
        .await
        .unwrap();

    let settings = Config::default().validate().unwrap();
    let options = LocalOptions {
        threads: 1,
        min_confidence: 50.0,
        max_labels: 20,
        max_pixels: 100_000_000,
        faces: Some(60.0),
        detector: None,
        ..LocalOptions::default()
    };
    let metrics = Arc::new(Metrics::default());
    let stage = Stage {
        settings: settings.clone(),
        log: Arc::new(log.clone()) as Arc<dyn Log>,
        source: Arc::new(LocalDir::new(&photos).unwrap()),
        labeler: Arc::new(LocalLabeler::load(None, &options).unwrap()),
        metrics: metrics.clone(),
        ledger: bucketlens_labeler::Ledger::open(None).unwrap(),
        isolation: None,
    };
    run(stage, Until::drain(), CancellationToken::new()).await.unwrap();

    assert_eq!(metrics.labeled.get(), 2, "the records after the bad one are labeled");
    assert_eq!(metrics.undecodable.get(), 1);
    assert_eq!(log.committed(&settings.group, topics::OBJECTS_CHANGED).await.unwrap()[0].committed, Some(3));
    let mut dlq = log.subscribe("inspect", topics::OBJECTS_CHANGED_DLQ).await.unwrap();
    let dead = dlq.poll(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, "photos/garbage");
    assert_eq!(dead[0].value, b"{\"not\": \"avro\"}".to_vec(), "kept as it was");
    assert_eq!(dead[0].header("error.code"), Some("UndecodableRecord"));
    assert!(dead[0].header("error.message").unwrap().contains("single-object marker"), "{:?}", dead[0].headers);
    assert_eq!(dead[0].header("source.offset"), Some("1"));
}

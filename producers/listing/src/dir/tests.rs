#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bucketlens_runtime::log::{EmbeddedLog, Log, Output};

use bucketlens_schemas::AvroRecord;

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest-does-not-matter-here";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    log: EmbeddedLog,
    producer: Arc<DirProducer>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(root.join("2024/trip")).unwrap();
    std::fs::create_dir_all(root.join(".thumbnails")).unwrap();
    std::fs::write(root.join("cat.jpg"), b"\xFF\xD8\xFFjpeg").unwrap();
    std::fs::write(root.join("2024/trip/beach day é.PNG"), PNG).unwrap();
    std::fs::write(root.join("2024/no-extension"), PNG).unwrap();
    std::fs::write(root.join("2024/notes.txt"), b"not an image").unwrap();
    std::fs::write(root.join(".thumbnails/t.jpg"), b"\xFF\xD8\xFF").unwrap();
    let log = EmbeddedLog::open(&tmp.path().join("data/log.sqlite")).unwrap();
    let state = State::open(Some(&tmp.path().join("data/listing.sqlite"))).unwrap();
    let source = LocalDir::new(&root).unwrap();
    let producer = Arc::new(
        DirProducer::new(source, Output::Log(Arc::new(log.clone())), state, Config::default(), vec![]).unwrap(),
    );
    Fixture { _tmp: tmp, root, log, producer }
}

async fn changes(log: &EmbeddedLog, group: &str) -> Vec<ObjectChanged> {
    let mut consumer = log.subscribe(group, topics::OBJECTS_CHANGED).await.unwrap();
    let records = consumer.poll(1000, Duration::from_millis(50)).await.unwrap();
    let offsets: Vec<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset + 1)).collect();
    consumer.commit(&offsets).await.unwrap();
    let mut out: Vec<ObjectChanged> = records.iter().map(|r| ObjectChanged::from_bytes(&r.value).unwrap()).collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[tokio::test]
async fn first_sync_produces_one_upsert_per_image() {
    let f = fixture();
    f.log.ensure_topic(topics::OBJECTS_CHANGED, 2, true).await.unwrap();
    let stats = f.producer.sync_all().await.unwrap();
    assert_eq!(
        stats,
        ProduceStats { images: 3, upserts: 3, deletes: 0, skipped: 0, unreadable: 0, invalid_names: 0, links: 0 }
    );
    let got = changes(&f.log, "g").await;
    let keys: Vec<&str> = got.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, vec!["2024/no-extension", "2024/trip/beach day é.PNG", "cat.jpg"]);
    for c in &got {
        assert_eq!(c.bucket, "photos");
        assert_eq!(c.kind, ChangeKind::Upsert);
        assert_eq!(c.source, ChangeSource::Listing);
        assert!(c.size.unwrap() > 0 && c.etag.is_some() && c.last_modified.is_some() && c.sequencer.is_some());
    }
}

#[tokio::test]
async fn a_second_sync_of_an_unchanged_folder_produces_nothing() {
    let f = fixture();
    f.log.ensure_topic(topics::OBJECTS_CHANGED, 2, true).await.unwrap();
    f.producer.sync_all().await.unwrap();
    changes(&f.log, "g").await;
    let stats = f.producer.sync_all().await.unwrap();
    assert_eq!(
        stats,
        ProduceStats { images: 3, upserts: 0, deletes: 0, skipped: 0, unreadable: 0, invalid_names: 0, links: 0 }
    );
    assert!(changes(&f.log, "g").await.is_empty());
}

#[tokio::test]
async fn symbolic_links_to_images_or_folders_are_counted_not_followed() {
    let f = fixture();
    f.log.ensure_topic(topics::OBJECTS_CHANGED, 2, true).await.unwrap();
    let elsewhere = f._tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("dog.jpg"), b"\xFF\xD8\xFFjpeg").unwrap();
    std::os::unix::fs::symlink(elsewhere.join("dog.jpg"), f.root.join("dog.jpg")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, f.root.join("album")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("gone.png"), f.root.join("gone.png")).unwrap();
    // Named like no image and pointing at none: nothing a user would miss.
    std::os::unix::fs::symlink(f.root.join("2024/notes.txt"), f.root.join("readme")).unwrap();
    let stats = f.producer.sync_all().await.unwrap();
    assert_eq!(
        stats,
        ProduceStats { images: 3, upserts: 3, deletes: 0, skipped: 0, unreadable: 0, invalid_names: 0, links: 3 }
    );
    let keys: Vec<String> = changes(&f.log, "g").await.into_iter().map(|c| c.key).collect();
    assert_eq!(keys, vec!["2024/no-extension", "2024/trip/beach day é.PNG", "cat.jpg"], "no link is followed");
}

#[tokio::test]
async fn changed_files_are_upserted_and_vanished_ones_deleted() {
    let f = fixture();
    f.log.ensure_topic(topics::OBJECTS_CHANGED, 2, true).await.unwrap();
    f.producer.sync_all().await.unwrap();
    let first = changes(&f.log, "g").await;

    std::fs::write(f.root.join("cat.jpg"), b"\xFF\xD8\xFFa longer replacement").unwrap();
    std::fs::remove_dir_all(f.root.join("2024/trip")).unwrap();
    let stats = f.producer.sync_all().await.unwrap();
    assert_eq!((stats.upserts, stats.deletes), (1, 1));
    let got = changes(&f.log, "g").await;
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].key.as_str(), got[0].kind), ("2024/trip/beach day é.PNG", ChangeKind::Delete));
    assert_eq!((got[1].key.as_str(), got[1].kind), ("cat.jpg", ChangeKind::Upsert));
    let old = first.iter().find(|c| c.key == "cat.jpg").unwrap();
    assert!(
        bucketlens_schemas::compare_sequencers(got[1].sequencer.as_ref().unwrap(), old.sequencer.as_ref().unwrap())
            .is_gt(),
        "a later change carries a later sequencer"
    );
}

#[tokio::test]
async fn a_targeted_sync_covers_only_its_path() {
    let f = fixture();
    f.log.ensure_topic(topics::OBJECTS_CHANGED, 2, true).await.unwrap();
    f.producer.sync_all().await.unwrap();
    changes(&f.log, "g").await;

    std::fs::remove_file(f.root.join("cat.jpg")).unwrap();
    std::fs::write(f.root.join("2024/new.png"), PNG).unwrap();
    // Only the folder is synced: the cat's deletion is not seen yet.
    let stats = f.producer.sync(Some(f.root.join("2024"))).await.unwrap();
    assert_eq!((stats.upserts, stats.deletes), (1, 0));
    let stats = f.producer.sync(Some(f.root.join("cat.jpg"))).await.unwrap();
    assert_eq!((stats.upserts, stats.deletes), (0, 1));
    let got = changes(&f.log, "g").await;
    assert_eq!(
        got.iter().map(|c| (c.key.as_str(), c.kind)).collect::<Vec<_>>(),
        vec![("2024/new.png", ChangeKind::Upsert), ("cat.jpg", ChangeKind::Delete)]
    );
}

use super::*;
use bucketlens_runtime::log::OutRecord;
use bucketlens_schemas::{ChangeKind, ChangeSource};

fn change(etag: &str) -> ObjectChanged {
    ObjectChanged {
        bucket: "photos".into(),
        key: "a.jpg".into(),
        version_id: None,
        kind: ChangeKind::Upsert,
        size: Some(1),
        etag: Some(etag.into()),
        last_modified: None,
        sequencer: None,
        source: ChangeSource::Inventory,
        observed_at: 0,
        storage_class: None,
        access_tier: None,
    }
}

fn outcome(etag: &str, kind: LabelKind, labeler: &str, at: i64) -> ImageLabeled {
    let model = ModelInfo { name: "m".into(), version: "1".into() };
    let mut outcome = ImageLabeled::for_change(&change(etag), kind, model, at);
    outcome.labeler = Some(labeler.into());
    outcome
}

/// Runs the follower until it has caught up with the topic, then stops it;
/// returns how many records it read.
async fn follow_once(log: &dyn Log, ledger: &Ledger, group: &str) -> u64 {
    let (caught_up, mut said) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let run = follow_until_shutdown(log, ledger, group, &caught_up, &shutdown);
    tokio::pin!(run);
    tokio::select! {
        ended = &mut run => panic!("the follower ended before catching up: {ended:?}"),
        _ = said.wait_for(|c| *c) => {}
    }
    shutdown.cancel();
    run.await.unwrap()
}

#[tokio::test]
async fn a_restarted_follower_reads_only_what_was_labeled_since_and_a_new_ledger_all() {
    let dir = tempfile::tempdir().unwrap();
    let log = bucketlens_runtime::log::EmbeddedLog::open(&dir.path().join("log.sqlite")).unwrap();
    let topic = topics::IMAGES_LABELED;
    log.ensure_topic(topic, 3, true).await.unwrap();
    let produce = |keys: &'static [&'static str]| {
        let log = log.clone();
        async move {
            let records = keys
                .iter()
                .map(|&key| {
                    let mut labeled = outcome("e1", LabelKind::Labeled, "f1", 10);
                    labeled.key = key.into();
                    OutRecord::new(record_key(&labeled.bucket, key), labeled.to_bytes().unwrap())
                })
                .collect();
            log.produce(topic, records).await.unwrap();
        }
    };
    let ledger = Ledger::open(Some(&dir.path().join("ledger.sqlite"))).unwrap();
    assert_eq!(follow_once(&log, &ledger, "g.ledger.1").await, 0, "an empty topic");

    produce(&["a.jpg", "b.jpg", "c.jpg"]).await;
    assert_eq!(follow_once(&log, &ledger, "g.ledger.2").await, 3);
    assert_eq!(ledger.totals().unwrap().objects, 3);

    // The next process has a group of its own, and the ledger says where to start.
    produce(&["d.jpg"]).await;
    assert_eq!(follow_once(&log, &ledger, "g.ledger.3").await, 1, "only what was labeled since");
    assert_eq!(ledger.totals().unwrap().objects, 4);
    assert_eq!(follow_once(&log, &ledger, "g.ledger.4").await, 0, "nothing new");

    let mut d = change("e1");
    d.key = "d.jpg".into();
    let fresh = Ledger::open(None).unwrap();
    assert_eq!(follow_once(&log, &fresh, "g.ledger.5").await, 4, "a new ledger reads the whole topic");
    assert!(fresh.unchanged(&d, "f1").unwrap());
}

#[test]
fn only_the_same_version_labeled_by_the_same_labeler_is_unchanged() {
    let ledger = Ledger::open(None).unwrap();
    assert!(!ledger.unchanged(&change("e1"), "f1").unwrap(), "nothing known yet");
    ledger.record(&[outcome("e1", LabelKind::Labeled, "f1", 10)]).unwrap();
    assert!(ledger.unchanged(&change("e1"), "f1").unwrap());
    assert!(ledger.unchanged(&change("\"e1\""), "f1").unwrap(), "a quoted etag is the same etag");
    assert!(!ledger.unchanged(&change("e2"), "f1").unwrap(), "another version");
    assert!(!ledger.unchanged(&change("e1"), "f2").unwrap(), "another labeler");
    let mut unknown = change("e1");
    unknown.etag = None;
    assert!(!ledger.unchanged(&unknown, "f1").unwrap(), "no version named: never skipped");

    // A later failure or removal of that version is never skipped.
    ledger.record(&[outcome("e1", LabelKind::Failed, "f1", 11)]).unwrap();
    assert!(!ledger.unchanged(&change("e1"), "f1").unwrap());
    ledger.record(&[outcome("e1", LabelKind::Labeled, "f1", 12), outcome("e1", LabelKind::Removed, "f1", 13)]).unwrap();
    assert!(!ledger.unchanged(&change("e1"), "f1").unwrap());

    // An older outcome read late does not replace a newer one.
    ledger.record(&[outcome("e1", LabelKind::Labeled, "f1", 5)]).unwrap();
    assert!(!ledger.unchanged(&change("e1"), "f1").unwrap());
    assert_eq!(
        ledger.totals().unwrap(),
        Totals { labeled: 0, objects: 1, skipped: 0, archived: 0, budget_spent: None }
    );
    ledger.count_skips(3).unwrap();
    ledger.count_skips(2).unwrap();
    assert_eq!(ledger.totals().unwrap().skipped, 5);
}

#[test]
fn attempts_that_never_ended_are_counted_per_version_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.sqlite");
    let ledger = Ledger::open(Some(&path)).unwrap();
    assert_eq!(ledger.crashes(&change("e1")).unwrap(), 0);
    ledger.begin(&change("e1")).unwrap();
    ledger.begin(&change("e1")).unwrap();
    drop(ledger); // as a process that died twice mid-label
    let ledger = Ledger::open(Some(&path)).unwrap();
    assert_eq!(ledger.crashes(&change("e1")).unwrap(), 2);
    assert_eq!(ledger.crashes(&change("e2")).unwrap(), 0, "another version has its own count");
    ledger.begin(&change("e2")).unwrap();
    assert_eq!(ledger.crashes(&change("e2")).unwrap(), 1, "a new version starts over");
    assert_eq!(ledger.crashes(&change("e1")).unwrap(), 0);
    ledger.end(&change("e2")).unwrap();
    assert_eq!(ledger.crashes(&change("e2")).unwrap(), 0, "an attempt that ended is no crash");
}

#[test]
fn the_fingerprint_changes_with_what_changes_labels_and_only_that() {
    let model = ModelInfo { name: "m".into(), version: "1".into() };
    let base = crate::config::Config::default().validate().unwrap();
    let of = |f: &dyn Fn(&mut crate::config::Config)| {
        let mut config = crate::config::Config::default();
        f(&mut config);
        fingerprint(&config.validate().unwrap(), &model)
    };
    let same = fingerprint(&base, &model);
    assert_eq!(same.len(), 16);
    assert_eq!(of(&|c| c.concurrency = 7), same, "speed does not change labels");
    assert_eq!(of(&|c| c.max_bytes = 7), same, "a limit only decides failures");
    assert_ne!(of(&|c| c.min_confidence = 60.0), same);
    assert_ne!(of(&|c| c.max_labels = 5), same);
    assert_ne!(of(&|c| c.group = "v2".into()), same);
    assert_ne!(fingerprint(&base, &ModelInfo { name: "m".into(), version: "2".into() }), same);
    let rekognition = |f: &dyn Fn(&mut crate::config::Config)| {
        of(&|c| {
            c.backend = Backend::Rekognition;
            f(c);
        })
    };
    assert_ne!(rekognition(&|_| {}), same);
    assert_ne!(rekognition(&|c| c.rekognition.label_exclusion_filters = vec!["Text".into()]), rekognition(&|_| {}));
    assert_eq!(rekognition(&|c| c.rekognition.max_tps = 50.0), rekognition(&|_| {}));
}

#[test]
fn a_ledger_keeps_its_id_and_a_new_one_gets_another() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.sqlite");
    let id = Ledger::open(Some(&path)).unwrap().id().unwrap();
    assert_eq!(Ledger::open(Some(&path)).unwrap().id().unwrap(), id);
    let other = Ledger::open(Some(&tmp.path().join("other.sqlite"))).unwrap().id().unwrap();
    assert_ne!(other, id);

    // Processes starting together on one data dir agree on one id.
    let shared = tmp.path().join("shared.sqlite");
    let ids: Vec<String> = (0..8)
        .map(|_| {
            let path = shared.clone();
            std::thread::spawn(move || Ledger::open(Some(&path)).and_then(|l| l.id()))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
}

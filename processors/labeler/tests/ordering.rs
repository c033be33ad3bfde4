//! Issue 39's property: for one object, whatever mix and order of changes reach the
//! labeler (listing rows, events out of order, redeliveries, deletes, stale rows) and
//! whatever old outcomes reach the sink again (redeliveries, replays), and across a
//! model change, the index ends with the object's state in the bucket, labeled by the
//! newest labeler; and the ledger agrees with it (a listing of the final state is
//! skipped as unchanged). Real stages: the labeler with the built-in model on a real
//! folder, the sink into a real tantivy index, over the embedded log.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bucketlens_index::{DocState, Index, TantivyIndex};
use bucketlens_labeler::local::{LocalLabeler, LocalOptions};
use bucketlens_labeler::{Config, Labeler, Ledger, Metrics, Settings};
use bucketlens_runtime::bucket::{etag_of, LocalDir};
use bucketlens_runtime::log::{EmbeddedLog, Log, OutRecord, Position, Until};
use bucketlens_schemas::{record_key, topics, AvroRecord, ChangeKind, ChangeSource, ObjectChanged};
use tokio_util::sync::CancellationToken;

const KEY: &str = "photo.png";
const IMAGES: [&str; 3] = ["chelsea.png", "coffee.png", "rocket.jpg"];

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos").join(name)
}

/// One labeler generation: its settings and its model (the second one keeps fewer labels).
struct Generation {
    settings: Settings,
    labeler: Arc<LocalLabeler>,
}

fn generation(group: &str, min_confidence: f32) -> Generation {
    let mut settings = Config::default().validate().unwrap();
    settings.group = group.into();
    settings.min_confidence = min_confidence;
    let options = LocalOptions {
        threads: 1,
        min_confidence,
        max_labels: 20,
        max_pixels: 100_000_000,
        faces: None,
        detector: None,
        ..LocalOptions::default()
    };
    Generation { settings, labeler: Arc::new(LocalLabeler::load(None, &options).unwrap()) }
}

struct World {
    _tmp: tempfile::TempDir,
    photos: PathBuf,
    ledger_path: PathBuf,
    log: EmbeddedLog,
    index: Arc<TantivyIndex>,
}

impl World {
    async fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        let log = EmbeddedLog::open(&tmp.path().join("log.sqlite")).unwrap();
        for (topic, _) in topics::ALL {
            log.ensure_topic(topic, 1, false).await.unwrap();
        }
        let index = Arc::new(TantivyIndex::open_writer(&tmp.path().join("index"), 20_000_000).unwrap());
        let ledger_path = tmp.path().join("ledger.sqlite");
        Self { _tmp: tmp, photos, ledger_path, log, index }
    }

    fn file(&self) -> PathBuf {
        self.photos.join(KEY)
    }

    /// The change a listing, an inventory or an event would record now.
    fn change_now(&self, source: ChangeSource) -> ObjectChanged {
        let meta = std::fs::metadata(self.file()).ok();
        ObjectChanged {
            bucket: "photos".into(),
            key: KEY.into(),
            version_id: None,
            kind: if meta.is_some() { ChangeKind::Upsert } else { ChangeKind::Delete },
            size: meta.as_ref().map(|m| m.len() as i64),
            etag: meta.as_ref().map(etag_of),
            last_modified: Some(1),
            sequencer: None,
            source,
            observed_at: 0,
            storage_class: None,
            access_tier: None,
        }
    }

    async fn produce_change(&self, change: &ObjectChanged) {
        let record = OutRecord::new(record_key("photos", KEY), change.to_bytes().unwrap());
        self.log.produce(topics::OBJECTS_CHANGED, vec![record]).await.unwrap();
    }

    async fn label(&self, generation: &Generation) -> Arc<Metrics> {
        let metrics = Arc::new(Metrics::default());
        let stage = bucketlens_labeler::stage::Stage {
            settings: generation.settings.clone(),
            log: Arc::new(self.log.clone()) as Arc<dyn Log>,
            source: Arc::new(LocalDir::new(&self.photos).unwrap()),
            labeler: generation.labeler.clone(),
            metrics: metrics.clone(),
            ledger: Ledger::open(Some(&self.ledger_path)).unwrap(),
            isolation: None,
        };
        bucketlens_labeler::stage::run(stage, Until::drain(), CancellationToken::new()).await.unwrap();
        metrics
    }

    async fn sink(&self) {
        let stage = bucketlens_index::Stage {
            config: bucketlens_index::Config::default(),
            log: Arc::new(self.log.clone()) as Arc<dyn Log>,
            index: self.index.clone(),
            metrics: Arc::new(bucketlens_index::Metrics::default()),
        };
        bucketlens_index::run(stage, Until::drain(), CancellationToken::new()).await.unwrap();
    }

    /// Outcomes on the label log so far, as stored (to send some again).
    async fn outcomes(&self) -> Vec<OutRecord> {
        let group = format!("peek-{}", fastrand::u64(..));
        self.log.reset_group(&group, topics::IMAGES_LABELED, Position::Earliest).await.unwrap();
        let mut consumer = self.log.subscribe(&group, topics::IMAGES_LABELED).await.unwrap();
        let mut out = Vec::new();
        loop {
            let records = consumer.poll(1000, std::time::Duration::from_millis(50)).await.unwrap();
            if records.is_empty() {
                return out;
            }
            out.extend(records.into_iter().map(|r| OutRecord::new(r.key, r.value)));
        }
    }
}

/// What the newest generation's model says of the file's current bytes.
async fn expected_labels(generation: &Generation, path: &Path) -> Vec<String> {
    let set = generation.labeler.label(std::fs::read(path).unwrap()).await.unwrap();
    set.labels.into_iter().map(|l| l.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_mix_of_sources_and_replays_converges_on_the_bucket_and_the_newest_labels() {
    let old = generation("labeler-v1", 20.0);
    let new = generation("labeler-v2", 60.0);
    let cases: u64 = std::env::var("ORDERING_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(30);
    for case in 0..cases {
        let seed = 0x39_0000 + case;
        run_case(seed, &old, &new).await;
    }
}

async fn run_case(seed: u64, old: &Generation, new: &Generation) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let world = World::new().await;
    // Changes recorded but not yet delivered: events arrive late and out of order.
    let mut in_flight: Vec<ObjectChanged> = Vec::new();
    let mut delivered: Vec<ObjectChanged> = Vec::new();
    let mut current = old;
    let steps = 10 + rng.usize(..10);
    let mut trace = Vec::new();
    for _ in 0..steps {
        match rng.u8(..12) {
            // The bucket changes; its event is recorded, to be delivered some time.
            0..=2 => {
                let image = IMAGES[rng.usize(..IMAGES.len())];
                std::fs::copy(example(image), world.file()).unwrap();
                trace.push(format!("put {image}"));
                in_flight.push(world.change_now(ChangeSource::Event));
            }
            3 => {
                if world.file().exists() {
                    std::fs::remove_file(world.file()).unwrap();
                    trace.push("delete".into());
                    in_flight.push(world.change_now(ChangeSource::Event));
                }
            }
            // A listing or inventory row of what is there now.
            4 => {
                if world.file().exists() {
                    trace.push("listing".into());
                    delivered.push(world.change_now(ChangeSource::Listing));
                    world.produce_change(delivered.last().unwrap()).await;
                }
            }
            // One pending event arrives (any of them: SQS keeps no order), or an old
            // one again (a redelivery, a stale inventory row).
            5 => {
                let change = if !in_flight.is_empty() && rng.bool() {
                    in_flight.swap_remove(rng.usize(..in_flight.len()))
                } else if !delivered.is_empty() {
                    delivered[rng.usize(..delivered.len())].clone()
                } else {
                    continue;
                };
                trace.push(format!("deliver {:?} {:?}", change.kind, change.etag));
                world.produce_change(&change).await;
                delivered.push(change);
            }
            6..=8 => {
                trace.push("label".into());
                world.label(current).await;
            }
            9 => {
                trace.push("sink".into());
                world.sink().await;
            }
            // Old outcomes reach the sink again (a redelivery, a replay of the label log).
            10 => {
                let outcomes = world.outcomes().await;
                if !outcomes.is_empty() {
                    let again: Vec<OutRecord> =
                        (0..1 + rng.usize(..3)).map(|_| outcomes[rng.usize(..outcomes.len())].clone()).collect();
                    trace.push(format!("replay {} outcomes", again.len()));
                    world.log.produce(topics::IMAGES_LABELED, again).await.unwrap();
                }
            }
            // The model changes: a new labeler group relabels from the start of the log.
            _ => {
                if std::ptr::eq(current, old) {
                    trace.push("model change".into());
                    current = new;
                }
            }
        }
    }
    // Every change's event arrives in the end, in any order; then everything settles.
    rng.shuffle(&mut in_flight);
    for change in in_flight {
        world.produce_change(&change).await;
    }
    world.label(current).await;
    world.sink().await;
    // Then every outcome so far reaches the sink again, in any order (a consumer
    // group replayed, redeliveries after a crash): none may regress the document.
    let mut again = world.outcomes().await;
    rng.shuffle(&mut again);
    world.log.produce(topics::IMAGES_LABELED, again).await.unwrap();
    world.sink().await;

    let doc = world.index.get("photos", KEY).await.unwrap();
    let context = format!("seed {seed:#x}: {}", trace.join(", "));
    if !world.file().exists() {
        assert!(doc.as_ref().is_none_or(|d| d.state == DocState::Removed), "{context}: gone, but indexed as {doc:?}");
        return;
    }
    let doc = doc.unwrap_or_else(|| panic!("{context}: the object is not in the index"));
    assert_eq!(doc.state, DocState::Labeled, "{context}");
    let etag = etag_of(&std::fs::metadata(world.file()).unwrap());
    assert_eq!(doc.etag.as_deref(), Some(etag.as_str()), "{context}: the index describes another version");
    let labels: Vec<String> = doc.labels.iter().map(|l| l.name.clone()).collect();
    assert_eq!(labels, expected_labels(current, &world.file()).await, "{context}: not the newest labeler's labels");

    // The ledger agrees: a listing of the state the index shows is skipped unread.
    world.produce_change(&world.change_now(ChangeSource::Listing)).await;
    let metrics = world.label(current).await;
    assert_eq!((metrics.skipped.get("unchanged"), metrics.labeled.get()), (1, 0), "{context}: the ledger disagrees");
}

//! The two inference engines give the same labels: ONNX Runtime (the library
//! `scripts/fetch-onnxruntime` installs; `scripts/test` sets ONNXRUNTIME_LIBRARY)
//! and tract, on every example photo, with every model on.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use bucketlens_labeler::engine::{Engine, EngineChoice};
use bucketlens_labeler::local::{LocalLabeler, LocalOptions};
use bucketlens_labeler::{LabelSet, Labeler};

fn labeler(engine: EngineChoice) -> LocalLabeler {
    let detector = std::env::var_os("CENTERNET_ONNX")
        .expect("the engine tests run the detector too: run them with scripts/test, which fetches it");
    let options = LocalOptions { detector: Some((detector.into(), 40.0)), ..common::options(engine) };
    LocalLabeler::load(None, &options).unwrap()
}

fn examples() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::photos())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn confidence(set: &LabelSet, name: &str) -> Option<f32> {
    set.labels.iter().find(|l| l.name == name).map(|l| l.confidence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onnxruntime_and_tract_give_the_same_top_labels_within_half_a_point() {
    let fast = labeler(EngineChoice::Onnxruntime);
    assert!(matches!(fast.engine(), Engine::Onnxruntime { .. }), "{:?}", fast.engine());
    assert!(fast.engine().describe().starts_with("onnxruntime 1."), "{}", fast.engine().describe());
    let tract = labeler(EngineChoice::Tract);
    assert_eq!(tract.engine(), &Engine::Tract { why: None });
    assert_eq!(fast.model(), tract.model(), "the engine is not part of the model version");
    let photos = examples();
    assert_eq!(photos.len(), 12);
    let mut worst = (0.0f32, String::new());
    for (name, bytes) in photos {
        let (a, b) = (fast.label(bytes.clone()).await.unwrap(), tract.label(bytes).await.unwrap());
        for set in [&a, &b] {
            for label in set.labels.iter().take(5) {
                let (x, y) = (confidence(&a, &label.name), confidence(&b, &label.name));
                let (Some(x), Some(y)) = (x, y) else {
                    panic!("{name}: {} is in one engine's top 5 only: {:?} / {:?}", label.name, a.labels, b.labels);
                };
                if (x - y).abs() > worst.0 {
                    worst = ((x - y).abs(), format!("{name} {}: {x} / {y}", label.name));
                }
            }
        }
        let instances = |s: &LabelSet, n: &str| s.labels.iter().find(|l| l.name == n).map_or(0, |l| l.instances.len());
        for boxed in ["Face", "Person", "Cat"] {
            assert_eq!(instances(&a, boxed), instances(&b, boxed), "{name}: {boxed} boxes");
        }
    }
    println!("largest difference in a top-5 label: {:.5} points ({})", worst.0, worst.1);
    assert!(worst.0 <= 0.5, "{} points: {}", worst.0, worst.1);
}

/// Four threads share two sessions of the classifier and two of the object detector
/// (one per two threads, with the object detector on): callers that find none free
/// wait for one, and every photo still gets exactly the labels and boxes it gets when
/// photos are labeled one at a time on one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_labeled_at_once_on_shared_detector_sessions_get_the_labels_of_one_at_a_time() {
    let labeler = |threads| {
        let options = LocalOptions { threads, ..common::options(EngineChoice::Onnxruntime) };
        std::sync::Arc::new(LocalLabeler::load(None, &options).unwrap())
    };
    let (one, four) = (labeler(1), labeler(4));
    let photos = examples();
    let mut alone = Vec::new();
    for (_, bytes) in &photos {
        alone.push(one.label(bytes.clone()).await.unwrap().labels);
    }
    // Every photo three times over, all at once.
    let tasks: Vec<_> = photos
        .iter()
        .cycle()
        .take(3 * photos.len())
        .map(|(_, bytes)| {
            let (four, bytes) = (std::sync::Arc::clone(&four), bytes.clone());
            tokio::spawn(async move { four.label(bytes).await.unwrap().labels })
        })
        .collect();
    let mut boxes = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let labels = task.await.unwrap();
        let (name, _) = &photos[i % photos.len()];
        assert_eq!(labels, alone[i % photos.len()], "{name}: labeled at once differs from alone");
        boxes += labels.iter().map(|l| l.instances.len()).sum::<usize>();
    }
    assert!(boxes >= 3 * 5, "the detectors found {boxes} boxes in all: the comparison saw no detections");
}

use super::*;

fn labeler() -> OnnxLabeler {
    OnnxLabeler::load(
        None,
        &OnnxOptions {
            threads: 2,
            min_confidence: 5.0,
            max_labels: 30,
            max_pixels: 100_000_000,
            faces: Some(60.0),
            detector: None,
            ..OnnxOptions::default()
        },
    )
    .unwrap()
}

fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../examples/photos/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn confidence(set: &LabelSet, name: &str) -> f32 {
    set.labels.iter().find(|l| l.name == name).map_or(0.0, |l| l.confidence)
}

#[tokio::test]
async fn the_cat_is_a_cat_with_its_parents() {
    let l = labeler();
    let set = l.label(example("chelsea.png")).await.unwrap();
    for name in ["Cat", "Feline", "Carnivore", "Mammal", "Animal"] {
        assert!(confidence(&set, name) > 85.0, "{name}: {:?}", set.labels);
    }
    let cat = set.labels.iter().find(|l| l.name == "Cat").unwrap();
    assert_eq!(cat.parents, vec!["Feline".to_string()]);
    // A parent is at least as confident as any of its children.
    assert!(confidence(&set, "Animal") >= confidence(&set, "Cat"));
    // Sorted, highest first.
    assert!(set.labels.windows(2).all(|w| w[0].confidence >= w[1].confidence));
    assert_eq!(l.model().name, "efficientnet-lite0+blazeface");
}

#[tokio::test]
async fn min_confidence_and_max_labels_are_applied() {
    let l = OnnxLabeler::load(
        None,
        &OnnxOptions {
            threads: 1,
            min_confidence: 90.0,
            max_labels: 3,
            max_pixels: 100_000_000,
            faces: Some(60.0),
            detector: None,
            ..OnnxOptions::default()
        },
    )
    .unwrap();
    let set = l.label(example("chelsea.png")).await.unwrap();
    assert_eq!(set.labels.len(), 3, "{:?}", set.labels);
    assert!(set.labels.iter().all(|l| l.confidence >= 90.0));
}

/// What `label_blocking` panics on, in unit tests only.
pub(super) const PANIC: &[u8] = b"bucketlens-unit-test-panic";

#[tokio::test]
async fn a_panic_while_labeling_fails_that_image_and_the_labeling_thread_goes_on() {
    let l = OnnxLabeler::load(
        None,
        &OnnxOptions {
            threads: 1,
            min_confidence: 50.0,
            max_labels: 5,
            max_pixels: 100_000_000,
            faces: None,
            detector: None,
            ..OnnxOptions::default()
        },
    )
    .unwrap();
    let failure = l.label(PANIC.to_vec()).await.unwrap_err();
    assert_eq!((failure.code, failure.retryable), (error_codes::CORRUPT_IMAGE, false));
    assert!(failure.message.contains("panic"), "{}", failure.message);
    // The one labeling thread survived it.
    let set = l.label(example("chelsea.png")).await.unwrap();
    assert!(confidence(&set, "Cat") > 85.0, "{:?}", set.labels);
}

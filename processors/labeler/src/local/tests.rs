use super::*;

fn labeler() -> LocalLabeler {
    LocalLabeler::load(
        None,
        &LocalOptions {
            threads: 2,
            min_confidence: 5.0,
            max_labels: 30,
            max_pixels: 100_000_000,
            faces: Some(60.0),
            detector: None,
            ..LocalOptions::default()
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
    assert_eq!(l.model().name, "efficientnet-lite0+blazeface+ssd-oidv4");
}

#[tokio::test]
async fn min_confidence_and_max_labels_are_applied() {
    let l = LocalLabeler::load(
        None,
        &LocalOptions {
            threads: 1,
            min_confidence: 90.0,
            max_labels: 3,
            max_pixels: 100_000_000,
            faces: Some(60.0),
            detector: None,
            ..LocalOptions::default()
        },
    )
    .unwrap();
    let set = l.label(example("chelsea.png")).await.unwrap();
    assert_eq!(set.labels.len(), 3, "{:?}", set.labels);
    let l = LocalLabeler::load(None, &LocalOptions { min_confidence: 90.0, ..LocalOptions::default() }).unwrap();
    // The astronaut is a Person at 59% to the object detector: not at 90.
    let set = l.label(example("astronaut.png")).await.unwrap();
    assert!(set.labels.iter().all(|l| l.confidence >= 90.0), "{:?}", set.labels);
    assert!(set.labels.iter().all(|l| l.confidence >= 90.0));
}

#[tokio::test]
async fn objects_are_labels_with_a_box_each_and_their_parents_are_labels_too() {
    let l = labeler();
    let set = l.label(example("astronaut.png")).await.unwrap();
    let person = set.labels.iter().find(|l| l.name == "Person").expect("a Person");
    // One box from the object detector (the astronaut, the left two thirds of the
    // photo, top to bottom); the face detector's face is the Face label's.
    assert_eq!(person.instances.len(), 1, "{person:?}");
    let b = person.instances[0].bounding_box;
    assert!(b.left < 0.1 && b.width > 0.5 && b.left + b.width < 0.8 && b.height > 0.9, "{b:?}");
    assert!(person.aliases.iter().any(|a| a == "Human"), "shaped as the classifier's Person: {person:?}");
    let set = l.label(example("chelsea.png")).await.unwrap();
    let cat = set.labels.iter().find(|l| l.name == "Cat").unwrap();
    assert_eq!(cat.instances.len(), 1, "the cat has its box: {cat:?}");
    assert!(cat.instances[0].confidence > 80.0 && cat.instances[0].bounding_box.width > 0.8, "{cat:?}");
    assert!(set.labels.iter().all(|l| l.name == "Cat" || l.instances.is_empty()), "{:?}", set.labels);
    let set = l.label(example("coffee.png")).await.unwrap();
    let cup = set.labels.iter().find(|l| l.name == "Coffee Cup").expect("a Coffee Cup");
    assert_eq!((cup.instances.len(), cup.parents.clone()), (1, vec!["Drinking Vessel".to_string()]));
    assert!(confidence(&set, "Drinking Vessel") >= cup.confidence, "its parent is a label: {:?}", set.labels);
    // Off, nothing has a box but faces.
    let off = LocalLabeler::load(None, &LocalOptions { objects: None, ..LocalOptions::default() }).unwrap();
    assert_eq!(off.model().name, "efficientnet-lite0+blazeface");
    let set = off.label(example("chelsea.png")).await.unwrap();
    assert!(set.labels.iter().all(|l| l.instances.is_empty()), "{:?}", set.labels);
}

/// What `label_blocking` panics on, in unit tests only.
pub(super) const PANIC: &[u8] = b"bucketlens-unit-test-panic";

#[tokio::test]
async fn a_panic_while_labeling_fails_that_image_and_the_labeling_thread_goes_on() {
    let l = LocalLabeler::load(
        None,
        &LocalOptions {
            threads: 1,
            min_confidence: 50.0,
            max_labels: 5,
            max_pixels: 100_000_000,
            faces: None,
            detector: None,
            ..LocalOptions::default()
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

#[test]
fn the_classifier_the_faces_and_the_object_detector_share_a_session_between_two_threads_only_together() {
    let together = Sessions::new(4, true);
    assert_eq!((together.classifier, together.objects, together.faces, together.detector), (2, 2, 2, 4));
    assert_eq!(Sessions::new(3, true).objects, 2, "an odd thread out gets a session of its own");
    assert_eq!(Sessions::new(4, false).classifier, 4, "the classifier alone keeps one per thread");
    assert_eq!(Sessions::new(4, false).faces, 4, "so do faces without the object detector");
    assert_eq!(Sessions::new(0, true), Sessions { classifier: 1, faces: 1, objects: 1, detector: 1 });
}

//! The optional COCO detector (`models/centernet/fetch`; `scripts/test` fetches it and
//! sets CENTERNET_ONNX): people, whom the classifier cannot see, are found
//! with boxes around them, through the real binary, and it adds what the built-in
//! models do not find (compared with a run without it).
#![allow(clippy::unwrap_used)]

mod common;

use common::World;

#[test]
fn with_the_detector_people_are_labelled_with_bounding_boxes() {
    let detector = std::env::var("CENTERNET_ONNX")
        .expect("the detector test needs the model: run the tests with scripts/test, which fetches it");
    let mut world = World::new(1);
    world.env = vec![("BUCKETLENS_LABELER__DETECTOR".into(), detector)];
    let out = world.index();
    assert!(out.contains("labeled 12"), "{out}");

    let people = world.json(&["search", "person", "--json"]);
    let keys: Vec<&str> = people["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"astronaut.png") && keys.contains(&"camera.png"), "{keys:?}");
    let astronaut = people["hits"].as_array().unwrap().iter().find(|h| h["key"] == "astronaut.png").unwrap();
    assert_eq!(astronaut["model"]["name"], "efficientnet-lite0+blazeface+ssd-oidv4+centernet");
    let person = astronaut["labels"].as_array().unwrap().iter().find(|l| l["name"] == "Person").unwrap();
    let bbox = &person["instances"][0]["bounding_box"];
    let (left, top, width, height) = (
        bbox["left"].as_f64().unwrap(),
        bbox["top"].as_f64().unwrap(),
        bbox["width"].as_f64().unwrap(),
        bbox["height"].as_f64().unwrap(),
    );
    // The astronaut stands in the left two thirds of the frame, head to bottom edge.
    assert!(left < 0.1 && top < 0.1 && (0.5..0.85).contains(&width) && height > 0.85, "{bbox}");
    assert!(left + width <= 1.0 && top + height <= 1.0, "{bbox}");

    // The classifier's labels are still there.
    assert_eq!(world.json(&["search", "cat", "--json"])["hits"][0]["key"], "chelsea.png");

    // What only the COCO detector adds: the same photos without it, compared. The
    // built-in SSD already boxes the astronaut, so that alone would prove nothing;
    // the cameraman, seen from the side, it does not box.
    let without = World::new(1);
    without.index();
    let person_boxes = |world: &World, key: &str| -> usize {
        let hits = world.json(&["search", "*", "--json", "--limit", "100"]);
        let hit = hits["hits"].as_array().unwrap().iter().find(|h| h["key"] == key).unwrap().clone();
        let labels = hit["labels"].as_array().unwrap();
        labels.iter().find(|l| l["name"] == "Person").map_or(0, |l| l["instances"].as_array().unwrap().len())
    };
    assert_eq!(person_boxes(&without, "camera.png"), 0, "without the detector the cameraman has no person box");
    assert!(person_boxes(&world, "camera.png") >= 1, "with it he has one");
    assert!(
        person_boxes(&world, "astronaut.png") > person_boxes(&without, "astronaut.png"),
        "the detector's box is added to the built-in one"
    );
}

#[test]
fn a_detector_file_that_is_not_there_is_a_clear_error_at_start_up() {
    let mut world = World::new(1);
    world.env = vec![("BUCKETLENS_LABELER__DETECTOR".into(), "/no/such/centernet.onnx".into())];
    let out = world.command(&["index", world.photos.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/centernet.onnx"), "{stderr}");
}

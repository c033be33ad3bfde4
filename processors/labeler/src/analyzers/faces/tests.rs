use super::*;
use image::imageops;

fn example(name: &str) -> RgbImage {
    let path = format!("{}/../../examples/photos/{name}", env!("CARGO_MANIFEST_DIR"));
    image::open(path).unwrap().to_rgb8()
}

/// The face detector on the engine labeling would use.
fn faces() -> Faces {
    let engine = Engine::resolve(crate::engine::EngineChoice::Auto, None).unwrap();
    Faces::load(&engine, 1, 60.0).unwrap()
}

fn centre(b: &BoundingBox) -> (f32, f32) {
    (b.left + b.width / 2.0, b.top + b.height / 2.0)
}

#[test]
fn the_astronaut_and_the_cameraman_have_one_face_each_and_the_cat_none() {
    let faces = faces();
    let astronaut = faces.detect(&example("astronaut.png")).unwrap();
    assert_eq!(astronaut.len(), 1, "{astronaut:?}");
    // Eileen Collins' face: upper middle of the 512² photo (about x 0.33–0.50, y 0.10–0.40).
    let (x, y) = centre(&astronaut[0].bounding_box);
    assert!((0.3..0.55).contains(&x) && (0.1..0.4).contains(&y), "{astronaut:?}");
    assert!(astronaut[0].confidence > 80.0, "{astronaut:?}");
    let camera = faces.detect(&example("camera.png")).unwrap();
    assert_eq!(camera.len(), 1, "{camera:?}");
    for none in ["chelsea.png", "coffee.png", "brick.png", "rocket.jpg"] {
        let found = faces.detect(&example(none)).unwrap();
        assert!(found.is_empty(), "{none}: {found:?}");
    }
}

#[test]
fn a_face_is_found_where_it_is_in_a_wide_image() {
    // The astronaut's photo pasted on the right of a 2:1 black canvas: letterboxed,
    // the face must come back in the canvas' fractions.
    let photo = example("astronaut.png");
    let mut canvas = RgbImage::new(photo.width() * 2, photo.height());
    imageops::replace(&mut canvas, &photo, i64::from(photo.width()), 0);
    let faces = faces().detect(&canvas).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let (x, y) = centre(&faces[0].bounding_box);
    assert!((0.65..0.78).contains(&x) && (0.1..0.4).contains(&y), "{faces:?}");
}

#[test]
fn overlapping_detections_merge_into_one_face_weighted_by_score() {
    // Two anchors side by side that see the same face, and one far away.
    let mut regressors = vec![0f32; GRID * GRID * 16];
    let mut scores = vec![-20f32; GRID * GRID];
    for (anchor, logit) in [(10 * GRID + 10, 4.0), (10 * GRID + 11, 1.0), (40 * GRID + 40, 2.0)] {
        regressors[anchor * 16 + 2] = 40.0; // 40 px wide and high, centred on the anchor
        regressors[anchor * 16 + 3] = 40.0;
        scores[anchor] = logit;
    }
    let faces = decode(&regressors, &scores, 50.0);
    assert_eq!(faces.len(), 2, "{faces:?}");
    assert!((faces[0].confidence - 100.0 / (1.0 + (-4f32).exp())).abs() < 1e-3, "the best score is kept");
    let (x, _) = centre(&faces[0].bounding_box);
    let (a, b) = (10.5 / 48.0, 11.5 / 48.0);
    let (wa, wb) = (100.0 / (1.0 + (-4f32).exp()), 100.0 / (1.0 + (-1f32).exp()));
    assert!((x - (a * wa + b * wb) / (wa + wb)).abs() < 1e-4, "weighted centre: {x}");
    assert!(decode(&regressors, &scores, 99.0).is_empty(), "under the threshold");
}

#[test]
fn faces_become_face_head_and_person_labels_shaped_as_rekognition_does() {
    let b = BoundingBox { left: 0.1, top: 0.1, width: 0.2, height: 0.3 };
    let faces = [Face { confidence: 90.0, bounding_box: b }, Face { confidence: 70.0, bounding_box: b }];
    let tripod = Label {
        name: "Tripod".into(),
        confidence: 95.0,
        parents: vec![],
        categories: vec![],
        aliases: vec![],
        instances: vec![],
    };
    let person = Label { name: "Person".into(), aliases: vec!["Human".into()], ..tripod.clone() };
    let labels = merge(vec![tripod.clone()], &faces, Some(person), 50.0);
    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["Tripod", "Face", "Head", "Person"]);
    let face = &labels[1];
    assert_eq!((face.confidence, face.instances.len()), (90.0, 2));
    assert_eq!(face.parents, ["Head", "Person"]);
    assert_eq!(face.categories, ["Person Description"]);
    assert_eq!((labels[3].confidence, labels[3].aliases.clone()), (90.0, vec!["Human".to_string()]));
    assert_eq!(merge(vec![tripod.clone()], &faces, None, 95.0).len(), 1, "min-confidence holds");
    assert_eq!(merge(vec![tripod], &[], None, 0.0).len(), 1, "no face, no label");
}

#[test]
fn every_face_of_a_group_is_counted() {
    // No group photo with a license we could ship was found, so the group is made of
    // the licensed examples side by side in a 3:1 strip: the astronaut, mirrored, and
    // the cameraman, whose face is too small for the detector in the whole strip at
    // 192 pixels and is found in the squares a wide image is also searched in.
    let astronaut = example("astronaut.png");
    let mirrored = imageops::flip_horizontal(&astronaut);
    let camera = imageops::resize(&example("camera.png"), 512, 512, imageops::FilterType::Triangle);
    let (w, h) = astronaut.dimensions();
    let mut group = RgbImage::new(w * 3, h);
    for (photo, x) in [(&astronaut, 0), (&mirrored, w), (&camera, 2 * w)] {
        imageops::replace(&mut group, photo, i64::from(x), 0);
    }
    let faces = faces().detect(&group).unwrap();
    let mut thirds: Vec<u32> = faces.iter().map(|f| (centre(&f.bounding_box).0 * 3.0) as u32).collect();
    thirds.sort();
    assert_eq!(thirds, [0, 1, 2], "one face per photo: {faces:?}");
}

#[test]
fn a_very_wide_or_very_thin_image_is_searched_in_a_bounded_number_of_squares() {
    let faces = faces();
    // A strip one pixel high: no squares to cut, and no panic.
    assert!(faces.detect(&RgbImage::new(4000, 1)).unwrap().is_empty());
    // 40:1, which would need 79 squares were they not capped: blank, so nothing.
    assert!(faces.detect(&RgbImage::new(256 * 40, 256)).unwrap().is_empty());
    // A tall one is cut along its height.
    let astronaut = example("astronaut.png");
    let mut tall = RgbImage::new(512, 512 * 2);
    imageops::replace(&mut tall, &astronaut, 0, 512);
    let found = faces.detect(&tall).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(centre(&found[0].bounding_box).1 > 0.5, "in the lower half: {found:?}");
}

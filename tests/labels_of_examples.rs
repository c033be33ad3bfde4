//! What the local model sees in the example photos (examples/photos/PROVENANCE.md
//! says what each one really shows). Each assertion is a label a person would agree
//! with, at the default settings.
#![allow(clippy::unwrap_used)]

mod common;

use common::World;

#[test]
fn the_example_photos_get_the_right_top_labels() {
    let w = World::new(1);
    w.index();
    let docs = w.all_documents();
    let labels = |key: &str| docs.iter().find(|(k, _)| k == key).map(|(_, l)| l.clone()).unwrap();
    let has = |key: &str, name: &str, min: f64| {
        let l = labels(key);
        assert!(l.iter().any(|(n, c)| n == name && *c >= min), "{key}: expected {name} >= {min}, got {l:?}");
    };
    has("chelsea.png", "Cat", 85.0);
    has("chelsea.png", "Feline", 85.0);
    has("chelsea.png", "Mammal", 85.0);
    has("chelsea.png", "Animal", 85.0);
    has("coffee.png", "Espresso", 80.0);
    has("coffee.png", "Beverage", 80.0);
    has("camera.png", "Tripod", 80.0);
    has("rocket.jpg", "Weapon", 50.0); // "Missile" + "Projectile": ImageNet has no space rocket
    has("china.jpg", "Building", 40.0);
    // The first label is the most confident one.
    for (key, l) in &docs {
        assert!(l.windows(2).all(|p| p[0].1 >= p[1].1), "{key}: not sorted {l:?}");
    }
    // What the model cannot see: no person class, so the astronaut is not labeled
    // a person, and the galaxies get no confident label.
    assert!(labels("astronaut.png").iter().all(|(n, _)| n != "Person"));
    assert!(labels("hubble_deep_field.jpg").iter().all(|(_, c)| *c < 90.0));
}

/// `jpeg` with an EXIF APP1 segment (right after SOI) whose Orientation is `value`.
fn with_exif_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    exif.extend_from_slice(&value.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(exif.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn a_photo_stored_sideways_is_labeled_and_sized_as_it_is_displayed() {
    let w = World::new(0);
    // The cat, stored turned 90° counter-clockwise, as a camera held upright writes a
    // portrait: EXIF orientation 6 says to turn it clockwise to display it.
    let cat = image::open(common::examples_dir().join("chelsea.png")).unwrap().rotate270();
    let mut jpeg = Vec::new();
    cat.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    std::fs::write(w.photos.join("sideways.jpg"), with_exif_orientation(&jpeg, 6)).unwrap();
    std::fs::write(w.photos.join("untagged.jpg"), &jpeg).unwrap();
    w.index();
    let docs = w.json(&["search", "*", "--json"]);
    let doc = |key: &str| docs["hits"].as_array().unwrap().iter().find(|d| d["key"] == key).unwrap().clone();
    let sideways = doc("sideways.jpg");
    // The displayed size: 451 wide, 300 high, like the original.
    assert_eq!((sideways["image"]["width"].as_i64(), sideways["image"]["height"].as_i64()), (Some(451), Some(300)));
    assert_eq!(doc("untagged.jpg")["image"]["width"], 300, "without the tag it is what is stored");
    let cat = sideways["labels"].as_array().unwrap().iter().find(|l| l["name"] == "Cat").cloned();
    assert!(cat.as_ref().is_some_and(|l| l["confidence"].as_f64().unwrap() >= 80.0), "{sideways}");
}

#[test]
fn webp_gif_tiff_and_bmp_photos_are_listed_labeled_and_searchable() {
    let w = World::new(0);
    let cat = image::open(common::examples_dir().join("chelsea.png")).unwrap().into_rgb8();
    for (name, format) in [
        ("cat.webp", image::ImageFormat::WebP),
        ("cat.gif", image::ImageFormat::Gif),
        ("cat.tiff", image::ImageFormat::Tiff),
        ("cat.bmp", image::ImageFormat::Bmp),
    ] {
        cat.save_with_format(w.photos.join(name), format).unwrap();
    }
    let out = w.index();
    assert!(out.contains("found 4 images") && out.contains("failed 0"), "{out}");
    let found = w.json(&["search", "cat", "--json", "--min-confidence", "80"]);
    let mut keys: Vec<&str> = found["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["cat.bmp", "cat.gif", "cat.tiff", "cat.webp"], "{found}");
    let formats: Vec<&str> =
        found["hits"].as_array().unwrap().iter().map(|h| h["image"]["format"].as_str().unwrap()).collect();
    assert!(["webp", "gif", "tiff", "bmp"].iter().all(|f| formats.contains(f)), "{formats:?}");
}

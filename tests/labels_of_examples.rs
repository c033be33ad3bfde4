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

//! Duplicates and "where else is this photo" end to end: the real binary labels a
//! folder with `index --watch`, `duplicates` and `similar` read the index, and an
//! overwrite or a delete takes the object out of every group and every result.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{examples_dir, wait_until, World};
use serde_json::Value;

/// A half-size PNG of an example photo: the same picture, other bytes.
fn half_size(name: &str) -> Vec<u8> {
    let image = image::open(examples_dir().join(name)).unwrap();
    let half = image.resize(image.width() / 2, image.height() / 2, image::imageops::FilterType::Lanczos3);
    let mut out = std::io::Cursor::new(Vec::new());
    half.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The groups as (kind, keys), largest reclaimable first.
fn groups(w: &World) -> Vec<(String, Vec<String>)> {
    let report = w.json(&["duplicates", "--json"]);
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let keys = g["members"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap().to_string());
            (g["kind"].as_str().unwrap().to_string(), keys.collect())
        })
        .collect()
}

fn similar_keys(w: &World, args: &[&str]) -> Vec<(String, f64)> {
    let mut all = vec!["similar"];
    all.extend_from_slice(args);
    all.push("--json");
    common::ranked(&w.json(&all))
}

#[test]
fn copies_are_grouped_with_what_they_free_and_an_overwrite_or_a_delete_leaves_every_group() {
    let w = World::new(0);
    let cat = std::fs::read(examples_dir().join("chelsea.png")).unwrap();
    let coffee = std::fs::read(examples_dir().join("coffee.png")).unwrap();
    for dir in ["backup", "small"] {
        std::fs::create_dir_all(w.photos.join(dir)).unwrap();
    }
    std::fs::write(w.photos.join("chelsea.png"), &cat).unwrap();
    std::fs::write(w.photos.join("backup/chelsea.png"), &cat).unwrap();
    std::fs::write(w.photos.join("small/chelsea.png"), half_size("chelsea.png")).unwrap();
    std::fs::write(w.photos.join("coffee.png"), &coffee).unwrap();
    std::fs::write(w.photos.join("rocket.jpg"), std::fs::read(examples_dir().join("rocket.jpg")).unwrap()).unwrap();
    let _watch = w.watch(5);

    // An exact copy, and the same picture at half size; the others in no group.
    assert_eq!(
        groups(&w),
        [
            ("exact".to_string(), vec!["chelsea.png".to_string(), "backup/chelsea.png".to_string()]),
            ("near".to_string(), vec!["chelsea.png".to_string(), "small/chelsea.png".to_string()]),
        ]
    );
    let report = w.json(&["duplicates", "--json"]);
    let half = std::fs::metadata(w.photos.join("small/chelsea.png")).unwrap().len();
    assert_eq!(report["groups"][0]["reclaimable_bytes"], cat.len() as u64, "{report}");
    assert_eq!(report["groups"][1]["reclaimable_bytes"], half, "keeping the largest frees the half-size copy");
    assert_eq!(report["total_reclaimable_bytes"], cat.len() as u64 + half);
    let member = &report["groups"][0]["members"][0];
    assert_eq!((member["bucket"].as_str(), member["width"].as_i64()), (Some("photos"), Some(451)), "{member}");
    let text = w.run(&["duplicates"]);
    assert!(text.contains("keep photos/chelsea.png") && text.contains("2 groups"), "{text}");
    assert_eq!(groups(&w).len(), 2);
    let exact_only = w.json(&["duplicates", "--exact", "--json"]);
    assert_eq!(exact_only["groups"].as_array().unwrap().len(), 1, "{exact_only}");

    // Where else is the cat: its copy (the same bytes, 1.0) first, then the small one.
    let found = similar_keys(&w, &["photos/chelsea.png", "--copies"]);
    assert_eq!(found[0], ("backup/chelsea.png".to_string(), 1.0));
    assert_eq!(found.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["backup/chelsea.png", "small/chelsea.png"]);
    // What looks like it, by embedding: the same two first, then the other photos far
    // behind; each says whether it is a copy.
    let looks = w.json(&["similar", "photos/chelsea.png", "--json"]);
    let hits = looks["hits"].as_array().unwrap();
    let keys: Vec<&str> = hits.iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(keys[..2], ["backup/chelsea.png", "small/chelsea.png"], "{looks}");
    let mut others = keys[2..].to_vec();
    others.sort();
    assert_eq!(others, ["coffee.png", "rocket.jpg"], "{looks}");
    assert!(hits[0]["similarity"].as_f64().unwrap() > 0.999 && hits[0]["exact"] == true, "{looks}");
    assert!(hits[1]["similarity"].as_f64().unwrap() > 0.9 && hits[1]["copy"] == true, "{looks}");
    assert!(hits[2]["similarity"].as_f64().unwrap() < 0.5 && hits[2]["copy"] == false, "{looks}");
    assert_eq!(similar_keys(&w, &["photos/chelsea.png", "--min-similarity", "0.9"]).len(), 2);
    assert_eq!(similar_keys(&w, &["photos/chelsea.png", "--prefix", "small/"]).len(), 1, "filters apply");
    assert_eq!(similar_keys(&w, &["photos/chelsea.png", "--limit", "1"]).len(), 1);
    // A photo not in the index: a quarter-size JPEG of the cat finds all three, by
    // hash and by embedding.
    let outside = w.tmp.path().join("found-on-a-website.png");
    let image = image::open(examples_dir().join("chelsea.png")).unwrap();
    image.resize(120, 80, image::imageops::FilterType::Triangle).save(&outside).unwrap();
    let found = similar_keys(&w, &["--image", outside.to_str().unwrap(), "--copies"]);
    let mut keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["backup/chelsea.png", "chelsea.png", "small/chelsea.png"], "{found:?}");
    let found = similar_keys(&w, &["--image", outside.to_str().unwrap(), "--min-similarity", "0.8"]);
    let mut keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["backup/chelsea.png", "chelsea.png", "small/chelsea.png"], "{found:?}");

    // Overwritten with the coffee: the backup leaves the cat's groups and joins the coffee's.
    std::fs::write(w.photos.join("backup/chelsea.png"), &coffee).unwrap();
    wait_until("the overwrite regroups", Duration::from_secs(60), || {
        groups(&w)
            == [
                ("exact".to_string(), vec!["coffee.png".to_string(), "backup/chelsea.png".to_string()]),
                ("near".to_string(), vec!["chelsea.png".to_string(), "small/chelsea.png".to_string()]),
            ]
    });
    // No stale vector: the overwritten copy now looks like the coffee, not the cat.
    let coffee_like = similar_keys(&w, &["photos/coffee.png"]);
    assert_eq!(coffee_like[0].0, "backup/chelsea.png", "{coffee_like:?}");
    let cat_like = similar_keys(&w, &["photos/chelsea.png", "--min-similarity", "0.5"]);
    assert_eq!(cat_like.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["small/chelsea.png"]);
    // Deleted: no group and no result holds it.
    std::fs::remove_file(w.photos.join("small/chelsea.png")).unwrap();
    wait_until("the delete leaves its group", Duration::from_secs(60), || groups(&w).len() == 1);
    assert!(similar_keys(&w, &["photos/chelsea.png", "--copies"]).is_empty());
    let everything_like_the_cat = similar_keys(&w, &["photos/chelsea.png", "--limit", "100"]);
    assert_eq!(
        everything_like_the_cat.len(),
        3,
        "the other three photos, the deleted one gone: {everything_like_the_cat:?}"
    );
}

#[test]
fn a_photo_that_is_not_indexed_or_not_an_image_is_a_clear_error() {
    let w = World::new(0);
    std::fs::write(w.photos.join("chelsea.png"), std::fs::read(examples_dir().join("chelsea.png")).unwrap()).unwrap();
    std::fs::write(w.photos.join("broken.jpg"), b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    w.index();
    let said = |args: &[&str]| {
        let out = w.command(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = said(&["similar", "photos/missing.png"]);
    assert!(err.contains("photos/missing.png is not a labeled photo"), "{err}");
    let err = said(&["similar", "photos/broken.jpg"]);
    assert!(err.contains("photos/broken.jpg is not a labeled photo"), "a failed document: {err}");
    let corrupt = w.tmp.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n nothing after the signature").unwrap();
    let err = said(&["similar", "--image", corrupt.to_str().unwrap()]);
    assert!(err.contains("corrupt.png") && err.contains("CorruptImage"), "{err}");
    let err = said(&["duplicates", "--min-similarity", "0.5"]);
    assert!(err.contains("0.5 is outside 0.83-1"), "{err}");
    let err = said(&["similar", "photos/chelsea.png", "--min-similarity", "2"]);
    assert!(err.contains("2 is outside 0-1"), "{err}");
    let err = said(&["similar", "photos/chelsea.png", "--copies", "--min-similarity", "0.5"]);
    assert!(err.contains("0.5 is outside 0.83-1"), "{err}");
    let err = said(&["similar", "no-slash"]);
    assert!(err.contains("\"no-slash\" is not BUCKET/KEY"), "{err}");
    let value: Value = w.json(&["duplicates", "--json"]);
    assert_eq!(value["total_reclaimable_bytes"], 0);
}

#[test]
fn a_photo_labeled_without_an_embedding_says_so_and_its_copies_are_still_found() {
    let mut w = World::new(0);
    w.env = vec![("BUCKETLENS_LABELER__EMBEDDING".into(), "false".into())];
    let cat = std::fs::read(examples_dir().join("chelsea.png")).unwrap();
    std::fs::write(w.photos.join("chelsea.png"), &cat).unwrap();
    std::fs::write(w.photos.join("copy.png"), &cat).unwrap();
    w.index();
    let out = w.command(&["similar", "photos/chelsea.png"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("photos/chelsea.png has no embedding"), "{err}");
    assert!(err.contains("--copies"), "it says what still works: {err}");
    assert_eq!(similar_keys(&w, &["photos/chelsea.png", "--copies"]), [("copy.png".to_string(), 1.0)]);
}

//! Photos found by what they say about themselves, end to end: the real binary on
//! the shipped tagged examples (`examples/tagged`, made by the tagger from example
//! photos: see its PROVENANCE.md), through the labeler, the label log and the index,
//! searched by date taken, camera, lens, keyword and sorted by date taken.
#![allow(clippy::unwrap_used)]

mod common;

use bucketlens_labeler::metadata::tagging::tag_jpeg;
use bucketlens_schemas::{AvroRecord, Camera, Exposure, Gps, ImageLabeled, PhotoMetadata};
use common::{examples_dir, World};

fn tagged_dir() -> std::path::PathBuf {
    examples_dir().join("../tagged")
}

/// What each tagged example says about itself (invented, see PROVENANCE.md), and
/// the example photo it is made from.
fn tagged_examples() -> Vec<(&'static str, &'static str, PhotoMetadata)> {
    vec![
        (
            "temple.jpg",
            "china.jpg",
            PhotoMetadata {
                taken_at: Some("2019-07-14T09:30:05+08:00".into()),
                camera: Some(Camera { make: Some("FUJIFILM".into()), model: Some("X-T30".into()) }),
                lens: Some("XF35mmF2 R WR".into()),
                exposure: Some(Exposure {
                    focal_length_mm: Some(35.0),
                    f_number: Some(5.6),
                    exposure_time_s: Some(0.004),
                    iso: Some(200),
                }),
                gps: Some(Gps { lat: 39.9999, lon: 116.2755, alt: Some(52.0) }),
                keywords: vec!["travel".into(), "Places|China|Beijing".into()],
                title: Some("Temple roofs".into()),
                rating: Some(4),
                ..PhotoMetadata::default()
            },
        ),
        (
            "daisy.jpg",
            "flower.jpg",
            PhotoMetadata {
                taken_at: Some("2021-05-02T16:20:00".into()),
                camera: Some(Camera { make: Some("Canon".into()), model: Some("Canon EOS 5D Mark IV".into()) }),
                lens: Some("EF100mm f/2.8L Macro IS USM".into()),
                keywords: vec!["garden".into(), "macro".into()],
                caption: Some("A daisy in the garden".into()),
                ..PhotoMetadata::default()
            },
        ),
        (
            "launch.jpg",
            "rocket.jpg",
            PhotoMetadata {
                taken_at: Some("2015-02-11T18:03:42-05:00".into()),
                camera: Some(Camera { make: Some("NIKON CORPORATION".into()), model: Some("NIKON D4".into()) }),
                gps: Some(Gps { lat: 28.5618, lon: -80.5772, alt: None }),
                keywords: vec!["launch".into(), "invoice".into()],
                ..PhotoMetadata::default()
            },
        ),
    ]
}

/// The shipped tagged examples are exactly what the tagger makes of the example
/// photos. `BUCKETLENS_WRITE_EXAMPLES=1` writes them (after a change to the tagger or
/// to the list above, in a commit of their own).
#[test]
fn the_shipped_tagged_examples_are_what_the_tagger_makes_of_the_example_photos() {
    for (name, from, metadata) in tagged_examples() {
        let made = tag_jpeg(&std::fs::read(examples_dir().join(from)).unwrap(), &metadata);
        let path = tagged_dir().join(name);
        if std::env::var_os("BUCKETLENS_WRITE_EXAMPLES").is_some() {
            std::fs::write(&path, &made).unwrap();
        }
        let shipped = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(shipped == made, "{name} differs from what the tagger makes of {from}");
    }
}

fn world() -> World {
    let w = World::new(0);
    for (name, _, _) in tagged_examples() {
        std::fs::copy(tagged_dir().join(name), w.photos.join(name)).unwrap();
    }
    w
}

fn keys(w: &World, args: &[&str]) -> Vec<String> {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.extend(["--sort", "name", "--json"]);
    let v = w.json(&all);
    v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap().to_string()).collect()
}

#[test]
fn photos_are_found_by_date_taken_camera_lens_and_keyword_and_carry_their_metadata() {
    let w = world();
    let summary = w.index();
    assert!(summary.contains("labeled 3 · unchanged 0 · failed 0"), "{summary}");

    assert_eq!(keys(&w, &["year:2019"]), ["temple.jpg"]);
    assert_eq!(keys(&w, &["taken:2015-02-11"]), ["launch.jpg"], "the day by the camera's clock, not UTC's 12th");
    assert_eq!(keys(&w, &["camera:canon"]), ["daisy.jpg"]);
    assert_eq!(keys(&w, &["camera:\"x-t30\" OR camera:nikon"]), ["launch.jpg", "temple.jpg"]);
    assert_eq!(keys(&w, &["lens:macro"]), ["daisy.jpg"]);
    assert_eq!(keys(&w, &["keyword:beijing"]), ["temple.jpg"], "a level of a Lightroom hierarchy");
    assert_eq!(keys(&w, &["keyword:invoice"]), ["launch.jpg"]);
    assert_eq!(keys(&w, &["*", "--taken-after", "2016", "--taken-before", "2020"]), ["temple.jpg"]);
    assert_eq!(keys(&w, &["*", "--taken-before", "2019-07-13"]), ["launch.jpg"], "up to the end of that day");

    let v = w.json(&["search", "*", "--sort", "taken", "--json"]);
    let order: Vec<&str> = v["hits"].as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(order, ["daisy.jpg", "temple.jpg", "launch.jpg"], "newest taken first");

    let v = w.json(&["search", "keyword:travel", "--json"]);
    let metadata = &v["hits"][0]["metadata"];
    assert_eq!(metadata["taken_at"], "2019-07-14T09:30:05+08:00", "{metadata}");
    assert_eq!(metadata["taken_from"], "DateTimeOriginal");
    assert_eq!(metadata["camera"], serde_json::json!({ "make": "FUJIFILM", "model": "X-T30" }));
    assert_eq!(metadata["lens"], "XF35mmF2 R WR");
    assert_eq!(metadata["exposure"]["f_number"], 5.6_f32 as f64);
    assert_eq!(metadata["exposure"]["iso"], 200);
    assert!((metadata["gps"]["lat"].as_f64().unwrap() - 39.9999).abs() < 1e-6, "{metadata}");
    assert_eq!(metadata["gps"]["alt"], 52.0);
    assert_eq!(metadata["keywords"], serde_json::json!(["travel", "Places", "China", "Beijing"]));
    assert_eq!(metadata["title"], "Temple roofs");
    assert_eq!(metadata["rating"], 4);
    assert!(metadata.get("caption").is_none(), "absent parts are absent: {metadata}");
    // The Summer Palace is in Beijing's Haidian district; people say Beijing.
    assert_eq!(
        metadata["place"],
        serde_json::json!({ "city": "Beijing", "region": "Beijing", "country": "China", "country_code": "CN" })
    );

    // By the place its position names, offline.
    assert_eq!(keys(&w, &["city:beijing"]), ["temple.jpg"]);
    assert_eq!(keys(&w, &["country:china"]), ["temple.jpg"]);
    assert_eq!(keys(&w, &["place:florida"]), ["launch.jpg"], "the region, a level of the place");
    assert_eq!(keys(&w, &["country:us OR country:cn"]), ["launch.jpg", "temple.jpg"], "country codes");

    let human = w.run(&["search", "keyword:beijing"]);
    assert!(
        human.contains(
            "taken 2019-07-14 09:30:05+08:00 · FUJIFILM X-T30 · Beijing, China · travel, Places, China, Beijing"
        ),
        "{human}"
    );
    let human = w.run(&["search", "camera:canon"]);
    assert!(human.contains(" · Canon EOS 5D Mark IV · garden"), "the make said once: {human}");

    // Query errors name the qualifier.
    let out = w.command(&["search", "year:19"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a bad qualifier fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("year:19 at character 1 needs a year, such as year:2019"), "{err}");
    let out = w.command(&["search", "*", "--taken-after", "last week"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a date such as 2019, 2019-07 or 2019-07-14"));
}

#[test]
fn gps_off_relabels_and_keeps_no_position_anywhere() {
    let mut w = world();
    w.index();
    let v = w.json(&["search", "keyword:travel", "--json"]);
    assert!(v["hits"][0]["metadata"]["gps"].is_object(), "{v}");

    w.env.push(("BUCKETLENS_LABELER__METADATA__GPS".into(), "off".into()));
    let summary = w.index();
    assert!(summary.contains("labeled 3 · unchanged 0"), "a changed setting relabels: {summary}");
    let v = w.json(&["search", "*", "--json"]);
    for hit in v["hits"].as_array().unwrap() {
        assert!(hit["metadata"].get("gps").is_none(), "{hit}");
        assert!(hit["metadata"]["camera"].is_object(), "the rest stays: {hit}");
    }
    // Nor in the label log's new records, which replays and other consumers read.
    let log = rusqlite::Connection::open(w.data.join("log.sqlite")).unwrap();
    let mut query =
        log.prepare("SELECT value FROM records WHERE topic = 'images.labeled.v1' ORDER BY timestamp_ms").unwrap();
    let records: Vec<ImageLabeled> = query
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|value| ImageLabeled::from_bytes(&value.unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 6, "three labeled twice");
    let with_gps = |r: &ImageLabeled| r.metadata.as_ref().is_some_and(|m| m.gps.is_some());
    assert_eq!(records[..3].iter().filter(|r| with_gps(r)).count(), 2, "before: temple and launch had positions");
    assert!(!records[3..].iter().any(with_gps), "after: none");
    let with_place = |r: &ImageLabeled| r.metadata.as_ref().is_some_and(|m| m.place.is_some());
    assert!(!records[3..].iter().any(with_place), "off: no place either");

    // `place` keeps where, without the coordinates.
    w.env.push(("BUCKETLENS_LABELER__METADATA__GPS".into(), "place".into()));
    let summary = w.index();
    assert!(summary.contains("labeled 3 · unchanged 0"), "a changed setting relabels: {summary}");
    let v = w.json(&["search", "country:china", "--json"]);
    let metadata = &v["hits"][0]["metadata"];
    assert_eq!(metadata["place"]["city"], "Beijing", "{metadata}");
    assert!(metadata.get("gps").is_none(), "{metadata}");

    w.env.push(("BUCKETLENS_LABELER__METADATA__GPS".into(), "somewhere".into()));
    let out = w.command(&["index", w.photos.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("labeler.metadata.gps") || err.contains("somewhere"), "{err}");
}

#[test]
fn bad_metadata_never_fails_a_photo_and_a_debug_line_names_it_and_the_cause() {
    let mut w = world();
    // A photo whose camera clock was never set, and one whose EXIF is cut short.
    let temple = std::fs::read(tagged_dir().join("temple.jpg")).unwrap();
    let at = temple.windows(19).position(|x| x == b"2019:07:14 09:30:05").unwrap();
    let mut unset = temple.clone();
    unset[at..at + 19].copy_from_slice(b"0000:00:00 00:00:00");
    std::fs::write(w.photos.join("unset clock.jpg"), &unset).unwrap();
    let mut cut = std::fs::read(examples_dir().join("china.jpg")).unwrap();
    let exif_segment = [0xFF, 0xE1, 0x01, 0x00]; // claims 254 bytes
    let mut short = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x40".to_vec(); // 64 entries, none there
    short.resize(252, 0xAB);
    cut.splice(2..2, exif_segment.iter().copied().chain(short));
    std::fs::write(w.photos.join("cut.jpg"), &cut).unwrap();

    w.env.push(("BUCKETLENS_LOG".into(), "bucketlens_labeler=debug".into()));
    let out = w.command(&["index", w.photos.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}\n{err}");
    assert!(summary.contains("labeled 5 · unchanged 0 · failed 0"), "{summary}");
    let line = err.lines().find(|l| l.contains("unset clock.jpg") && l.contains("metadata dropped"));
    let line = line.unwrap_or_else(|| panic!("no debug line names the object: {err}"));
    assert!(line.contains("DateTimeOriginal") && line.contains("year 0"), "{line}");
    let v = w.json(&["search", "name:unset", "--json"]);
    let metadata = &v["hits"][0]["metadata"];
    assert!(metadata.get("taken_at").is_none(), "{metadata}");
    assert_eq!(metadata["camera"]["model"], "X-T30", "the rest of the EXIF stays: {metadata}");
    assert!(err.lines().any(|l| l.contains("cut.jpg") && l.contains("metadata dropped")), "{err}");
    assert_eq!(w.json(&["search", "name:cut", "--json"])["total"], 1, "labeled anyway");
}

/// A phone's HEIC (`tests/fixtures/heif/tagged.heic`, written by pillow-heif with
/// EXIF: see that folder's README) says when, with what and where, like a JPEG.
#[test]
fn a_phones_heic_with_exif_is_found_by_camera_date_and_place() {
    let w = World::new(0);
    let heic = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/heif/tagged.heic");
    std::fs::copy(heic, w.photos.join("IMG_0420.HEIC")).unwrap();
    let summary = w.index();
    assert!(summary.contains("labeled 1 · unchanged 0 · failed 0"), "{summary}");

    assert_eq!(keys(&w, &["camera:iphone"]), ["IMG_0420.HEIC"]);
    assert_eq!(keys(&w, &["taken:2022-08-20 city:paris"]), ["IMG_0420.HEIC"]);
    let v = w.json(&["search", "camera:apple", "--json"]);
    let metadata = &v["hits"][0]["metadata"];
    assert_eq!(metadata["taken_at"], "2022-08-20T14:05:09+02:00", "{metadata}");
    assert_eq!(metadata["camera"], serde_json::json!({ "make": "Apple", "model": "iPhone 13 mini" }));
    let (lat, lon) = (metadata["gps"]["lat"].as_f64().unwrap(), metadata["gps"]["lon"].as_f64().unwrap());
    assert!((lat - 48.858_369).abs() < 1e-5 && (lon - 2.294_481).abs() < 1e-5, "{metadata}");
    assert_eq!(metadata["place"]["city"], "Paris", "by the Eiffel Tower: {metadata}");
}

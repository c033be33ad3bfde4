//! The Rekognition labeler through the whole embedded pipeline, driven by the real
//! aws-sdk against a local endpoint speaking Rekognition's JSON protocol with AWS's
//! documented payloads (`common::rekognition`): the TPS quota is kept and never
//! surfaces as an error, S3 objects go by reference, documented errors keep their
//! code. The stand-in is as strict as Rekognition on what a client can get wrong
//! (the first test below shows it refusing each).
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::http::{self, Request};
use common::rekognition::{self, FakeRekognition};
use common::s3::Moto;
use common::{sigv4, World};
use serde_json::{json, Value};

fn rekognition_env(fake: &FakeRekognition, max_tps: f64) -> Vec<(String, String)> {
    [
        ("BUCKETLENS_LABELER__BACKEND", "rekognition".to_string()),
        ("BUCKETLENS_LABELER__REKOGNITION__MAX_TPS", max_tps.to_string()),
        ("AWS_ENDPOINT_URL_REKOGNITION", fake.url()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A world labeling with Rekognition (`fake`) the buckets of `moto`.
fn over_moto(fake: &FakeRekognition, moto: &Moto) -> World {
    let mut world = World::new(0);
    world.env = rekognition_env(fake, 20.0);
    world.env.extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    world.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL_REKOGNITION");
    world.env.push(("AWS_ENDPOINT_URL_REKOGNITION".into(), fake.url()));
    world
}

#[test]
fn the_labeler_stays_within_the_quota_and_maps_the_documented_response_one_to_one() {
    const QUOTA: f64 = 5.0;
    let fake = FakeRekognition::start(QUOTA);
    let mut world = World::new(3);
    world.env = rekognition_env(&fake, QUOTA);
    let out = world.index();
    assert!(out.contains("labeled 36") && out.contains("failed 0"), "{out}");

    let calls = fake.calls();
    let ok: Vec<_> = calls.iter().filter(|c| c.status == 200).collect();
    assert_eq!(ok.len(), 36, "one successful call per image");
    assert!(calls.iter().all(|c| c.s3_object.is_none() && c.bytes_len > 0), "a local folder is sent as bytes");
    // At max-tps = the quota, the quota is never exceeded: nothing was throttled.
    // (How much of the quota is used is measured by bench/src/bin/freshness.rs.)
    assert_eq!(calls.len(), ok.len(), "{} calls throttled at max-tps = the quota", calls.len() - ok.len());
    let request = &ok[0].request;
    assert_eq!(request["Features"][0], "GENERAL_LABELS");
    assert_eq!(request["MinConfidence"], 50.0);
    assert_eq!(request["MaxLabels"], 20);

    let found = world.json(&["search", "\"mobile phone\"", "--json", "--limit", "100"]);
    assert_eq!(found["total"], 36);
    let hit = &found["hits"][0];
    let label = &hit["labels"][0];
    assert_eq!(label["name"], "Mobile Phone");
    assert_eq!(label["parents"][0], "Phone");
    assert_eq!(label["aliases"][0], "Cell Phone");
    assert_eq!(label["categories"][0], "Technology and Computing");
    let bbox = &label["instances"][0]["bounding_box"];
    assert!((bbox["width"].as_f64().unwrap() - 0.267_796_75).abs() < 1e-6, "{label}");
    assert_eq!(hit["model"]["name"], "rekognition");
    assert_eq!(hit["model"]["version"], "3.0");
    assert!(hit["image"]["width"].as_i64().unwrap() > 0, "{hit}");
}

#[test]
fn throttling_above_the_quota_is_retried_never_surfaced() {
    let fake = FakeRekognition::start(4.0);
    let mut world = World::new(1);
    world.env = rekognition_env(&fake, 12.0); // three times what the endpoint allows
    let out = world.index();
    assert!(out.contains("labeled 12") && out.contains("failed 0"), "{out}");
    let calls = fake.calls();
    let throttled = calls.iter().filter(|c| c.status == 400).count();
    assert!(throttled > 0, "the endpoint never throttled: the test proves nothing");
    assert_eq!(calls.iter().filter(|c| c.status == 200).count(), 12);
}

#[test]
fn objects_in_s3_go_by_reference_and_documented_errors_keep_their_code() {
    let fake = FakeRekognition::start(20.0);
    let moto = Moto::start();
    moto.create_bucket("refs");
    let cat = std::fs::read(common::examples_dir().join("chelsea.png")).unwrap();
    for key in ["cats/cat.png", "cats/flaky.png", "cats/denied.png"] {
        moto.put("refs", key, &cat);
    }
    let world = over_moto(&fake, &moto);
    let out = world.run(&["index", "s3://refs/cats/"]);
    assert!(out.contains("labeled 2") && out.contains("failed 1"), "{out}");

    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.bytes_len == 0), "an S3 object was downloaded and sent as bytes");
    let names: Vec<&str> = calls.iter().filter_map(|c| c.s3_object.as_ref().map(|(_, n)| n.as_str())).collect();
    assert_eq!(names.iter().filter(|n| **n == "cats/flaky.png").count(), 2, "the 500 was retried: {names:?}");
    assert!(calls.iter().all(|c| c.s3_object.as_ref().unwrap().0 == "refs"));

    let failed = world.json(&["search", "--failed", "--json"]);
    assert_eq!(failed["hits"][0]["key"], "cats/denied.png", "{failed}");
    assert_eq!(failed["hits"][0]["error"]["code"], "AccessDenied", "{failed}");
    assert_eq!(world.json(&["search", "\"mobile phone\"", "--json"])["total"], 2);
}

/// By reference, Rekognition reads the object and the labeler never holds its bytes:
/// the photo's metadata comes from one ranged GET of its first 128 KiB. The temple is
/// 193 KB, so the read stops before its end.
#[test]
fn by_reference_the_metadata_comes_from_the_objects_first_bytes() {
    let fake = FakeRekognition::start(20.0);
    let moto = Moto::start();
    moto.create_bucket("tagged");
    let tagged = common::examples_dir().join("../tagged");
    for name in ["temple.jpg", "launch.jpg"] {
        moto.put("tagged", name, &std::fs::read(tagged.join(name)).unwrap());
    }
    assert!(std::fs::metadata(tagged.join("temple.jpg")).unwrap().len() > 128 * 1024);
    let world = over_moto(&fake, &moto);
    let out = world.run(&["index", "s3://tagged/"]);
    assert!(out.contains("labeled 2") && out.contains("failed 0"), "{out}");
    assert!(fake.calls().iter().all(|c| c.bytes_len == 0 && c.s3_object.is_some()), "sent by reference");

    let found = world.json(&["search", "year:2019", "--json"]);
    assert_eq!(found["total"], 1, "{found}");
    let metadata = &found["hits"][0]["metadata"];
    assert_eq!(metadata["camera"]["model"], "X-T30", "{metadata}");
    assert_eq!(metadata["place"]["city"], "Beijing", "{metadata}");
    assert_eq!(world.json(&["search", "place:florida", "--json"])["hits"][0]["key"], "launch.jpg");
}

/// What a client could get wrong, sent by hand: the stand-in refuses each as
/// Rekognition documents, so a test against it fails when the labeler errs so.
#[test]
fn the_stand_in_refuses_what_rekognition_refuses_in_its_documented_shapes() {
    let fake = FakeRekognition::start(100.0);
    let png = std::fs::read(common::examples_dir().join("chelsea.png")).unwrap();
    let bytes = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let call = |body: Value, sign: Option<(&str, &str)>| -> (u16, Value) {
        let mut request = Request {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![
                ("host".into(), format!("127.0.0.1:{}", fake.port)),
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amz-target".into(), "RekognitionService.DetectLabels".into()),
            ],
            body: body.to_string().into_bytes(),
        };
        if let Some((service, secret)) = sign {
            sigv4::sign(&mut request, service, "us-east-1", "test", secret, "20261206T080000Z");
        }
        let (status, reply) = http::send(fake.port, &request);
        (status, serde_json::from_slice(&reply).unwrap())
    };
    let good = json!({ "Image": { "Bytes": bytes(&png) }, "Features": ["GENERAL_LABELS"], "MinConfidence": 50.0 });
    let signed = Some(("rekognition", rekognition::SECRET));
    for (what, body, sign, status, kind) in [
        ("unsigned", good.clone(), None, 403, "MissingAuthenticationTokenException"),
        ("signed for S3", good.clone(), Some(("s3", rekognition::SECRET)), 403, "InvalidSignatureException"),
        ("a wrong secret", good.clone(), Some(("rekognition", "wrong")), 403, "InvalidSignatureException"),
        (
            "bytes and a reference",
            json!({ "Image": { "Bytes": bytes(&png), "S3Object": { "Bucket": "b", "Name": "k.png" } } }),
            signed,
            400,
            "InvalidParameterException",
        ),
        (
            "a GIF",
            json!({ "Image": { "Bytes": bytes(b"GIF89a\x01\x00\x01\x00") } }),
            signed,
            400,
            "InvalidImageFormatException",
        ),
        (
            "a PNG of 6 MB",
            json!({ "Image": { "Bytes": bytes(&[png.as_slice(), &vec![0; 6 << 20]].concat()) } }),
            signed,
            400,
            "ImageTooLargeException",
        ),
        (
            "an unknown filter",
            json!({ "Image": { "Bytes": bytes(&png) }, "Settings": { "GeneralLabels": { "LabelFilters": ["Cat"] } } }),
            signed,
            400,
            "InvalidParameterException",
        ),
        (
            "MinConfidence 150",
            json!({ "Image": { "Bytes": bytes(&png) }, "MinConfidence": 150 }),
            signed,
            400,
            "InvalidParameterException",
        ),
    ] {
        let (got, reply) = call(body, sign);
        assert_eq!((got, reply["__type"].as_str().unwrap_or_default()), (status, kind), "{what}: {reply}");
        assert!(!reply["Message"].as_str().unwrap_or_default().is_empty(), "{what}: {reply}");
    }
    let (status, reply) = call(good, signed);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["LabelModelVersion"], "3.0");
}

/// docs/models.md's promise: what Rekognition cannot read (WebP, HEIC) is sent as a JPEG
/// of at most 1024 px on its short side, and a wrong secret is a failure that says so.
#[test]
fn a_webp_and_a_heic_reach_rekognition_as_jpegs_and_a_wrong_secret_fails_naming_the_signature() {
    let fake = FakeRekognition::start(20.0);
    let mut world = World::new(0);
    world.env = rekognition_env(&fake, 20.0);
    let cat = image::open(common::examples_dir().join("chelsea.png")).unwrap().to_rgb8();
    let wide = image::imageops::resize(&cat, 1600, 1066, image::imageops::FilterType::Triangle);
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(wide.as_raw(), 1600, 1066, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(world.photos.join("cat.webp"), &webp).unwrap();
    let heic = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/heif/chelsea.heic");
    std::fs::copy(heic, world.photos.join("cat.heic")).unwrap();
    let out = world.index();
    assert!(out.contains("labeled 2") && out.contains("failed 0"), "{out}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let mut sizes: Vec<(u32, u32)> = calls
        .iter()
        .map(|c| {
            assert_eq!((c.status, &c.bytes[..3]), (200, &[0xFF, 0xD8, 0xFF][..]), "sent as a JPEG");
            let jpeg = image::load_from_memory_with_format(&c.bytes, image::ImageFormat::Jpeg).unwrap();
            (jpeg.width(), jpeg.height())
        })
        .collect();
    sizes.sort();
    assert_eq!(sizes[0], (451, 300), "the HEIC as it is (its short side is under 1024 px)");
    let expected_long = 1600.0 * 1024.0 / 1066.0;
    assert!(
        sizes[1].1 == 1024 && (f64::from(sizes[1].0) - expected_long).abs() <= 1.0,
        "the WebP at 1024 px on its short side, its shape kept: {:?}",
        sizes[1]
    );

    std::fs::copy(common::examples_dir().join("rocket.jpg"), world.photos.join("rocket.jpg")).unwrap();
    world.env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    world.env.push(("AWS_SECRET_ACCESS_KEY".into(), "wrong".into()));
    let out = world.index();
    assert!(out.contains("failed 1"), "{out}");
    let failed = world.json(&["search", "--failed", "--json"]);
    assert_eq!(failed["hits"][0]["key"], "rocket.jpg", "{failed}");
    let said = failed["hits"][0]["error"].to_string();
    assert!(said.contains("InvalidSignatureException") || said.contains("signature"), "{said}");
}

#[test]
fn detect_text_is_a_second_call_on_the_same_quota_and_its_lines_are_searchable() {
    const QUOTA: f64 = 5.0;
    let fake = FakeRekognition::start(QUOTA);
    let mut world = World::new(1);
    world.env = rekognition_env(&fake, QUOTA);
    world.env.push(("BUCKETLENS_LABELER__REKOGNITION__DETECT_TEXT".into(), "true".into()));
    let out = world.index();
    assert!(out.contains("labeled 12") && out.contains("failed 0"), "{out}");
    let calls = fake.calls();
    let count = |op: &str| calls.iter().filter(|c| c.operation == op && c.status == 200).count();
    assert_eq!((count("DetectLabels"), count("DetectText")), (12, 12), "two calls an image");
    assert_eq!(calls.len(), 24, "both on one rate limiter, within the quota: none throttled");
    let text_call = calls.iter().find(|c| c.operation == "DetectText").unwrap();
    assert!(text_call.request.get("Features").is_none() && text_call.bytes_len > 0, "{:?}", text_call.request);

    // The lines (not the words), at text-min-confidence and words only, in reading order.
    let found = world.json(&["search", "text:\"gare du nord\"", "--json", "--limit", "100"]);
    assert_eq!(found["total"], 12, "{found}");
    let hit = &found["hits"][0];
    assert_eq!(hit["text"], "GARE DU NORD\nSortie 42", "{hit}");
    let lines = hit["text_lines"].as_array().unwrap();
    assert!((lines[0]["bounding_box"]["left"].as_f64().unwrap() - 0.2).abs() < 1e-6, "{hit}");
    assert!((lines[1]["confidence"].as_f64().unwrap() - 97.2).abs() < 1e-3, "{hit}");
    let text_label = hit["labels"].as_array().unwrap().iter().find(|l| l["name"] == "Text").unwrap();
    assert_eq!(text_label["categories"][0], "Text and Documents");
    assert_eq!(text_label["instances"].as_array().unwrap().len(), 2);
    assert_eq!(world.json(&["search", "text:sortie AND \"mobile phone\"", "--json"])["total"], 12);
    assert_eq!(world.json(&["search", "text:blurred", "--json"])["total"], 0, "under the floor");
}

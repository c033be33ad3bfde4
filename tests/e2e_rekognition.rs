//! The Rekognition labeler through the whole embedded pipeline, driven by the real
//! aws-sdk against a local endpoint speaking Rekognition's JSON protocol with AWS's
//! documented payloads (`common::rekognition`): the TPS quota is kept and never
//! surfaces as an error, S3 objects go by reference, documented errors keep their
//! code.
#![allow(clippy::unwrap_used)]

mod common;

use common::rekognition::FakeRekognition;
use common::s3::Moto;
use common::World;

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

#[test]
fn the_labeler_uses_the_quota_and_maps_the_documented_response_one_to_one() {
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
    let mut world = World::new(0);
    world.env = rekognition_env(&fake, 20.0);
    world.env.extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    world.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL_REKOGNITION");
    world.env.push(("AWS_ENDPOINT_URL_REKOGNITION".into(), fake.url()));
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

use super::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn the_documented_s3_put_event_becomes_an_upsert() {
    let parsed = parse(&fixture("s3-object-created.json")).unwrap();
    assert_eq!(parsed.changes.len(), 1);
    let c = &parsed.changes[0];
    assert_eq!((c.bucket.as_str(), c.key.as_str()), ("amzn-s3-demo-bucket", "HappyFace.jpg"));
    assert_eq!(c.kind, ChangeKind::Upsert);
    assert_eq!(c.size, Some(1024));
    assert_eq!(c.etag.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
    assert_eq!(c.version_id.as_deref(), Some("096fKKXTRTtl3on89fVO.nfljtsv6qko"));
    assert_eq!(c.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    assert_eq!(c.last_modified, Some(0));
    assert_eq!(c.source, ChangeSource::Event);
}

#[test]
fn removals_delete_markers_and_odd_keys_decode_exactly() {
    let parsed = parse(&fixture("s3-mixed.json")).unwrap();
    let keys: Vec<(&str, ChangeKind)> = parsed.changes.iter().map(|c| (c.key.as_str(), c.kind)).collect();
    assert_eq!(
        keys,
        [
            ("HappyFace.jpg", ChangeKind::Upsert),
            ("red flower, \"big\"/copy (1).JPG", ChangeKind::Delete),
            ("café/naïve c++.png", ChangeKind::Delete),
        ]
    );
    // Tagging and the folder marker are not changes of an image.
    assert_eq!(parsed.skipped, 2);
    // A delete carries no size or etag; "null" is the null version, not an id.
    assert_eq!(parsed.changes[1].size, None);
    assert_eq!(parsed.changes[2].version_id, None);
    assert_eq!(parsed.changes[2].sequencer.as_deref(), Some("0055AED6DCD90281E7"));
}

#[test]
fn an_sns_envelope_is_opened() {
    let direct = parse(&fixture("s3-object-created.json")).unwrap();
    let wrapped = parse(&fixture("sns-envelope.json")).unwrap();
    assert_eq!(wrapped.changes.len(), 1);
    assert_eq!(wrapped.changes[0].key, direct.changes[0].key);
    assert_eq!(wrapped.changes[0].sequencer, direct.changes[0].sequencer);
}

#[test]
fn eventbridge_created_and_deleted() {
    let created = parse(&fixture("eventbridge-object-created.json")).unwrap();
    let c = &created.changes[0];
    assert_eq!(
        (c.bucket.as_str(), c.key.as_str(), c.kind),
        ("amzn-s3-demo-bucket1", "example-key.jpg", ChangeKind::Upsert)
    );
    assert_eq!(c.etag.as_deref(), Some("b1946ac92492d2347c6235b4d2611184"));
    assert_eq!(c.sequencer.as_deref(), Some("617f08299329d189"));
    assert_eq!(c.last_modified, Some(1_636_675_200_000));
    let deleted = parse(&fixture("eventbridge-object-deleted.json")).unwrap();
    assert_eq!(deleted.changes[0].kind, ChangeKind::Delete);
    assert_eq!(deleted.changes[0].sequencer.as_deref(), Some("617f0837b476e463"));
}

#[test]
fn minio_records_are_s3_records() {
    let parsed = parse(&fixture("minio-webhook.json")).unwrap();
    assert_eq!(parsed.changes.len(), 1);
    assert_eq!(parsed.changes[0].bucket, "mybucket");
    assert_eq!(parsed.changes[0].key, "holiday photos/beach 1.jpg");
}

#[test]
fn the_test_event_is_recognised_and_produces_nothing() {
    let parsed = parse(&fixture("s3-test-event.json")).unwrap();
    assert!(parsed.test_event);
    assert!(parsed.changes.is_empty());
}

#[test]
fn malformed_bodies_say_what_is_wrong() {
    assert!(matches!(parse("{not json"), Err(ParseError::Json(_))));
    assert_eq!(parse(r#"{"hello": 1}"#), Err(ParseError::Unknown));
    let old = fixture("s3-object-created.json").replace("\"2.1\"", "\"1.0\"");
    let err = parse(&old).unwrap_err().to_string();
    assert!(err.contains("record 0: eventVersion 1.0 is not supported"), "{err}");
    let bad_key = fixture("s3-object-created.json").replace("HappyFace.jpg", "%FF%FE.jpg");
    let err = parse(&bad_key).unwrap_err().to_string();
    assert!(err.contains("does not decode to UTF-8"), "{err}");
}

#[test]
fn deleting_one_version_becomes_a_change_of_the_key_and_a_delete_marker_a_removal() {
    let record = |name: &str, version: Option<&str>| {
        let mut object = serde_json::json!({"key": "photo.png", "sequencer": "0055AED6DCD90281F0"});
        if let Some(v) = version {
            object["versionId"] = v.into();
        }
        serde_json::json!({"Records": [{"eventVersion": "2.1", "eventName": name,
            "s3": {"bucket": {"name": "b"}, "object": object}}]})
        .to_string()
    };
    let one = |body: String| parse(&body).unwrap().changes.remove(0);

    // One version of a versioned object deleted for good: an older one may now be
    // current, so the key is read again (no version, no etag).
    for version in ["3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "null"] {
        let c = one(record("ObjectRemoved:Delete", Some(version)));
        assert_eq!((c.kind, c.version_id.as_deref(), c.etag.as_deref()), (ChangeKind::Upsert, None, None));
        assert_eq!(c.sequencer.as_deref(), Some("0055AED6DCD90281F0"));
        let c = one(record("LifecycleExpiration:Delete", Some(version)));
        assert_eq!(c.kind, ChangeKind::Upsert, "a noncurrent version expired");
    }
    // An unversioned delete, and delete markers, remove the key.
    assert_eq!(one(record("ObjectRemoved:Delete", None)).kind, ChangeKind::Delete);
    assert_eq!(one(record("ObjectRemoved:DeleteMarkerCreated", Some("null"))).kind, ChangeKind::Delete);
    assert_eq!(one(record("LifecycleExpiration:DeleteMarkerCreated", Some("v2"))).kind, ChangeKind::Delete);

    // EventBridge says which in deletion-type.
    let marker = fixture("eventbridge-object-deleted.json");
    assert_eq!(parse(&marker).unwrap().changes[0].kind, ChangeKind::Delete);
    let permanent = marker.replace("Delete Marker Created", "Permanently Deleted");
    let c = parse(&permanent).unwrap().changes.remove(0);
    assert_eq!((c.kind, c.version_id), (ChangeKind::Upsert, None));
    let unversioned = permanent.replace("\"version-id\": \"1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF\",", "");
    assert_eq!(parse(&unversioned).unwrap().changes[0].kind, ChangeKind::Delete);
}

/// A Lambda SQS event (S3 → SQS → Lambda) and an SNS → SQS one, as users save them
/// from their Lambda set-up (the shape of AWS Powertools' `s3SqsEvent.json`).
#[test]
fn lambda_sqs_and_sns_event_documents_are_opened() {
    let s3 = fixture("s3-object-created.json");
    let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": s3}).to_string();
    let document = serde_json::json!({"Records": [
        {"messageId": "1", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
         "body": s3, "attributes": {}, "messageAttributes": {}, "awsRegion": "us-east-1"},
        {"messageId": "2", "eventSource": "aws:sqs", "body": sns},
        {"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {"Type": "Notification", "Message": s3}}
    ]});
    let parsed = parse(&document.to_string()).unwrap();
    assert_eq!(parsed.changes.len(), 3, "{parsed:?}");
    assert!(parsed.bad.is_empty());
    assert!(parsed.changes.iter().all(|c| c.key == "HappyFace.jpg" && c.kind == ChangeKind::Upsert));
}

#[test]
fn one_bad_record_does_not_discard_the_good_ones() {
    let good: serde_json::Value = serde_json::from_str(&fixture("s3-object-created.json")).unwrap();
    let good = good["Records"][0].clone();
    let document = serde_json::json!({"Records": [good, {"eventName": "ObjectCreated:Put"}, good,
        {"eventSource": "aws:sqs", "body": "{not json"}]});
    let parsed = parse(&document.to_string()).unwrap();
    assert_eq!(parsed.changes.len(), 2);
    assert_eq!(parsed.bad.len(), 2, "{:?}", parsed.bad);
    assert!(parsed.bad[0].starts_with("record 1: missing field"), "{:?}", parsed.bad);
    assert!(parsed.bad[1].starts_with("record 3: not JSON"), "{:?}", parsed.bad);
}

#[test]
fn another_services_event_is_named_as_such() {
    let ses = serde_json::json!({"Records": [{"eventSource": "aws:ses", "eventVersion": "1.0",
        "ses": {"mail": {"messageId": "m1"}, "receipt": {}}}]});
    let Err(ParseError::Records(bad)) = parse(&ses.to_string()) else { panic!("an SES document is not S3's") };
    assert_eq!(bad, vec!["record 0: not an S3 event notification (its eventSource is \"aws:ses\")".to_string()]);
    let minio: serde_json::Value = serde_json::from_str(&fixture("s3-object-created.json")).unwrap();
    let mut record = minio["Records"][0].clone();
    record["eventSource"] = "minio:s3".into();
    let parsed = parse(&serde_json::json!({"Records": [record]}).to_string()).unwrap();
    assert_eq!(parsed.changes.len(), 1, "S3-compatible stores name themselves: {parsed:?}");
}

#[test]
fn a_completed_restore_is_an_upsert_and_a_restore_started_is_not() {
    // S3's documented event names: ObjectRestore:Post (started), :Completed, :Delete.
    let created = fixture("s3-object-created.json");
    let restored = parse(&created.replace("ObjectCreated:Put", "ObjectRestore:Completed")).unwrap();
    assert_eq!(restored.changes.len(), 1);
    assert_eq!((restored.changes[0].key.as_str(), restored.changes[0].kind), ("HappyFace.jpg", ChangeKind::Upsert));
    for name in ["ObjectRestore:Post", "ObjectRestore:Delete"] {
        let parsed = parse(&created.replace("ObjectCreated:Put", name)).unwrap();
        assert!(parsed.changes.is_empty(), "{name}");
        assert_eq!(parsed.skipped, 1, "{name}");
    }
    let eventbridge = fixture("eventbridge-object-created.json").replace("Object Created", "Object Restore Completed");
    assert_eq!(parse(&eventbridge).unwrap().changes[0].kind, ChangeKind::Upsert);
}

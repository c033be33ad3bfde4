//! Round trips, schema evolution, and rejection of bad payloads.
#![allow(deprecated)]

use apache_avro::{types::Record, Schema};
use bucketlens_schemas::{
    AvroRecord, BoundingBox, ChangeKind, ChangeSource, Codec, DecodeError, ImageLabeled, ImageProperties, Instance,
    Label, LabelError, LabelKind, ModelInfo, ObjectChanged, OBJECTS_CHANGED_SCHEMA,
};

fn change() -> ObjectChanged {
    ObjectChanged {
        bucket: "photos".into(),
        key: "2024/summer trip/cat 1.jpg".into(),
        version_id: Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into()),
        kind: ChangeKind::Upsert,
        size: Some(1_234_567),
        etag: Some("\"d41d8cd98f00b204e9800998ecf8427e\"".into()),
        last_modified: Some(1_700_000_000_123),
        sequencer: Some("0055AED6DCD90281E5".into()),
        source: ChangeSource::Event,
        observed_at: 1_700_000_001_000,
        storage_class: None,
        access_tier: None,
    }
}

fn labeled() -> ImageLabeled {
    let mut record = ImageLabeled::for_change(
        &change(),
        LabelKind::Labeled,
        ModelInfo { name: "efficientnet-lite0".into(), version: "1".into() },
        1_700_000_002_000,
    );
    record.labels = vec![Label {
        name: "Cat".into(),
        confidence: 94.5,
        parents: vec!["Feline".into()],
        categories: vec!["Animals and Pets".into()],
        aliases: vec!["Kitty".into()],
        instances: vec![Instance {
            bounding_box: BoundingBox { left: 0.1, top: 0.2, width: 0.5, height: 0.6 },
            confidence: 90.0,
        }],
    }];
    record.image = Some(ImageProperties { format: "jpeg".into(), width: 4000, height: 3000 });
    record
}

#[test]
fn records_round_trip() {
    let c = change();
    assert_eq!(ObjectChanged::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
    let delete = ObjectChanged { kind: ChangeKind::Delete, size: None, etag: None, ..change() };
    assert_eq!(ObjectChanged::from_bytes(&delete.to_bytes().unwrap()).unwrap(), delete);

    let l = labeled();
    assert_eq!(ImageLabeled::from_bytes(&l.to_bytes().unwrap()).unwrap(), l);
    // An embedding's bytes, every value of a byte among them, come back as they went.
    let mut embedded = labeled();
    embedded.embedding = Some(bucketlens_schemas::ImageEmbedding {
        model: "efficientnet-lite0@abc/int8".into(),
        vector: (0..=255).collect(),
    });
    let bytes = embedded.to_bytes().unwrap();
    assert!(bytes.len() < l.to_bytes().unwrap().len() + 256 + 40, "a byte each, as Avro bytes: {}", bytes.len());
    assert_eq!(ImageLabeled::from_bytes(&bytes).unwrap(), embedded);
    let mut failed = ImageLabeled::for_change(&change(), LabelKind::Failed, l.model.clone(), 5);
    failed.error = Some(LabelError { code: "CorruptImage".into(), message: "bad".into(), retryable: false });
    assert_eq!(ImageLabeled::from_bytes(&failed.to_bytes().unwrap()).unwrap(), failed);
}

#[test]
fn payload_is_single_object_encoded() {
    let bytes = change().to_bytes().unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    let schema = Schema::parse_str(OBJECTS_CHANGED_SCHEMA).unwrap();
    // Of the specification's canonical form; checked against an independent
    // implementation in the_fingerprint_is_the_specifications_and_the_older_one_still_reads.
    let fp = bucketlens_schemas::fingerprint(&schema);
    assert_eq!(&bytes[2..10], &fp[..], "header carries the writer schema's CRC-64-AVRO fingerprint");
}

/// An earlier ObjectChanged schema, before `sequencer` existed.
const OLD_SCHEMA: &str = r#"{
  "type": "record", "name": "ObjectChanged", "namespace": "io.bucketlens.v1",
  "fields": [
    {"name": "bucket", "type": "string"},
    {"name": "key", "type": "string"},
    {"name": "version_id", "type": ["null", "string"], "default": null},
    {"name": "kind", "type": {"type": "enum", "name": "ChangeKind", "symbols": ["upsert", "delete"]}},
    {"name": "size", "type": ["null", "long"], "default": null},
    {"name": "etag", "type": ["null", "string"], "default": null},
    {"name": "last_modified", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null},
    {"name": "source", "type": {"type": "enum", "name": "ChangeSource", "symbols": ["inventory", "listing", "event", "replay"]}},
    {"name": "observed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]
}"#;

#[test]
fn a_record_of_a_schema_the_codec_does_not_know_is_refused_and_one_in_its_history_is_resolved() {
    let old = Schema::parse_str(OLD_SCHEMA).unwrap();
    let mut record = Record::new(&old).unwrap();
    record.put("bucket", "photos");
    record.put("key", "a.png");
    record.put("version_id", apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)));
    record.put("kind", apache_avro::types::Value::Enum(1, "delete".into()));
    record.put("size", apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)));
    record.put("etag", apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)));
    record.put("last_modified", apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null)));
    record.put("source", apache_avro::types::Value::Enum(1, "listing".into()));
    record.put("observed_at", apache_avro::types::Value::TimestampMillis(42));
    let body = apache_avro::to_avro_datum(&old, record).unwrap();
    let mut payload = vec![0xC3, 0x01];
    payload.extend_from_slice(&old.fingerprint::<apache_avro::rabin::Rabin>().bytes);
    payload.extend_from_slice(&body);

    // The shipped codec does not know this schema: a clear error, not garbage.
    let err = ObjectChanged::from_bytes(&payload).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownSchema { .. }), "{err}");

    // A codec that keeps the old schema in its history resolves it into the new one.
    let codec = Codec::from_schemas("ObjectChanged", OBJECTS_CHANGED_SCHEMA, &[OLD_SCHEMA]);
    let decoded: ObjectChanged = codec.decode(&payload).unwrap();
    assert_eq!(decoded.bucket, "photos");
    assert_eq!(decoded.key, "a.png");
    assert_eq!(decoded.kind, ChangeKind::Delete);
    assert_eq!(decoded.source, ChangeSource::Listing);
    assert_eq!(decoded.sequencer, None, "the new field takes its default");
    assert_eq!(decoded.observed_at, 42);
}

#[test]
fn truncated_and_garbage_payloads_are_rejected_with_a_clear_error() {
    let bytes = labeled().to_bytes().unwrap();
    for cut in [0, 1, 5, 9] {
        let err = ImageLabeled::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(matches!(err, DecodeError::TooShort { .. }), "cut {cut}: {err}");
        assert!(err.to_string().contains("ImageLabeled"));
    }
    for cut in [10, 11, bytes.len() / 2, bytes.len() - 1] {
        let err = ImageLabeled::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, DecodeError::Body { .. } | DecodeError::Truncated { .. } | DecodeError::Shape { .. }),
            "cut {cut}: {err}"
        );
    }
    let err = ImageLabeled::from_bytes(b"{\"bucket\": \"json is not avro\"}").unwrap_err();
    assert!(matches!(err, DecodeError::NotSingleObject { .. }), "{err}");

    // An ObjectChanged payload is not an ImageLabeled one.
    let err = ImageLabeled::from_bytes(&change().to_bytes().unwrap()).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownSchema { .. }), "{err}");

    // Random bytes behind a valid header never panic and never decode silently.
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..200 {
        let mut payload = bytes[..10].to_vec();
        for _ in 0..(rng % 64) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            payload.push(rng as u8);
        }
        if let Ok(decoded) = ImageLabeled::from_bytes(&payload) {
            panic!("garbage decoded as {decoded:?}");
        }
    }
}

#[test]
fn extra_bytes_after_a_record_are_rejected() {
    let mut bytes = change().to_bytes().unwrap();
    bytes.push(0);
    let err = ObjectChanged::from_bytes(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::TrailingBytes { count: 1, .. }), "{err}");
}

/// The encoder serializes straight against the schema; its bytes must be exactly
/// what apache-avro's generic path (serde → Value → resolve → datum) writes, the
/// form every other Avro implementation reads.
#[test]
fn direct_encoding_matches_the_generic_value_path() {
    fn generic<T: serde::Serialize + AvroRecord>(record: &T) -> Vec<u8> {
        let schema = T::codec().schema();
        let value = apache_avro::to_value(record).unwrap().resolve(schema).unwrap();
        apache_avro::to_avro_datum(schema, value).unwrap()
    }
    let delete = ObjectChanged { kind: ChangeKind::Delete, size: None, etag: None, version_id: None, ..change() };
    for c in [change(), delete] {
        assert_eq!(c.to_bytes().unwrap()[10..], generic(&c)[..], "{c:?}");
    }
    let l = labeled();
    let mut failed = ImageLabeled::for_change(&change(), LabelKind::Failed, l.model.clone(), 5);
    failed.error = Some(LabelError { code: "CorruptImage".into(), message: "bad".into(), retryable: false });
    for r in [l, failed] {
        assert_eq!(r.to_bytes().unwrap()[10..], generic(&r)[..], "{r:?}");
    }
}

#[test]
fn a_confluent_framed_payload_without_a_registry_says_so() {
    let mut payload = vec![0, 0, 0, 0, 7];
    payload.extend_from_slice(&change().to_bytes().unwrap()[10..]);
    let err = ObjectChanged::from_bytes(&payload).unwrap_err().to_string();
    assert!(err.contains("Confluent") && err.contains("schema id 7") && err.contains("schema-registry-url"), "{err}");
}

#[test]
fn a_label_record_written_before_the_labeler_fingerprint_reads_with_none() {
    let old = Schema::parse_str(include_str!("../avro/history/images.labeled.v1.1.avsc")).unwrap();
    let apache_avro::types::Value::Record(fields) = apache_avro::to_value(labeled()).unwrap() else { panic!() };
    let fields = fields.into_iter().filter(|(name, _)| name != "labeler").collect();
    let value = apache_avro::types::Value::Record(fields).resolve(&old).unwrap();
    let mut payload = vec![0xC3, 0x01];
    payload.extend_from_slice(&old.fingerprint::<apache_avro::rabin::Rabin>().bytes);
    payload.extend_from_slice(&apache_avro::to_avro_datum(&old, value).unwrap());
    let decoded = ImageLabeled::from_bytes(&payload).unwrap();
    assert_eq!(decoded, labeled(), "every field read, and the fingerprint absent");

    let mut current = labeled();
    current.labeler = Some("0123456789abcdef".into());
    assert_eq!(ImageLabeled::from_bytes(&current.to_bytes().unwrap()).unwrap(), current);
}

#[test]
fn a_label_record_written_before_photo_metadata_reads_with_none_and_a_new_one_keeps_every_part() {
    let old = Schema::parse_str(include_str!("../avro/history/images.labeled.v1.2.avsc")).unwrap();
    let mut before = labeled();
    before.labeler = Some("0123456789abcdef".into());
    let apache_avro::types::Value::Record(fields) = apache_avro::to_value(before.clone()).unwrap() else { panic!() };
    let fields = fields.into_iter().filter(|(name, _)| name != "metadata").collect();
    let value = apache_avro::types::Value::Record(fields).resolve(&old).unwrap();
    let mut payload = vec![0xC3, 0x01];
    payload.extend_from_slice(&old.fingerprint::<apache_avro::rabin::Rabin>().bytes);
    payload.extend_from_slice(&apache_avro::to_avro_datum(&old, value).unwrap());
    assert_eq!(ImageLabeled::from_bytes(&payload).unwrap(), before, "an older record reads, with no metadata");

    let mut current = before;
    current.metadata = Some(bucketlens_schemas::PhotoMetadata {
        taken_at: Some("2019-07-14T09:30:05+09:00".into()),
        taken_from: Some("DateTimeOriginal".into()),
        camera: Some(bucketlens_schemas::Camera { make: Some("FUJIFILM".into()), model: Some("X-T30".into()) }),
        lens: Some("XF35mmF2 R WR".into()),
        exposure: Some(bucketlens_schemas::Exposure {
            focal_length_mm: Some(35.0),
            f_number: Some(2.0),
            exposure_time_s: Some(0.004),
            iso: Some(400),
        }),
        gps: Some(bucketlens_schemas::Gps { lat: 35.0116, lon: 135.7681, alt: Some(41.5) }),
        keywords: vec!["kyoto".into(), "temple".into()],
        title: Some("Morning".into()),
        caption: Some("Kiyomizu-dera at seven".into()),
        rating: Some(4),
        place: Some(bucketlens_schemas::Place {
            city: "Kyoto".into(),
            region: Some("Kyoto".into()),
            country: "Japan".into(),
            country_code: "JP".into(),
        }),
    });
    assert_eq!(ImageLabeled::from_bytes(&current.to_bytes().unwrap()).unwrap(), current);

    // A record written with metadata but before places (v1.3) reads with no place.
    let v13 = Schema::parse_str(include_str!("../avro/history/images.labeled.v1.3.avsc")).unwrap();
    let mut unplaced = current.clone();
    unplaced.metadata.as_mut().unwrap().place = None;
    let value = apache_avro::to_value(unplaced.clone()).unwrap();
    let apache_avro::types::Value::Record(mut fields) = value else { panic!() };
    for (name, field) in fields.iter_mut() {
        if name == "metadata" {
            let apache_avro::types::Value::Union(_, inner) = field else { panic!("{field:?}") };
            let apache_avro::types::Value::Record(parts) = inner.as_mut() else { panic!() };
            parts.retain(|(part, _)| part != "place");
        }
    }
    let value = apache_avro::types::Value::Record(fields).resolve(&v13).unwrap();
    let mut payload = vec![0xC3, 0x01];
    payload.extend_from_slice(&v13.fingerprint::<apache_avro::rabin::Rabin>().bytes);
    payload.extend_from_slice(&apache_avro::to_avro_datum(&v13, value).unwrap());
    assert_eq!(ImageLabeled::from_bytes(&payload).unwrap(), unplaced, "a record from before places reads");
    let mut partial = current.clone();
    partial.metadata = Some(bucketlens_schemas::PhotoMetadata { keywords: vec!["x".into()], ..Default::default() });
    assert_eq!(ImageLabeled::from_bytes(&partial.to_bytes().unwrap()).unwrap(), partial, "absent parts stay absent");
}

#[test]
fn a_change_written_before_storage_classes_reads_with_none_and_a_new_one_keeps_them() {
    let old = Schema::parse_str(include_str!("../avro/history/objects.changed.v1.1.avsc")).unwrap();
    let apache_avro::types::Value::Record(fields) = apache_avro::to_value(change()).unwrap() else { panic!() };
    let fields = fields.into_iter().filter(|(name, _)| name != "storage_class" && name != "access_tier").collect();
    let value = apache_avro::types::Value::Record(fields).resolve(&old).unwrap();
    let mut payload = vec![0xC3, 0x01];
    payload.extend_from_slice(&old.fingerprint::<apache_avro::rabin::Rabin>().bytes);
    payload.extend_from_slice(&apache_avro::to_avro_datum(&old, value).unwrap());
    let decoded = ObjectChanged::from_bytes(&payload).unwrap();
    assert_eq!(decoded, change(), "an older record reads, with no storage class");
    assert!(!decoded.archived());

    let mut current = change();
    current.storage_class = Some("INTELLIGENT_TIERING".into());
    current.access_tier = Some("DEEP_ARCHIVE_ACCESS".into());
    let read = ObjectChanged::from_bytes(&current.to_bytes().unwrap()).unwrap();
    assert_eq!(read, current);
    assert!(read.archived());
}

/// Single-object encoding names the writer schema by the fingerprint of its Parsing
/// Canonical Form as the Avro specification defines it: a logical type's primitive
/// is written by name (`"long"`), as other Avro libraries compute it. The figure is
/// fastavro 1.13.1's `fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")`
/// of the shipped images.labeled.v1.avsc, an implementation independent of ours; the
/// example consumer's test (e2e_kafka) reads our records with it.
#[test]
fn the_fingerprint_is_the_specifications_and_the_older_one_still_reads() {
    let schema = Schema::parse_str(bucketlens_schemas::IMAGES_LABELED_SCHEMA).unwrap();
    let hex: String = bucketlens_schemas::fingerprint(&schema).iter().map(|b| format!("{b:02x}")).collect();
    // (v1.7's, with `text`. v1.6's, with `embedding`, was 49eec653ad1276d3; v1.5's,
    // with `hashes` and `storage_class`, d697ca89e17d4a43, and v1.4's
    // 46c63f2242af313f, by the same means.)
    assert_eq!(hex, "e0ed83170d168ca5");
    assert!(bucketlens_schemas::canonical_form(&schema).contains(r#"{"name":"last_modified","type":["null","long"]}"#));
    let written = labeled().to_bytes().unwrap();
    assert_eq!(written[2..10], bucketlens_schemas::fingerprint(&schema));
    // A record written before, under apache-avro's own fingerprint, still reads.
    let mut older = written.clone();
    older[2..10].copy_from_slice(&schema.fingerprint::<apache_avro::rabin::Rabin>().bytes[..8]);
    assert_ne!(older, written);
    assert_eq!(ImageLabeled::from_bytes(&older).unwrap(), labeled());
}

#[test]
fn a_match_record_round_trips_and_is_single_object_encoded() {
    use bucketlens_schemas::{ImageMatched, MatchKind, MatchedLabel};
    let matched = ImageMatched {
        rule: "weapons".into(),
        bucket: "photos".into(),
        key: "a/b c.jpg".into(),
        version_id: Some("v1".into()),
        etag: None,
        kind: MatchKind::Matched,
        labels: vec![MatchedLabel { name: "Weapon".into(), confidence: 88.5 }],
        matched_at: 1_700_000_000_000,
    };
    let bytes = matched.to_bytes().unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    assert_eq!(ImageMatched::from_bytes(&bytes).unwrap(), matched);
    let unmatched = ImageMatched { kind: MatchKind::Unmatched, labels: Vec::new(), ..matched };
    assert_eq!(ImageMatched::from_bytes(&unmatched.to_bytes().unwrap()).unwrap(), unmatched);
    // A label record is not a match record.
    assert!(ImageMatched::from_bytes(&labeled().to_bytes().unwrap()).is_err());
}

#[test]
fn a_label_record_written_before_text_reads_with_none_and_a_new_one_keeps_its_lines() {
    let old = Schema::parse_str(include_str!("../avro/history/images.labeled.v1.6.avsc")).unwrap();
    let before = labeled();
    let apache_avro::types::Value::Record(fields) = apache_avro::to_value(before.clone()).unwrap() else { panic!() };
    let fields = fields.into_iter().filter(|(name, _)| name != "text").collect();
    let value = apache_avro::types::Value::Record(fields).resolve(&old).unwrap();
    let mut payload = vec![0xC3, 0x01];
    payload.extend_from_slice(&old.fingerprint::<apache_avro::rabin::Rabin>().bytes);
    payload.extend_from_slice(&apache_avro::to_avro_datum(&old, value).unwrap());
    assert_eq!(ImageLabeled::from_bytes(&payload).unwrap(), before, "an older record reads, with no text");

    let mut current = before;
    let line = |text: &str, top: f32| bucketlens_schemas::TextLine {
        text: text.into(),
        confidence: 97.5,
        bounding_box: bucketlens_schemas::BoundingBox { left: 0.1, top, width: 0.5, height: 0.08 },
    };
    current.text = Some(bucketlens_schemas::ImageText::of(vec![line("GARE DU NORD", 0.1), line("東京駅 出口", 0.3)]));
    assert_eq!(current.text.as_ref().unwrap().text, "GARE DU NORD\n東京駅 出口");
    assert_eq!(ImageLabeled::from_bytes(&current.to_bytes().unwrap()).unwrap(), current);
}

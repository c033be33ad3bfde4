//! What each target runs on an input, and the seeds it starts from.

use std::io::Cursor;
use std::path::Path;

use bucketlens_schemas::{
    AvroRecord, BoundingBox, ChangeKind, ChangeSource, ImageLabeled, ImageProperties, Instance, Label, LabelError,
    LabelKind, ModelInfo, ObjectChanged,
};

pub(crate) fn signature<T, E: std::fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => {
            // The words of the message without its data: digits and quoted parts vary.
            let text = e.to_string();
            let words: Vec<&str> = text
                .split_whitespace()
                .filter(|w| !w.contains(|c: char| c.is_ascii_digit() || c == '"'))
                .take(6)
                .collect();
            format!("err {}", words.join(" "))
        }
    }
}

pub(crate) fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

pub(crate) fn read_dir_seeds(dirs: &[&str]) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e != "md")) {
            if let Ok(bytes) = std::fs::read(&path) {
                seeds.push(bytes);
            }
        }
    }
    seeds
}

pub(crate) fn lines(dir: &str) -> Vec<Vec<u8>> {
    read_dir_seeds(&[dir])
        .iter()
        .flat_map(|f| f.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect()
}

// --- the targets ---

pub(crate) fn run_events(input: &[u8]) -> String {
    let parsed = bucketlens_events::parse(&text(input));
    match &parsed {
        Ok(p) => format!("ok changes={} bad={}", p.changes.len().min(3), p.bad.len().min(3)),
        Err(_) => signature(&parsed),
    }
}

pub(crate) fn run_manifest(input: &[u8]) -> String {
    let manifest = bucketlens_inventory::manifest::Manifest::parse(input, None);
    if let Ok(m) = &manifest {
        let _ = m.destination_bucket_name();
    }
    signature(&manifest)
}

/// The CSV reader on the columns of the seed manifest (all ten fields).
pub(crate) fn run_csv(input: &[u8]) -> String {
    let columns = bucketlens_inventory::manifest::Columns {
        bucket: 0,
        key: 1,
        version_id: Some(2),
        is_latest: Some(3),
        is_delete_marker: Some(4),
        size: Some(5),
        last_modified: Some(6),
        etag: Some(7),
        storage_class: Some(8),
        access_tier: Some(9),
    };
    let mut rows = bucketlens_inventory::rows::Rows::from_reader(Box::new(Cursor::new(input.to_vec())), columns);
    let (mut ok, mut skipped, mut bad) = (0, 0, 0);
    while let Some((_, row)) = rows.next_row() {
        match row {
            Ok(Some(_)) => ok += 1,
            Ok(None) => skipped += 1,
            Err(_) => bad += 1,
        }
    }
    format!("rows ok={} skipped={} bad={}", ok.min(3), skipped.min(3), bad.min(3))
}

pub(crate) fn sample_change(i: u32) -> ObjectChanged {
    ObjectChanged {
        bucket: "photos".into(),
        key: format!("trips/{i}/beach day.jpg"),
        version_id: match i % 2 {
            0 => Some("3HL4kqtJlcpXroDTDmJ".into()),
            _ => None,
        },
        kind: match i % 3 {
            0 => ChangeKind::Delete,
            _ => ChangeKind::Upsert,
        },
        size: Some(2048 + i64::from(i)),
        etag: Some("0123456789abcdef0123456789abcdef".into()),
        last_modified: Some(1_764_504_000_000),
        sequencer: (i % 2 == 1).then(|| "0A1B2C3D4E5F678901".into()),
        source: ChangeSource::Listing,
        observed_at: 1_764_504_000_123,
        storage_class: None,
        access_tier: None,
    }
}

pub(crate) fn avro_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let model = ModelInfo { name: "efficientnet-lite0".into(), version: "sha256:0123".into() };
    for i in 0..4 {
        let change = sample_change(i);
        seeds.push(change.to_bytes().expect("a sample record encodes"));
        let kind = [LabelKind::Removed, LabelKind::Labeled, LabelKind::Failed, LabelKind::Labeled][i as usize];
        let mut labeled = ImageLabeled::for_change(&change, kind, model.clone(), 1_764_504_001_000);
        if kind == LabelKind::Labeled {
            let bounding_box = BoundingBox { left: 0.1, top: 0.2, width: 0.5, height: 0.25 };
            labeled.labels = vec![Label {
                name: "Dog".into(),
                confidence: 91.5,
                parents: vec!["Animal".into(), "Pet".into()],
                categories: vec!["Animals and Pets".into()],
                aliases: vec!["Puppy".into()],
                instances: vec![Instance { bounding_box, confidence: 88.0 }],
            }];
            labeled.image = Some(ImageProperties { format: "jpeg".into(), width: 640, height: 427 });
            labeled.labeler = Some("a1b2c3d4".into());
        }
        if kind == LabelKind::Failed {
            labeled.error =
                Some(LabelError { code: "CorruptImage".into(), message: "cut short".into(), retryable: false });
        }
        seeds.push(labeled.to_bytes().expect("a sample record encodes"));
    }
    // The same bodies in Confluent framing (magic 0, schema id), as a registry-aware
    // producer writes them.
    let framed: Vec<Vec<u8>> = seeds.iter().map(|s| [&[0u8, 0, 0, 0, 7][..], &s[10..]].concat()).collect();
    seeds.extend(framed);
    seeds
}

/// Both records' single-object decoders; a Confluent-framed payload is first
/// reframed as the consumer does once the registry has named its schema.
pub(crate) fn run_avro(input: &[u8]) -> String {
    let mut out = String::new();
    for (record, fp) in [("ObjectChanged", ObjectChanged::codec()), ("ImageLabeled", ImageLabeled::codec())] {
        let payload = if input.first() == Some(&0) {
            bucketlens_runtime::log::registry::confluent_to_single_object(
                input,
                &bucketlens_schemas::fingerprint(fp.schema()),
            )
        } else {
            input.to_vec()
        };
        let sig = if record == "ObjectChanged" {
            signature(&ObjectChanged::from_bytes(&payload))
        } else {
            signature(&ImageLabeled::from_bytes(&payload))
        };
        out.push_str(&sig);
        out.push(';');
    }
    out
}

pub(crate) fn run_query(input: &[u8]) -> String {
    let parsed = bucketlens_index::Expr::parse(&text(input));
    if let Ok(expr) = &parsed {
        let _ = expr.positive_labels();
    }
    // The message quotes the whole query first (`invalid query "…": why`): keep the why.
    signature(&parsed.map_err(|e| e.rsplit_once("\": ").map_or(e.clone(), |(_, why)| why.to_string())))
}

pub(crate) fn image_seeds() -> Vec<Vec<u8>> {
    let pixel = |x: u32, y: u32| [(x * 9) as u8, (y * 7) as u8, ((x ^ y) * 5) as u8];
    let (w, h) = (24u32, 17u32);
    let rgb: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| pixel(x, y))).collect();
    let mut seeds = Vec::new();
    for (progressive, sampling) in [
        (false, jpeg_encoder::SamplingFactor::F_2_2),
        (true, jpeg_encoder::SamplingFactor::F_2_2),
        (false, jpeg_encoder::SamplingFactor::F_1_1),
    ] {
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 80);
        encoder.set_progressive(progressive);
        encoder.set_sampling_factor(sampling);
        encoder.encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb).expect("a small JPEG encodes");
        seeds.push(jpeg);
    }
    let mut gray = Vec::new();
    jpeg_encoder::Encoder::new(&mut gray, 80)
        .encode(&rgb[..(w * h) as usize], w as u16, h as u16, jpeg_encoder::ColorType::Luma)
        .expect("a small JPEG encodes");
    seeds.push(gray);
    for (color, depth) in [
        (png::ColorType::Rgb, png::BitDepth::Eight),
        (png::ColorType::Rgba, png::BitDepth::Sixteen),
        (png::ColorType::Grayscale, png::BitDepth::Four),
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight),
        (png::ColorType::Indexed, png::BitDepth::Two),
    ] {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if color == png::ColorType::Indexed {
            encoder.set_palette(vec![0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255]);
        }
        let row_bits = w as usize * color.samples() * depth as usize;
        let data: Vec<u8> = (0..row_bits.div_ceil(8) * h as usize).map(|i| (i * 37 % 256) as u8).collect();
        let mut writer = encoder.write_header().expect("a small PNG header");
        writer.write_image_data(&data).expect("a small PNG encodes");
        drop(writer);
        seeds.push(bytes);
    }
    // The formats the image crate decodes for the labeler: WebP, GIF, TIFF, BMP.
    let small = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 9) as u8, (y * 7) as u8, (x ^ y) as u8]));
    for format in [image::ImageFormat::WebP, image::ImageFormat::Gif, image::ImageFormat::Tiff, image::ImageFormat::Bmp]
    {
        let mut bytes = Vec::new();
        small.write_to(&mut std::io::Cursor::new(&mut bytes), format).expect("a small image encodes");
        seeds.push(bytes);
    }
    seeds
}

/// What the labeler does with an object's bytes: the header, then the decode into
/// the model's input (default max-pixels), and the detector's and thumbnails' decode.
pub(crate) fn run_image(input: &[u8]) -> String {
    let header = bucketlens_labeler::image::properties(input).map_err(|f| f.message);
    let prepared = bucketlens_labeler::image::prepare(input, 100_000_000).map_err(|f| f.message);
    let _ = bucketlens_labeler::image::decode(input, 100_000_000, 512);
    format!("{} / {}", signature(&header), signature(&prepared))
}

/// Tagged JPEGs as a camera and Lightroom write them, and one with IPTC.
pub(crate) fn metadata_seeds() -> Vec<Vec<u8>> {
    use bucketlens_labeler::metadata::tagging::{iptc_block, tag_jpeg};
    use bucketlens_schemas::{Camera, Exposure, Gps, PhotoMetadata};
    let jpeg = image_seeds().remove(0);
    let full = PhotoMetadata {
        taken_at: Some("2019-07-14T09:30:05+09:00".into()),
        camera: Some(Camera { make: Some("FUJIFILM".into()), model: Some("X-T30".into()) }),
        lens: Some("XF35mmF2 R WR".into()),
        exposure: Some(Exposure {
            focal_length_mm: Some(35.0),
            f_number: Some(2.8),
            exposure_time_s: Some(0.004),
            iso: Some(400),
        }),
        gps: Some(Gps { lat: 35.0, lon: 135.75, alt: Some(40.0) }),
        keywords: vec!["temple".into(), "Places|Japan|Kyoto".into()],
        title: Some("Morning".into()),
        caption: Some("fish & chips".into()),
        rating: Some(4),
        ..PhotoMetadata::default()
    };
    let dated = PhotoMetadata { taken_at: Some("2021-03-04T05:06:07".into()), ..PhotoMetadata::default() };
    let mut with_iptc = tag_jpeg(&jpeg, &dated);
    let block = iptc_block(Some("Title"), &["a", "café"], Some("caption"));
    let mut segment = vec![0xFF, 0xED];
    segment.extend_from_slice(&((block.len() + 2) as u16).to_be_bytes());
    segment.extend_from_slice(&block);
    with_iptc.splice(2..2, segment);
    vec![tag_jpeg(&jpeg, &full), with_iptc]
}

pub(crate) fn run_metadata(input: &[u8]) -> String {
    let mut notes = Vec::new();
    let options = bucketlens_labeler::metadata::MetadataOptions::default();
    let found = bucketlens_labeler::metadata::read(input, &options, &mut notes);
    let parts = found.map_or(0, |m| {
        [m.taken_at.is_some(), m.camera.is_some(), m.gps.is_some(), !m.keywords.is_empty(), m.title.is_some()]
            .iter()
            .filter(|p| **p)
            .count()
    });
    // The kind of each note (its words before any number or quote), not its values.
    let kinds: Vec<String> = notes.iter().take(3).map(|n| n.split(['"', ':']).take(2).collect::<String>()).collect();
    format!("parts={parts} notes={}", kinds.join("|"))
}

/// A probability map (first two bytes: width and height, 1 to 255; then one byte a
/// pixel, /255, the input repeated to fill it) through DB's box decoding, reading
/// order and CTC. Every box must lie in the image it is scaled to.
pub(crate) fn run_text_boxes(input: &[u8]) -> String {
    use bucketlens_labeler::analyzers::text::decode;
    let (Some(&w), Some(&h)) = (input.first(), input.get(1)) else { return "short".into() };
    let (w, h) = (usize::from(w.max(1)), usize::from(h.max(1)));
    let pixels = &input[2..];
    let map: Vec<f32> =
        (0..w * h).map(|i| if pixels.is_empty() { 0.0 } else { f32::from(pixels[i % pixels.len()]) / 255.0 }).collect();
    let (to_w, to_h) = (w as f32 * 3.5, h as f32 * 2.0);
    let mut boxes = decode::boxes(&map, w, h, to_w, to_h);
    decode::reading_order(&mut boxes, decode::Quad::bounds);
    for b in &boxes {
        let (l, t, r, bottom) = b.bounds();
        assert!(l >= 0.0 && t >= 0.0 && r <= to_w && bottom <= to_h, "a box outside the image: {b:?}");
        assert!((0.0..=1.0).contains(&b.score), "a score outside 0-1: {b:?}");
    }
    let characters: Vec<String> = ["", "a", "b", "c", " "].iter().map(|s| s.to_string()).collect();
    let (text, confidence) = decode::ctc(&map, 5, &characters);
    assert!((0.0..=1.0).contains(&confidence), "CTC's confidence {confidence}");
    format!("boxes={} text={}", boxes.len().min(4), text.len().min(4))
}

//! Writes a photo's metadata into a JPEG, as a camera and Lightroom would: EXIF
//! (APP1), an XMP packet (APP1) and IPTC (APP13), right after the start of the image.
//! The tests make their photos with it, and the tagged example photos the README
//! searches (`examples/tagged`); [`super::read`] is what reads them back.

use bucketlens_schemas::{PhotoMetadata, Taken};
use exif::{experimental::Writer, Field, In, Rational, Tag, Value};

fn ascii(tag: Tag, text: &str) -> Field {
    Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) }
}

fn rational(value: f64) -> Rational {
    // Six decimals are finer than any camera records (a GPS second to 0.03 m).
    Rational { num: (value * 1_000_000.0).round() as u32, denom: 1_000_000 }
}

fn rationals(tag: Tag, values: &[f64]) -> Field {
    Field { tag, ifd_num: In::PRIMARY, value: Value::Rational(values.iter().map(|v| rational(*v)).collect()) }
}

/// Degrees as EXIF writes them: whole degrees, whole minutes, seconds.
fn dms(degrees: f64) -> [f64; 3] {
    let d = degrees.abs().trunc();
    let m = ((degrees.abs() - d) * 60.0).trunc();
    [d, m, (degrees.abs() - d - m / 60.0) * 3600.0]
}

/// The EXIF block (`Exif\0\0` and a big-endian TIFF) for `metadata`'s camera facts.
pub fn exif_block(metadata: &PhotoMetadata) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some(camera) = &metadata.camera {
        fields.extend(camera.make.as_deref().map(|m| ascii(Tag::Make, m)));
        fields.extend(camera.model.as_deref().map(|m| ascii(Tag::Model, m)));
    }
    fields.extend(metadata.lens.as_deref().map(|l| ascii(Tag::LensModel, l)));
    if let Some(at) = metadata.taken_at.as_deref().and_then(|t| Taken::parse_iso(t).ok()) {
        let text =
            format!("{:04}:{:02}:{:02} {:02}:{:02}:{:02}", at.year, at.month, at.day, at.hour, at.minute, at.second);
        fields.push(ascii(Tag::DateTimeOriginal, &text));
        if let Some(m) = at.offset_minutes {
            let sign = if m < 0 { '-' } else { '+' };
            fields.push(ascii(Tag::OffsetTimeOriginal, &format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)));
        }
    }
    if let Some(exposure) = &metadata.exposure {
        fields.extend(exposure.focal_length_mm.map(|v| rationals(Tag::FocalLength, &[f64::from(v)])));
        fields.extend(exposure.f_number.map(|v| rationals(Tag::FNumber, &[f64::from(v)])));
        fields.extend(exposure.exposure_time_s.map(|v| rationals(Tag::ExposureTime, &[f64::from(v)])));
        fields.extend(exposure.iso.map(|v| Field {
            tag: Tag::PhotographicSensitivity,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![v.clamp(0, 65535) as u16]),
        }));
    }
    if let Some(gps) = &metadata.gps {
        fields.push(ascii(Tag::GPSLatitudeRef, if gps.lat < 0.0 { "S" } else { "N" }));
        fields.push(rationals(Tag::GPSLatitude, &dms(gps.lat)));
        fields.push(ascii(Tag::GPSLongitudeRef, if gps.lon < 0.0 { "W" } else { "E" }));
        fields.push(rationals(Tag::GPSLongitude, &dms(gps.lon)));
        if let Some(alt) = gps.alt {
            fields.push(Field {
                tag: Tag::GPSAltitudeRef,
                ifd_num: In::PRIMARY,
                value: Value::Byte(vec![u8::from(alt < 0.0)]),
            });
            fields.push(rationals(Tag::GPSAltitude, &[alt.abs()]));
        }
    }
    if fields.is_empty() {
        fields.push(Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![1]) });
    }
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    // Writing to memory fails only on fields the writer cannot lay out; ours it can.
    writer.write(&mut tiff, false).unwrap_or_default();
    let mut block = b"Exif\0\0".to_vec();
    block.extend_from_slice(tiff.get_ref());
    block
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn list(kind: &str, items: &[String]) -> String {
    let items: String = items.iter().map(|i| format!("<rdf:li>{}</rdf:li>", escaped(i))).collect();
    format!("<rdf:{kind}>{items}</rdf:{kind}>")
}

/// An XMP packet with `metadata`'s words: keywords (`dc:subject`, and any keyword
/// holding `|` as a Lightroom hierarchical subject), title, caption and rating.
pub fn xmp_packet(metadata: &PhotoMetadata) -> String {
    let (hierarchical, flat): (Vec<String>, Vec<String>) =
        metadata.keywords.iter().cloned().partition(|k| k.contains('|'));
    let mut body = String::new();
    if !flat.is_empty() {
        body.push_str(&format!("<dc:subject>{}</dc:subject>", list("Bag", &flat)));
    }
    if !hierarchical.is_empty() {
        body.push_str(&format!("<lr:hierarchicalSubject>{}</lr:hierarchicalSubject>", list("Bag", &hierarchical)));
    }
    let alt = |text: &str| format!("<rdf:Alt><rdf:li xml:lang=\"x-default\">{}</rdf:li></rdf:Alt>", escaped(text));
    if let Some(title) = &metadata.title {
        body.push_str(&format!("<dc:title>{}</dc:title>", alt(title)));
    }
    if let Some(caption) = &metadata.caption {
        body.push_str(&format!("<dc:description>{}</dc:description>", alt(caption)));
    }
    let rating = metadata.rating.map(|r| format!(" xmp:Rating=\"{r}\"")).unwrap_or_default();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" xmlns:lr=\"http://ns.adobe.com/lightroom/1.0/\"{rating}>\
         {body}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    )
}

/// `jpeg` with `metadata` written into it (and whatever metadata it had still after
/// ours, where readers that take the first find ours).
pub fn tag_jpeg(jpeg: &[u8], metadata: &PhotoMetadata) -> Vec<u8> {
    let segment = |marker: u8, body: &[u8]| {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(body);
        s
    };
    let mut out = jpeg[..2.min(jpeg.len())].to_vec();
    out.extend(segment(0xE1, &exif_block(metadata)));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(xmp_packet(metadata).as_bytes());
    out.extend(segment(0xE1, &xmp));
    out.extend_from_slice(jpeg.get(2..).unwrap_or_default());
    out
}

/// IPTC-IIM datasets (record 2) for keywords, a title and a caption, in Photoshop's
/// image resource block, as APP13 carries them.
pub fn iptc_block(title: Option<&str>, keywords: &[&str], caption: Option<&str>) -> Vec<u8> {
    let mut iim = Vec::new();
    let mut dataset = |number: u8, text: &str| {
        iim.extend_from_slice(&[0x1C, 2, number]);
        iim.extend_from_slice(&(text.len() as u16).to_be_bytes());
        iim.extend_from_slice(text.as_bytes());
    };
    title.into_iter().for_each(|t| dataset(5, t));
    keywords.iter().for_each(|k| dataset(25, k));
    caption.into_iter().for_each(|c| dataset(120, c));
    let mut block = b"Photoshop 3.0\08BIM\x04\x04\0\0".to_vec();
    block.extend_from_slice(&(iim.len() as u32).to_be_bytes());
    block.extend_from_slice(&iim);
    if iim.len() % 2 == 1 {
        block.push(0);
    }
    block
}

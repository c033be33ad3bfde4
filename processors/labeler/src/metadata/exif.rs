//! EXIF, through the `kamadak-exif` crate (JPEG, TIFF, HEIF/AVIF, PNG `eXIf`, WebP):
//! when, with what camera and lens, the exposure, and where. A field that cannot be
//! true (a date in year 0, a latitude of 95°, a rational over zero) is dropped with a
//! note; the others stay.

use bucketlens_schemas::{Camera, Exposure, Gps, Taken};
use exif::{Exif, Field, In, Tag, Value};

/// What the EXIF holds that bucketlens keeps, each part checked.
#[derive(Debug, Default)]
pub struct ExifFound {
    /// (the field it came from, the time).
    pub taken: Option<(&'static str, Taken)>,
    pub camera: Option<Camera>,
    pub lens: Option<String>,
    pub exposure: Option<Exposure>,
    pub gps: Option<Gps>,
    pub caption: Option<String>,
    /// A TIFF's XMP packet (tag 700) and IPTC (tag 33723), which other containers
    /// keep outside the EXIF.
    pub xmp: Option<Vec<u8>>,
    pub iptc: Option<Vec<u8>>,
}

/// The longest camera, lens or caption text kept, in characters.
const MAX_TEXT: usize = 256;

pub fn read(bytes: &[u8], latest_year: i32, notes: &mut Vec<String>) -> ExifFound {
    let mut cursor = std::io::Cursor::new(bytes);
    let exif = match exif::Reader::new().continue_on_error(true).read_from_container(&mut cursor) {
        Ok(exif) => exif,
        Err(e) => match e.distill_partial_result(|errors| {
            for error in errors {
                notes.push(format!("EXIF: {error} (the rest is read)"));
            }
        }) {
            Ok(exif) => exif,
            // No EXIF at all is the common case, not worth a note.
            Err(exif::Error::NotFound(_)) => return ExifFound::default(),
            Err(e) => {
                notes.push(format!("EXIF: {e}"));
                return ExifFound::default();
            }
        },
    };
    let text = |tag: Tag, notes: &mut Vec<String>| ascii(exif.get_field(tag, In::PRIMARY), tag, notes);
    let make = text(Tag::Make, notes);
    let model = text(Tag::Model, notes);
    let camera = (make.is_some() || model.is_some()).then_some(Camera { make, model });
    let exposure = Exposure {
        focal_length_mm: positive(&exif, Tag::FocalLength, notes),
        f_number: positive(&exif, Tag::FNumber, notes),
        exposure_time_s: positive(&exif, Tag::ExposureTime, notes),
        iso: exif
            .get_field(Tag::PhotographicSensitivity, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .filter(|&iso| iso > 0)
            .and_then(|iso| i32::try_from(iso).ok()),
    };
    let exposure = (exposure != Exposure::default()).then_some(exposure);
    ExifFound {
        taken: taken(&exif, latest_year, notes),
        camera,
        lens: text(Tag::LensModel, notes),
        exposure,
        gps: gps(&exif, notes),
        caption: text(Tag::ImageDescription, notes),
        xmp: raw(&exif, 700),
        iptc: raw(&exif, 33723),
    }
}

/// An ASCII field's first string, trimmed; invalid UTF-8 is dropped with a note.
fn ascii(field: Option<&Field>, tag: Tag, notes: &mut Vec<String>) -> Option<String> {
    let Value::Ascii(strings) = &field?.value else { return None };
    let bytes = strings.first()?;
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            (!text.is_empty()).then(|| text.chars().take(MAX_TEXT).collect())
        }
        Err(_) => {
            notes.push(format!("EXIF: {tag} is not UTF-8 text, dropped"));
            None
        }
    }
}

fn rational(field: Option<&Field>, index: usize) -> Option<f64> {
    match &field?.value {
        Value::Rational(v) => v.get(index).filter(|r| r.denom != 0).map(|r| r.to_f64()),
        Value::SRational(v) => v.get(index).filter(|r| r.denom != 0).map(|r| r.to_f64()),
        _ => None,
    }
}

fn positive(exif: &Exif, tag: Tag, notes: &mut Vec<String>) -> Option<f32> {
    let field = exif.get_field(tag, In::PRIMARY)?;
    match rational(Some(field), 0) {
        Some(v) if v.is_finite() && v > 0.0 && v < 100_000.0 => Some(v as f32),
        _ => {
            notes.push(format!("EXIF: {tag} {} is not a positive number, dropped", field.display_value()));
            None
        }
    }
}

/// DateTimeOriginal (with OffsetTimeOriginal), else DateTimeDigitized (with its
/// offset), else the GPS date and time (UTC).
fn taken(exif: &Exif, latest_year: i32, notes: &mut Vec<String>) -> Option<(&'static str, Taken)> {
    let local = [
        ("DateTimeOriginal", Tag::DateTimeOriginal, Tag::OffsetTimeOriginal),
        ("CreateDate", Tag::DateTimeDigitized, Tag::OffsetTimeDigitized),
    ];
    for (name, tag, offset_tag) in local {
        let Some(field) = exif.get_field(tag, In::PRIMARY) else { continue };
        let Value::Ascii(strings) = &field.value else { continue };
        let Some(text) = strings.first() else { continue };
        let parsed = exif::DateTime::from_ascii(text).map_err(|e| e.to_string()).and_then(|mut at| {
            if let Some(Value::Ascii(offset)) = exif.get_field(offset_tag, In::PRIMARY).map(|f| &f.value) {
                // A blank or odd offset leaves the time local.
                let _ = offset.first().map(|o| at.parse_offset(o));
            }
            Taken {
                year: i32::from(at.year),
                month: u32::from(at.month),
                day: u32::from(at.day),
                hour: u32::from(at.hour),
                minute: u32::from(at.minute),
                second: u32::from(at.second),
                offset_minutes: at.offset.map(i32::from),
            }
            .check(latest_year)
        });
        match parsed {
            Ok(at) => return Some((name, at)),
            Err(why) => notes.push(format!("EXIF: {tag} {:?} dropped: {why}", String::from_utf8_lossy(text))),
        }
    }
    let date = exif.get_field(Tag::GPSDateStamp, In::PRIMARY)?;
    let Value::Ascii(strings) = &date.value else { return None };
    let text = String::from_utf8_lossy(strings.first()?).replace(':', "-");
    let time = exif.get_field(Tag::GPSTimeStamp, In::PRIMARY);
    let hms: Vec<u32> = (0..3).map(|i| rational(time, i).map_or(0, |v| v as u32)).collect();
    let parsed = Taken::parse_iso(&format!("{text}T{:02}:{:02}:{:02}Z", hms[0], hms[1], hms[2]))
        .and_then(|at| at.check(latest_year));
    match parsed {
        Ok(at) => Some(("GPSDateTime", at)),
        Err(why) => {
            notes.push(format!("EXIF: GPSDateStamp {text:?} dropped: {why}"));
            None
        }
    }
}

/// Degrees, minutes and seconds, with the hemisphere's sign.
fn degrees(exif: &Exif, tag: Tag, hemisphere: Tag, negative: u8) -> Option<f64> {
    let field = exif.get_field(tag, In::PRIMARY);
    let (d, m, s) = (rational(field, 0)?, rational(field, 1).unwrap_or(0.0), rational(field, 2).unwrap_or(0.0));
    let sign = match exif.get_field(hemisphere, In::PRIMARY).map(|f| &f.value) {
        Some(Value::Ascii(v))
            if v.first().and_then(|r| r.first()).is_some_and(|c| c.eq_ignore_ascii_case(&negative)) =>
        {
            -1.0
        }
        _ => 1.0,
    };
    Some(sign * (d + m / 60.0 + s / 3600.0))
}

fn gps(exif: &Exif, notes: &mut Vec<String>) -> Option<Gps> {
    let lat = degrees(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S');
    let lon = degrees(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W');
    let (lat, lon) = match (lat, lon) {
        (Some(lat), Some(lon)) => (lat, lon),
        (None, None) => return None,
        _ => {
            notes.push("EXIF: GPS has a latitude or a longitude but not both, dropped".into());
            return None;
        }
    };
    if !(lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0) {
        notes.push(format!("EXIF: GPS {lat},{lon} is off the globe, dropped"));
        return None;
    }
    if lat == 0.0 && lon == 0.0 {
        notes.push("EXIF: GPS 0,0 is a receiver without a fix, dropped".into());
        return None;
    }
    let below = exif.get_field(Tag::GPSAltitudeRef, In::PRIMARY).and_then(|f| f.value.get_uint(0)) == Some(1);
    let alt = rational(exif.get_field(Tag::GPSAltitude, In::PRIMARY), 0)
        .map(|a| if below { -a } else { a })
        .filter(|a| a.is_finite() && (-12_000.0..=100_000.0).contains(a));
    Some(Gps { lat, lon, alt })
}

/// The bytes of a TIFF tag of the first image, by number.
fn raw(exif: &Exif, number: u16) -> Option<Vec<u8>> {
    let field = exif.fields().find(|f| f.tag.number() == number && f.ifd_num == In::PRIMARY)?;
    match &field.value {
        Value::Byte(bytes) | Value::Undefined(bytes, _) => Some(bytes.clone()),
        _ => None,
    }
}

//! What a photo says about itself: when, with what and where it was taken, and how a
//! person tagged it. Read from the object's bytes (EXIF, XMP, IPTC) by both backends,
//! beside the analyzers: no model, no decode. See [`PhotoMetadata`] for the fields.
//!
//! Where the sources overlap, the camera's own record wins for the facts (EXIF for
//! the time, camera, lens, exposure and place; XMP's dates only where the EXIF has
//! none) and a person's latest word wins for the words: XMP before IPTC for title
//! and caption, the EXIF ImageDescription last; keywords from all of them, once each.
//!
//! Bad metadata never fails an image: each field that cannot be read or cannot be
//! true is dropped, and a note says why (the stage logs it at debug, naming the
//! object).

mod containers;
mod exif;
mod iptc;
pub mod places;
pub mod tagging;
mod xmp;

#[cfg(test)]
mod tests;

use bucketlens_schemas::{PhotoMetadata, Taken};
use serde::{Deserialize, Serialize};

/// What to keep of a photo's GPS position (`labeler.metadata.gps`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpsSetting {
    /// Latitude, longitude and altitude, as recorded, and the place they name.
    #[default]
    Exact,
    /// The place only (town or city, region, country): no coordinates.
    Place,
    /// No position and no place.
    Off,
}

/// Knobs of the metadata reader (from `[labeler.metadata]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    pub enabled: bool,
    pub gps: GpsSetting,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        Self { enabled: true, gps: GpsSetting::Exact }
    }
}

/// Title and caption are kept to this many characters.
const MAX_WORDS: usize = 2000;
/// Each keyword, to this many.
const MAX_KEYWORD: usize = 200;

/// The latest year a photo can have been taken in: next year (a camera a time zone
/// ahead, on New Year's Eve), by this machine's clock.
fn latest_year() -> i32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (now / 86_400) as i64;
    // 1970 plus whole years of 365.2425 days, rounded up: at most a year too late.
    1970 + (days as f64 / 365.2425) as i32 + 1
}

/// Reads what `bytes` say about the photo; `None` when off or when nothing was found.
/// `notes` gets a line for each part dropped.
pub fn read(bytes: &[u8], options: &MetadataOptions, notes: &mut Vec<String>) -> Option<PhotoMetadata> {
    if !options.enabled {
        return None;
    }
    let found = exif::read(bytes, latest_year(), notes);
    let packets = containers::find(bytes);
    let xmp_bytes = packets.xmp.or(found.xmp.as_deref());
    let xmp = xmp_bytes.map(|packet| xmp::read(packet, notes)).unwrap_or_default();
    let iptc = packets.iptc.or(found.iptc.as_deref()).map(|record| iptc::read(record, notes)).unwrap_or_default();

    let mut metadata = PhotoMetadata {
        camera: found.camera,
        lens: found.lens,
        exposure: found.exposure,
        place: match options.gps {
            GpsSetting::Off => None,
            _ => found.gps.as_ref().and_then(|gps| places::table().name(gps.lat, gps.lon)),
        },
        gps: if options.gps == GpsSetting::Exact { found.gps } else { None },
        ..PhotoMetadata::default()
    };
    let taken = found.taken.or_else(|| xmp_date(&xmp.dates, notes));
    if let Some((from, at)) = taken {
        metadata.taken_at = Some(at.iso());
        metadata.taken_from = Some(from.to_string());
    }
    metadata.title = xmp.title.or(iptc.title).map(|t| cut(&t, MAX_WORDS));
    metadata.caption = xmp.caption.or(iptc.caption).or(found.caption).map(|t| cut(&t, MAX_WORDS));
    metadata.rating = xmp.rating.as_deref().and_then(|r| rating(r, notes));
    let levels = xmp.hierarchical.iter().flat_map(|h| h.split('|'));
    let mut seen = std::collections::HashSet::new();
    for keyword in xmp.keywords.iter().map(String::as_str).chain(levels).chain(iptc.keywords.iter().map(String::as_str))
    {
        let keyword = cut(keyword.trim(), MAX_KEYWORD);
        if !keyword.is_empty() && seen.insert(keyword.to_lowercase()) && seen.len() <= xmp::MAX_KEYWORDS {
            metadata.keywords.push(keyword);
        }
    }
    (!metadata.is_empty()).then_some(metadata)
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// XMP's dates, in the order a person would trust them.
fn xmp_date(dates: &[(&'static str, String)], notes: &mut Vec<String>) -> Option<(&'static str, Taken)> {
    for name in ["DateTimeOriginal", "DateCreated", "CreateDate"] {
        for (_, text) in dates.iter().filter(|(n, _)| *n == name) {
            match Taken::parse_iso(text).and_then(|at| at.check(latest_year())) {
                Ok(at) => return Some((name, at)),
                Err(why) => notes.push(format!("XMP: {name} {text:?} dropped: {why}")),
            }
        }
    }
    None
}

/// 0 to 5 stars; Lightroom's -1 (rejected) reads as 0.
fn rating(text: &str, notes: &mut Vec<String>) -> Option<i32> {
    match text.trim().parse::<f32>() {
        Ok(r) if (-1.0..=5.0).contains(&r) => Some(r.round().max(0.0) as i32),
        _ => {
            notes.push(format!("XMP: Rating {text:?} is not -1 to 5, dropped"));
            None
        }
    }
}

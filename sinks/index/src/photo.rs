//! What both index backends keep of a photo's metadata, for the query language's
//! field qualifiers (`year:`, `taken:`, `camera:`, `lens:`, `keyword:`): the time as
//! its camera's clock showed it ([`bucketlens_schemas::taken`]) and the lowercased
//! terms of its camera, lens and keywords.

use bucketlens_schemas::PhotoMetadata;

/// The metadata field a qualifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Make or model.
    Camera,
    Lens,
    Keyword,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Lens => "lens",
            Self::Keyword => "keyword",
        }
    }
}

/// A text as the terms hold it: lowercase, single spaces.
pub fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Each text whole, and each of its words: `camera:"x-t30"`, `camera:fujifilm` and
/// `camera:"fujifilm x-t30"` (all its words) find a FUJIFILM X-T30.
fn terms_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut terms = Vec::new();
    for text in texts {
        let whole = normalized(text);
        terms.extend(whole.split(' ').map(str::to_string));
        terms.push(whole);
    }
    terms.retain(|t| !t.is_empty());
    terms.sort();
    terms.dedup();
    terms
}

/// The terms a document holds for `field`.
pub fn terms(metadata: &PhotoMetadata, field: Field) -> Vec<String> {
    match field {
        Field::Camera => {
            let camera = metadata.camera.as_ref();
            terms_of(camera.into_iter().flat_map(|c| [c.make.as_deref(), c.model.as_deref()]).flatten())
        }
        Field::Lens => terms_of(metadata.lens.as_deref()),
        Field::Keyword => terms_of(metadata.keywords.iter().map(String::as_str)),
    }
}

/// The wall-clock time it was taken, ms since the epoch as if UTC.
pub fn taken_ms(metadata: &PhotoMetadata) -> Option<i64> {
    metadata.taken().map(|t| t.wall_clock_ms())
}

/// The terms a search value must all match: the value whole, or all of its words.
pub fn wanted(value: &str) -> (String, Vec<String>) {
    let whole = normalized(value);
    let words = whole.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect();
    (whole, words)
}

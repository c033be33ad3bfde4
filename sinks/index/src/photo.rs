//! What both index backends keep of a photo's metadata, for the query language's
//! field qualifiers (`year:`, `taken:`, `camera:`, `lens:`, `keyword:`, `country:`,
//! `city:`, `place:`): the time as its camera's clock showed it
//! ([`bucketlens_schemas::taken`]) and the folded terms (lowercase, accents and
//! ligatures to ASCII) of its camera, lens, keywords and place.

use bucketlens_schemas::PhotoMetadata;

/// The metadata field a qualifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Make or model.
    Camera,
    Lens,
    Keyword,
    /// The country's name or its ISO code (`country:jp`).
    Country,
    City,
    /// Any level: city, region or country.
    Place,
}

impl Field {
    pub const ALL: [Field; 6] = [Self::Camera, Self::Lens, Self::Keyword, Self::Country, Self::City, Self::Place];

    pub fn name(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Lens => "lens",
            Self::Keyword => "keyword",
            Self::Country => "country",
            Self::City => "city",
            Self::Place => "place",
        }
    }

    /// The field a qualifier names (lowercase).
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A text as the terms hold it: lowercase, single spaces.
pub fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// [`normalized`], with accents and ligatures folded to ASCII as search engines fold
/// them (tantivy's ASCII folding, Lucene's table): `Zürich`, `Köln`, `São Paulo` and
/// `café` are found by `zurich`, `koln`, `sao paulo` and `cafe`.
pub fn folded(text: &str) -> String {
    use tantivy::tokenizer::{AsciiFoldingFilter, RawTokenizer, TextAnalyzer};
    let whole = normalized(text);
    if whole.is_ascii() {
        return whole;
    }
    let mut analyzer = TextAnalyzer::builder(RawTokenizer::default()).filter(AsciiFoldingFilter).build();
    let mut stream = analyzer.token_stream(&whole);
    let mut out = whole.clone();
    if stream.advance() {
        out = stream.token().text.clone();
    }
    out
}

/// Each text whole, and each of its words: `camera:"x-t30"`, `camera:fujifilm` and
/// `camera:"fujifilm x-t30"` (all its words) find a FUJIFILM X-T30.
fn terms_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut terms = Vec::new();
    for text in texts {
        let whole = folded(text);
        terms.extend(whole.split([' ', '-']).map(str::to_string));
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
        Field::Country => terms_of(metadata.place.iter().flat_map(|p| [p.country.as_str(), p.country_code.as_str()])),
        Field::City => terms_of(metadata.place.iter().map(|p| p.city.as_str())),
        Field::Place => terms_of(
            metadata
                .place
                .iter()
                .flat_map(|p| [Some(p.city.as_str()), p.region.as_deref(), Some(p.country.as_str())])
                .flatten(),
        ),
    }
}

/// The facets a search counts over the matches, as a person reads each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    /// The year taken, by the camera's clock (`2019`).
    Year,
    /// Make and model, the make said once (`FUJIFILM X-T30`, `Canon EOS 5D Mark IV`).
    Camera,
    /// The country's name.
    Country,
}

impl Facet {
    pub const ALL: [Facet; 3] = [Self::Year, Self::Camera, Self::Country];

    /// Its name in the API's `facets`.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Year => "years",
            Self::Camera => "cameras",
            Self::Country => "countries",
        }
    }

    /// The index field holding the value (both backends).
    pub fn field(self) -> &'static str {
        match self {
            Self::Year => "facet_year",
            Self::Camera => "facet_camera",
            Self::Country => "facet_country",
        }
    }

    pub fn value(self, metadata: &PhotoMetadata) -> Option<String> {
        match self {
            Self::Year => metadata.taken().map(|t| t.year.to_string()),
            Self::Camera => metadata.camera.as_ref().and_then(camera_name),
            Self::Country => metadata.place.as_ref().map(|p| p.country.clone()),
        }
    }
}

/// Make and model as one name, the make said once: most models repeat it
/// ("Canon EOS 5D Mark IV").
pub fn camera_name(camera: &bucketlens_schemas::Camera) -> Option<String> {
    let model = camera.model.as_deref().unwrap_or_default().trim();
    let make =
        camera.make.as_deref().map(str::trim).filter(|make| !model.to_lowercase().starts_with(&make.to_lowercase()));
    let name = [make, Some(model)].into_iter().flatten().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

/// The wall-clock time it was taken, ms since the epoch as if UTC.
pub fn taken_ms(metadata: &PhotoMetadata) -> Option<i64> {
    metadata.taken().map(|t| t.wall_clock_ms())
}

/// The terms a search value must all match: the value whole, or all of its words.
pub fn wanted(value: &str) -> (String, Vec<String>) {
    let whole = folded(value);
    let words = whole.split([' ', '-']).filter(|w| !w.is_empty()).map(str::to_string).collect();
    (whole, words)
}

/// How many words a phrase term of [`text_terms`] holds at most: a longer phrase
/// matches when each of its runs of this many words does.
pub const TEXT_PHRASE_WORDS: usize = 5;

/// The words of a photo's text (or a `text:` value) as the index keeps them: full-
/// and half-width forms alike (NFKC), lowercase, accents folded to ASCII; split at
/// what is neither letter nor digit, and each CJK ideograph, kana or hangul
/// syllable a word of its own (CJK text has no spaces to split at).
pub fn text_words(line: &str) -> Vec<String> {
    let wide = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(line);
    let folded = folded(&wide);
    let mut words = Vec::new();
    let mut word = String::new();
    for c in folded.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            words.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.push(c);
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A CJK ideograph, kana or hangul syllable.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The terms a document holds for its text: each word, and each run of two to
/// [`TEXT_PHRASE_WORDS`] words of a line joined by spaces (so that a phrase matches
/// as a phrase, `"gare du nord"`, not as three words anywhere).
pub fn text_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for line in text.lines() {
        let words = text_words(line);
        for start in 0..words.len() {
            for end in start + 1..=(start + TEXT_PHRASE_WORDS).min(words.len()) {
                terms.push(words[start..end].join(" "));
            }
        }
    }
    terms.sort();
    terms.dedup();
    terms
}

/// The terms a `text:` value needs, all of them: its one word, its phrase, or each
/// run of [`TEXT_PHRASE_WORDS`] words of a longer phrase. Empty when it has no word.
pub fn text_wanted(value: &str) -> Vec<String> {
    let words = text_words(value);
    if words.len() <= TEXT_PHRASE_WORDS {
        return if words.is_empty() { Vec::new() } else { vec![words.join(" ")] };
    }
    words.windows(TEXT_PHRASE_WORDS).map(|w| w.join(" ")).collect()
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn text_matches_words_and_phrases_whatever_their_case_accents_or_width() {
        let terms = text_terms("GARE DU NORD\nSortie → Café Crème\nＥＸＩＴ ４２\n東京駅 Tokyo");
        let has = |value: &str| {
            let wanted = text_wanted(value);
            !wanted.is_empty() && wanted.iter().all(|w| terms.contains(w))
        };
        assert!(has("gare du nord"));
        assert!(has("Gare"));
        assert!(has("cafe creme"), "accents folded");
        assert!(has("exit 42"), "full-width forms are their ASCII ones");
        assert!(has("EXIT"));
        assert!(has("東京"), "CJK by its characters");
        assert!(has("駅"));
        assert!(!has("nord gare"), "a phrase is in its order");
        assert!(!has("du sortie"), "a phrase is within one line");
        assert!(!has("gar"), "whole words");
        assert!(!has("---"));
        assert!(!has("京都"));
    }

    #[test]
    fn a_phrase_longer_than_the_terms_hold_matches_run_by_run() {
        let terms = text_terms("one two three four five six seven");
        let wanted = text_wanted("two three four five six seven");
        assert_eq!(wanted.len(), 2);
        assert!(wanted.iter().all(|w| terms.contains(w)));
        assert!(!text_wanted("one two three four five seven six").iter().all(|w| terms.contains(w)));
    }
}

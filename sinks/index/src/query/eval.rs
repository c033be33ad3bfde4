//! The query language evaluated on one label record, in memory, as both index
//! backends would answer it for that record's document: standing queries (`act`)
//! ask "does this object match?" of each record as it arrives, with no index.
//!
//! It must agree with the backends: the same names and aliases, the confidence
//! compared in the index's tenths of a percent, the same metadata terms.

use bucketlens_schemas::{ImageLabeled, LabelKind};

use super::Expr;
use crate::photo;

/// Tenths of a percent, rounded as the index stores and queries them.
fn tenths(percent: f32) -> u32 {
    (percent * 10.0).round().clamp(0.0, 1000.0) as u32
}

impl Expr {
    /// Whether `record`'s object, labeled, matches this expression with its labels
    /// at `min_confidence` (percent) or above; see [`Expr::at_confidence`] for what
    /// a minimum means where no label is asked for. Removed and failed outcomes
    /// never match: a search finds labeled documents only.
    pub fn matches(&self, record: &ImageLabeled, min_confidence: f32) -> bool {
        if record.kind != LabelKind::Labeled {
            return false;
        }
        self.at_confidence(min_confidence).holds(record, tenths(min_confidence))
    }

    fn holds(&self, record: &ImageLabeled, min: u32) -> bool {
        match self {
            Self::All => true,
            Self::Label(name) => record.labels.iter().any(|l| {
                tenths(l.confidence) >= min
                    && std::iter::once(&l.name).chain(&l.aliases).any(|n| n.to_lowercase() == *name)
            }),
            Self::AnyLabel => record.labels.iter().any(|l| tenths(l.confidence) >= min),
            Self::Name(text) => {
                let name = record.key.rsplit('/').next().unwrap_or_default();
                name.to_lowercase().contains(text.as_str())
            }
            Self::Meta(field, value) => {
                let Some(metadata) = &record.metadata else { return false };
                let terms = photo::terms(metadata, *field);
                let (whole, words) = photo::wanted(value);
                terms.contains(&whole) || (!words.is_empty() && words.iter().all(|w| terms.contains(w)))
            }
            Self::Text(value) => {
                let Some(text) = &record.text else { return false };
                let terms = photo::text_terms(&text.text);
                let wanted = photo::text_wanted(value);
                !wanted.is_empty() && wanted.iter().all(|w| terms.contains(w))
            }
            Self::Taken(from, to) => {
                record.metadata.as_ref().and_then(photo::taken_ms).is_some_and(|at| (*from..*to).contains(&at))
            }
            Self::And(items) => items.iter().all(|e| e.holds(record, min)),
            Self::Or(items) => items.iter().any(|e| e.holds(record, min)),
            Self::Not(inner) => !inner.holds(record, min),
        }
    }
}

#[cfg(test)]
mod tests {
    use bucketlens_schemas::{Camera, ImageLabeled, Label, LabelKind, ModelInfo, PhotoMetadata};

    use crate::query::Expr;

    fn label(name: &str, confidence: f32, aliases: &[&str]) -> Label {
        Label {
            name: name.into(),
            confidence,
            parents: Vec::new(),
            categories: Vec::new(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            instances: Vec::new(),
        }
    }

    fn record(key: &str, labels: Vec<Label>) -> ImageLabeled {
        ImageLabeled {
            text: None,
            bucket: "photos".into(),
            key: key.into(),
            version_id: None,
            etag: None,
            size: Some(10),
            last_modified: None,
            sequencer: None,
            kind: LabelKind::Labeled,
            labels,
            image: None,
            model: ModelInfo { name: "m".into(), version: "1".into() },
            labeled_at: 0,
            error: None,
            labeler: None,
            metadata: Some(PhotoMetadata {
                taken_at: Some("2019-07-14T10:00:00".into()),
                camera: Some(Camera { make: Some("FUJIFILM".into()), model: Some("X-T30".into()) }),
                ..PhotoMetadata::default()
            }),
            hashes: None,
            embedding: None,
            storage_class: None,
        }
    }

    fn matches(query: &str, record: &ImageLabeled, min: f32) -> bool {
        Expr::parse(query).unwrap().matches(record, min)
    }

    #[test]
    fn labels_aliases_and_confidence_match_as_the_index_answers() {
        let cat = record("trip/IMG_20.jpg", vec![label("Cat", 91.26, &[]), label("Person", 40.0, &["human"])]);
        assert!(matches("cat", &cat, 0.0));
        assert!(matches("cats", &cat, 0.0), "a plural finds its singular");
        assert!(matches("human", &cat, 0.0), "an alias finds its label");
        assert!(!matches("dog", &cat, 0.0));
        assert!(matches("cat AND NOT dog", &cat, 0.0));
        assert!(!matches("cat AND NOT person", &cat, 0.0));
        assert!(matches("cat AND NOT person", &cat, 50.0), "Person under the minimum is not there");
        // The index compares tenths of a percent: 91.26 is 91.3 there.
        assert!(matches("cat", &cat, 91.3));
        assert!(!matches("cat", &cat, 91.4));
        assert!(matches("-dog -person", &cat, 50.0), "only NOTs: everything but those");
        assert!(!matches("*", &cat, 95.0), "a minimum with no label asked for: some label at it");
        assert!(matches("*", &cat, 90.0));
    }

    #[test]
    fn file_names_and_metadata_fields_match() {
        let cat = record("trip/IMG_20.jpg", vec![label("Cat", 91.0, &[])]);
        assert!(matches("name:img_2", &cat, 0.0));
        assert!(!matches("name:trip", &cat, 0.0), "the folder is not the file name");
        assert!(matches("year:2019 AND camera:\"x-t30\"", &cat, 0.0));
        assert!(matches("camera:fujifilm", &cat, 0.0));
        assert!(matches("taken:2019-07", &cat, 0.0));
        assert!(!matches("taken:2019-08", &cat, 0.0));
        assert!(!matches("keyword:invoice", &cat, 0.0));
    }

    #[test]
    fn removed_and_failed_outcomes_never_match() {
        let mut gone = record("a.jpg", vec![label("Cat", 99.0, &[])]);
        gone.kind = LabelKind::Removed;
        assert!(!matches("cat", &gone, 0.0));
        assert!(!matches("*", &gone, 0.0));
        gone.kind = LabelKind::Failed;
        assert!(!matches("-dog", &gone, 0.0));
    }
}

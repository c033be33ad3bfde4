//! The analyzers: each looks at one image and adds what it finds to the record.
//!
//! An analyzer is a small unit with one job. The local labeler ([`crate::local`])
//! reads each object once, decodes it once (large enough for every enabled
//! analyzer: see [`Analyzer::side`]), runs the enabled analyzers in order on the
//! labeling threads, and merges what they found into the one `images.labeled.v1`
//! record. None of them knows about the log, the ledger or the stage.
//!
//! - [`classifier`]: EfficientNet-Lite (ImageNet-1k, or a user's own classifier): the
//!   labels, named by the hierarchy ([`crate::names`]). Always on; it runs first.
//! - [`faces`]: BlazeFace: `Face` (a box per face), `Head` and `Person` (`labeler.faces`).
//! - [`objects`]: the SSD detector of 23 Open Images classes, with boxes (`labeler.objects`).
//! - [`detector`]: the optional COCO-80 detector a user fetches (`labeler.detector`).
//! - [`embedder`]: a CLIP-class model's image tower a user fetches
//!   (`labeler.embedder`): the embedding that search by meaning compares phrases with.
//! - [`text`]: PP-OCR's detector, direction classifier and recogniser: the words in
//!   the photo, line by line with boxes, and a `Text` label (`labeler.text`).
//! - [`boxes`]: what the detectors share: a detection, its box, non-maximum
//!   suppression, and how detections join the labels.
//!
//! A new analyzer is a module here implementing [`Analyzer`], its key in the
//! `[labeler]` section (`config.rs`, carried in [`crate::local::LocalOptions`]), and
//! one line in [`crate::local::enabled`]. What it finds that labels cannot carry goes
//! into [`LabelSet`] as an optional field, and into the record as an optional field
//! with a default, so that older records stay readable.

pub mod boxes;
pub mod classifier;
pub mod detector;
pub mod embedder;
pub mod faces;
pub mod objects;
pub mod text;

use ::image::RgbImage;
use bucketlens_schemas::{ImageProperties, Label};

use crate::labeler::{LabelFailure, LabelSet};
use crate::names::Hierarchy;

/// One image as every analyzer sees it: read once, decoded once.
pub struct Picture<'a> {
    /// The object's bytes, as read.
    pub bytes: &'a [u8],
    /// The decoded image, oriented as displayed, its short side at least the largest
    /// [`Analyzer::side`] of the enabled analyzers (or the whole image, if smaller).
    pub rgb: &'a RgbImage,
    /// Format and size, from the header.
    pub properties: &'a ImageProperties,
}

/// What the analyzers share when they name what they found: the classifier's
/// hierarchy (parents, aliases, categories) and the labeler's floor.
pub struct Naming {
    pub hierarchy: Hierarchy,
    /// Nothing under this confidence (0–100) becomes a label (`labeler.min-confidence`).
    pub min_confidence: f32,
    /// At most this many labels an image (`labeler.max-labels`).
    pub max_labels: usize,
    /// The hierarchy's `Person` label, shaped once (the faces add to it).
    pub person: Option<Label>,
}

impl Naming {
    pub fn new(hierarchy: Hierarchy, min_confidence: f32, max_labels: usize) -> Self {
        let person = hierarchy.shaped("Person");
        Self { hierarchy, min_confidence, max_labels, person }
    }

    /// The label of `name` as the hierarchy shapes it; a name it does not know gets
    /// the object classes' parents ([`objects::fallback_parents`]).
    pub fn shape(&self, name: &str) -> Label {
        self.hierarchy.shaped(name).unwrap_or_else(|| boxes::plain(name, objects::fallback_parents(name)))
    }

    /// Adds a detector's findings to `labels` ([`boxes::merge`]); what it found under
    /// `min-confidence` is no label either.
    pub fn add_detections(&self, labels: &mut Vec<Label>, found: Vec<boxes::Detection>) {
        let sure: Vec<boxes::Detection> = found.into_iter().filter(|d| d.confidence >= self.min_confidence).collect();
        *labels = boxes::merge(std::mem::take(labels), &sure, |name| self.shape(name));
    }
}

/// One analyzer of images.
pub trait Analyzer: Send + Sync {
    /// Its part of the model's name and of its version, written into every record
    /// (`blazeface` and the first bytes of its weights' SHA-256): a changed analyzer
    /// is a changed labeler, whose labels are not kept.
    fn model(&self) -> (&str, &str);

    /// The short side it needs the decoded image to have, at least.
    fn side(&self) -> u32;

    /// Adds what it finds in `picture` to `found`. CPU work, on the labeling threads.
    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure>;
}

//! Faces: MediaPipe's BlazeFace full-range detector (Apache-2.0, in
//! `models/blazeface/`), run on the engine on the decoded image the classifier uses.
//!
//! Each face becomes an instance of a `Face` label, with `Head` and `Person` above it,
//! as Rekognition names them, so a search for `person` or `face` finds photos of
//! people, which ImageNet's classes cannot see.
//!
//! It sees faces in the whole image letterboxed into 192×192 (a wide image also in
//! squares along its long side, where each face is larger). It cannot see a person
//! whose face is hidden, nor tell who anyone is: no identity, age or expression is read.

use std::sync::Arc;

use crate::engine::{Engine, Net};
use crate::image::resize_rgb;
use bucketlens_schemas::{error_codes, BoundingBox, Instance, Label};
use image::RgbImage;

use super::boxes::{corners_box, iou};
use super::{Analyzer, Naming, Picture};
use crate::labeler::{LabelFailure, LabelSet, ModelError};

static BUILTIN_FACES: &[u8] = include_bytes!("../../../../models/blazeface/face_detection_full_range.onnx");

/// The detector's input side.
const SIDE: u32 = 192;
/// Anchors: one per cell of a 48×48 grid (stride 4), all of size 1.
const GRID: usize = 48;
/// Overlapping detections of one face are merged above this IoU.
const MERGE_IOU: f32 = 0.3;
/// A wide image is also searched in at most this many squares along its long side…
const MAX_TILES: u32 = 6;
/// …when its short side has at least this many pixels.
const MIN_TILE: u32 = 64;
/// The category Rekognition gives people's labels.
const PERSON_DESCRIPTION: &str = "Person Description";

/// One face: where (fractions of the displayed image) and how sure (0–100).
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub confidence: f32,
    pub bounding_box: BoundingBox,
}

/// The face detector, loaded once.
#[derive(Clone)]
pub struct Faces {
    net: Arc<Net>,
    /// The first bytes of the model file's SHA-256, hex: part of the model version.
    pub digest: String,
    /// Faces under this confidence (0–100) are dropped.
    min_confidence: f32,
}

impl Faces {
    /// The built-in detector, with `sessions` ONNX Runtime sessions (see
    /// [`crate::local::Sessions`]). Slow-ish (a few hundred ms): call it once.
    pub fn load(engine: &Engine, sessions: usize, min_confidence: f32) -> Result<Self, ModelError> {
        let side = SIDE as usize;
        let (net, digest) =
            Net::load_versioned(engine, BUILTIN_FACES, &[1, 3, side, side], sessions, "the face detector")?;
        Ok(Self { net, digest, min_confidence })
    }

    /// The faces in `rgb`, most confident first. CPU work: call from the blocking pool.
    ///
    /// A wide image (one side at least 1.8 times the other: a panorama, a row of
    /// people) is also searched in overlapping squares along its long side, where each
    /// face is larger in the detector's 192 pixels; every finding is merged.
    pub fn detect(&self, rgb: &RgbImage) -> Result<Vec<Face>, LabelFailure> {
        let mut found = self.detect_whole(rgb)?;
        let (w, h) = rgb.dimensions();
        let (long, short) = (w.max(h), w.min(h));
        if short >= MIN_TILE && long * 5 >= short * 9 {
            // Squares overlapping by half, spread evenly, at most MAX_TILES of them.
            let count = ((long - short).div_ceil(short / 2) + 1).min(MAX_TILES);
            for i in 0..count {
                let offset = (u64::from(long - short) * u64::from(i) / u64::from(count - 1)) as u32;
                let (x, y) = if w >= h { (offset, 0) } else { (0, offset) };
                for face in self.detect_in(rgb, (x, y, short, short))? {
                    let b = face.bounding_box;
                    let (sx, sy) = (short as f32 / w as f32, short as f32 / h as f32);
                    let (x1, y1) = (x as f32 / w as f32 + b.left * sx, y as f32 / h as f32 + b.top * sy);
                    let (x2, y2) = ((x1 + b.width * sx).min(1.0), (y1 + b.height * sy).min(1.0));
                    let bounding_box = corners_box(x1, y1, x2, y2);
                    found.push(Face { confidence: face.confidence, bounding_box });
                }
            }
            found = merge_overlapping(found);
        }
        Ok(found)
    }

    /// The faces in `rgb` seen whole, letterboxed into the detector's square.
    fn detect_whole(&self, rgb: &RgbImage) -> Result<Vec<Face>, LabelFailure> {
        self.detect_in(rgb, (0, 0, rgb.width(), rgb.height()))
    }

    /// The faces in the `(left, top, width, height)` part of `rgb`, in fractions of
    /// that part.
    fn detect_in(&self, rgb: &RgbImage, part: (u32, u32, u32, u32)) -> Result<Vec<Face>, LabelFailure> {
        let (tensor, fit) = letterbox(rgb, part)?;
        let mut regressors = None;
        let mut scores = None;
        for output in self.net.run(tensor)? {
            match output.shape.last() {
                Some(16) => regressors = Some(output.values),
                Some(1) => scores = Some(output.values),
                _ => {}
            }
        }
        let (Some(regressors), Some(scores)) = (regressors, scores) else {
            return Err(LabelFailure::permanent(error_codes::MODEL_ERROR, "the face detector gave unexpected outputs"));
        };
        Ok(decode(&regressors, &scores, self.min_confidence).into_iter().filter_map(|f| fit.back(f)).collect())
    }
}

impl Analyzer for Faces {
    fn model(&self) -> (&str, &str) {
        ("blazeface", &self.digest)
    }

    /// It letterboxes the image (or squares of a wide one) into its 192 pixels.
    fn side(&self) -> u32 {
        SIDE
    }

    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        let faces = self.detect(picture.rgb)?;
        found.labels = merge(std::mem::take(&mut found.labels), &faces, naming.person.clone(), naming.min_confidence);
        Ok(())
    }
}

/// How the image was fitted into the square: scale and borders, in input pixels.
struct Fit {
    width: f32,
    height: f32,
    left: f32,
    top: f32,
}

impl Fit {
    /// A face from square fractions back to fractions of the image, clipped to it.
    fn back(&self, face: Face) -> Option<Face> {
        let s = SIDE as f32;
        let b = face.bounding_box;
        let x1 = ((b.left * s - self.left) / self.width).clamp(0.0, 1.0);
        let y1 = ((b.top * s - self.top) / self.height).clamp(0.0, 1.0);
        let x2 = (((b.left + b.width) * s - self.left) / self.width).clamp(0.0, 1.0);
        let y2 = (((b.top + b.height) * s - self.top) / self.height).clamp(0.0, 1.0);
        (x2 > x1 && y2 > y1).then_some(Face { confidence: face.confidence, bounding_box: corners_box(x1, y1, x2, y2) })
    }
}

/// The `(left, top, width, height)` part of the image fitted into 192², aspect kept,
/// centred on black; NCHW floats in [-1, 1].
fn letterbox(rgb: &RgbImage, part: (u32, u32, u32, u32)) -> Result<(Vec<f32>, Fit), LabelFailure> {
    let (_, _, w, h) = part;
    let scale = SIDE as f32 / w.max(h).max(1) as f32;
    let (fw, fh) =
        (((w as f32 * scale).round() as u32).clamp(1, SIDE), ((h as f32 * scale).round() as u32).clamp(1, SIDE));
    let resized = resize_rgb(rgb, part, fw, fh)?;
    let (left, top) = ((SIDE - fw) / 2, (SIDE - fh) / 2);
    let plane = (SIDE * SIDE) as usize;
    let mut tensor = vec![-1f32; 3 * plane];
    for (x, y, p) in resized.enumerate_pixels() {
        let i = ((y + top) * SIDE + x + left) as usize;
        for c in 0..3 {
            tensor[c * plane + i] = f32::from(p[c]) / 127.5 - 1.0;
        }
    }
    let fit = Fit { width: fw as f32, height: fh as f32, left: left as f32, top: top as f32 };
    Ok((tensor, fit))
}

/// Raw outputs → faces in square fractions: anchors decoded, scores through the
/// sigmoid, overlapping detections merged ([`merge_overlapping`]).
fn decode(regressors: &[f32], scores: &[f32], min_confidence: f32) -> Vec<Face> {
    let s = SIDE as f32;
    let mut candidates: Vec<Face> = Vec::new();
    for (i, (r, &logit)) in regressors.chunks_exact(16).zip(scores).enumerate().take(GRID * GRID) {
        let confidence = 100.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
        if confidence < min_confidence {
            continue;
        }
        let ax = ((i % GRID) as f32 + 0.5) / GRID as f32;
        let ay = ((i / GRID) as f32 + 0.5) / GRID as f32;
        let (cx, cy, w, h) = (r[0] / s + ax, r[1] / s + ay, r[2] / s, r[3] / s);
        if w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite() {
            let bounding_box = BoundingBox { left: cx - w / 2.0, top: cy - h / 2.0, width: w, height: h };
            candidates.push(Face { confidence, bounding_box });
        }
    }
    merge_overlapping(candidates)
}

/// Detections of one face (IoU > 0.3 with the most confident) merged into one, its box
/// the score-weighted average, its confidence the best; most confident first.
fn merge_overlapping(mut candidates: Vec<Face>) -> Vec<Face> {
    candidates.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut faces = Vec::new();
    while let Some(best) = candidates.first().cloned() {
        let (cluster, rest): (Vec<Face>, Vec<Face>) =
            candidates.into_iter().partition(|c| iou(&best.bounding_box, &c.bounding_box) > MERGE_IOU);
        candidates = rest;
        let total: f32 = cluster.iter().map(|c| c.confidence).sum();
        let mean =
            |f: fn(&BoundingBox) -> f32| cluster.iter().map(|c| f(&c.bounding_box) * c.confidence).sum::<f32>() / total;
        let bounding_box = BoundingBox {
            left: mean(|b| b.left),
            top: mean(|b| b.top),
            width: mean(|b| b.width),
            height: mean(|b| b.height),
        };
        faces.push(Face { confidence: best.confidence, bounding_box });
    }
    faces
}

/// Adds `Face` (one instance per face), `Head` and `Person` to the classifier's
/// labels, as confident as the most confident face (a `Person` the classifier named
/// already keeps the higher of the two). `person` is the classifier's own shape of
/// the `Person` label, when it has one (aliases, category).
pub fn merge(mut labels: Vec<Label>, faces: &[Face], person: Option<Label>, min_confidence: f32) -> Vec<Label> {
    let Some(best) = faces.iter().map(|f| f.confidence).reduce(f32::max) else {
        return labels;
    };
    if best < min_confidence {
        return labels;
    }
    let shaped = |name: &str, parents: &[&str]| Label {
        name: name.to_string(),
        confidence: best,
        parents: parents.iter().map(|p| p.to_string()).collect(),
        categories: vec![PERSON_DESCRIPTION.to_string()],
        aliases: Vec::new(),
        instances: Vec::new(),
    };
    let mut face = shaped("Face", &["Head", "Person"]);
    face.instances =
        faces.iter().map(|f| Instance { bounding_box: f.bounding_box, confidence: f.confidence }).collect();
    let person = person.map(|p| Label { confidence: best, ..p }).unwrap_or_else(|| shaped("Person", &[]));
    for add in [face, shaped("Head", &["Person"]), person] {
        match labels.iter_mut().find(|l| l.name == add.name) {
            Some(existing) => {
                existing.confidence = existing.confidence.max(add.confidence);
                existing.instances.extend(add.instances);
            }
            None => labels.push(add),
        }
    }
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    labels
}

#[cfg(test)]
mod tests;

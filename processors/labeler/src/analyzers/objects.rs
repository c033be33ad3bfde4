//! Objects: MediaPipe's SSD MobileNetV2 detector, trained on 23 classes of Open
//! Images V4 (people, cars, vehicles, bicycles, cats, dogs, chairs, tables, laptops,
//! bottles, cups, books, cameras, shoes…; Apache-2.0, in `models/ssd-oidv4/`), run
//! on the engine on the decoded image the classifier uses. On by default.
//!
//! Each class found becomes a label with one instance and box per object, shaped as
//! the classifier's label of that name (parents, aliases, category), with its parents
//! as labels too, the way Rekognition returns them ([`super::boxes::merge`]).
//!
//! It sees only its 23 classes ([`CLASSES`]), in the whole image stretched to 300×300:
//! small objects in a large photo are often missed.

use std::sync::Arc;

use super::boxes::{corners_box, suppress, Detection};
use super::{Analyzer, Naming, Picture};
use crate::engine::{Engine, Net, Output};
use crate::image::resize_rgb;
use crate::labeler::{LabelFailure, LabelSet, ModelError};
use bucketlens_schemas::error_codes;
use image::RgbImage;

static BUILTIN_OBJECTS: &[u8] = include_bytes!("../../../../models/ssd-oidv4/ssd_mobilenetv2_oidv4.onnx");

/// The detector's input side: the whole image is stretched to 300×300, as MediaPipe
/// does for this model (it was trained so; a box stretched back is the object's).
pub const SIDE: u32 = 300;
/// At most this many objects from one image (the most confident).
const MAX_OBJECTS: usize = 50;
/// Box encodings are scaled by these, as in the TensorFlow Object Detection API's
/// SSD box coder: centre y and x, then height and width (as logarithms).
const CENTRE_SCALE: f32 = 10.0;
const SIZE_SCALE: f32 = 5.0;

/// The model's classes in its order, by the names the labels take (class 0 is the
/// background). The Open Images names are used where the classifier has the same
/// name; otherwise the name Rekognition uses: "Computer mouse" is `Mouse`, "Computer
/// monitor" `Monitor`, "Stationary bicycle" `Exercise Bike`, "High heels" `High Heel`.
/// Each class's parents, when the classifier's hierarchy does not know the name.
pub const CLASSES: [(&str, &[&str]); 24] = [
    ("", &[]),
    ("Bicycle", &[]),
    ("Boot", &[]),
    ("Laptop", &[]),
    ("Person", &[]),
    ("Chair", &[]),
    ("Cattle", &[]),
    ("Desk", &[]),
    ("Cat", &[]),
    ("Mouse", &[]),
    ("Monitor", &[]),
    ("Box", &[]),
    ("Mug", &[]),
    ("Coffee Cup", &["Drinking Vessel"]),
    ("Exercise Bike", &[]),
    ("Table", &[]),
    ("Bottle", &[]),
    ("High Heel", &["Shoe"]),
    ("Vehicle", &[]),
    ("Footwear", &[]),
    ("Dog", &[]),
    ("Book", &[]),
    ("Camera", &[]),
    ("Car", &[]),
];

/// The object detector, loaded once.
#[derive(Clone)]
pub struct Objects {
    net: Arc<Net>,
    /// Centre x, centre y, width, height of each anchor box, fractions of the image.
    anchors: Arc<Vec<[f32; 4]>>,
    /// The first bytes of the model file's SHA-256, hex: part of the model version.
    pub digest: String,
    /// Objects under this confidence (0–100) are dropped.
    min_confidence: f32,
}

impl Objects {
    /// The built-in detector, with `sessions` ONNX Runtime sessions (see
    /// [`crate::local::Sessions`] for how many). Slow-ish (a few hundred ms): call it once.
    pub fn load(engine: &Engine, sessions: usize, min_confidence: f32) -> Result<Self, ModelError> {
        let side = SIDE as usize;
        let (net, digest) =
            Net::load_versioned(engine, BUILTIN_OBJECTS, &[1, 3, side, side], sessions, "the object detector")?;
        Ok(Self { net, anchors: Arc::new(anchors()), digest, min_confidence })
    }

    /// The objects in `rgb`, most confident first. CPU work: call from the blocking pool.
    pub fn detect(&self, rgb: &RgbImage) -> Result<Vec<Detection>, LabelFailure> {
        let resized = resize_rgb(rgb, (0, 0, rgb.width(), rgb.height()), SIDE, SIDE)?;
        let plane = (SIDE * SIDE) as usize;
        let mut tensor = vec![0f32; 3 * plane];
        for (i, p) in resized.pixels().enumerate() {
            for c in 0..3 {
                tensor[c * plane + i] = f32::from(p[c]) / 127.5 - 1.0;
            }
        }
        let (boxes, logits) = split_outputs(self.net.run(tensor)?, self.anchors.len())?;
        Ok(decode(&self.anchors, &boxes, &logits, self.min_confidence))
    }
}

impl Analyzer for Objects {
    fn model(&self) -> (&str, &str) {
        ("ssd-oidv4", &self.digest)
    }

    /// The whole image is stretched to its 300×300.
    fn side(&self) -> u32 {
        SIDE
    }

    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        naming.add_detections(&mut found.labels, self.detect(picture.rgb)?);
        Ok(())
    }
}

/// The model's two outputs, box encodings and class logits, one of each per anchor;
/// any other shape is the model's error, which fails the image.
fn split_outputs(outputs: Vec<Output>, anchors: usize) -> Result<(Vec<f32>, Vec<f32>), LabelFailure> {
    let mut boxes = None;
    let mut logits = None;
    for output in outputs {
        match output.shape.last() {
            Some(4) => boxes = Some(output.values),
            Some(&n) if n == CLASSES.len() => logits = Some(output.values),
            _ => {}
        }
    }
    let (Some(boxes), Some(logits)) = (boxes, logits) else {
        return Err(LabelFailure::permanent(error_codes::MODEL_ERROR, "the object detector gave unexpected outputs"));
    };
    if boxes.len() != anchors * 4 || logits.len() != anchors * CLASSES.len() {
        return Err(LabelFailure::permanent(
            error_codes::MODEL_ERROR,
            format!(
                "the object detector gave {} boxes and {} class scores for {anchors} anchors",
                boxes.len() / 4,
                logits.len() / CLASSES.len()
            ),
        ));
    }
    Ok((boxes, logits))
}

/// The anchor boxes of MediaPipe's `SsdAnchorsCalculator` for this model: six feature
/// maps (strides 16 to 512 on 300 pixels: 19², 10², 5², 3², 2², 1²), scales from 0.2
/// to 0.95, aspect ratios 1, 2, ½, 3 and ⅓ plus one between this scale and the next;
/// the first map has three (scale 0.1 at ratio 1, then 2 and ½). 1917 in all, in the
/// order of the model's outputs: map, row, column, anchor.
fn anchors() -> Vec<[f32; 4]> {
    const STRIDES: [u32; 6] = [16, 32, 64, 128, 256, 512];
    const RATIOS: [f32; 5] = [1.0, 2.0, 0.5, 3.0, 0.3333];
    let (min_scale, max_scale) = (0.2f32, 0.95f32);
    let scale = |layer: usize| min_scale + (max_scale - min_scale) * layer as f32 / (STRIDES.len() - 1) as f32;
    let mut anchors = Vec::new();
    for (layer, stride) in STRIDES.iter().enumerate() {
        let cells = SIDE.div_ceil(*stride);
        let shapes: Vec<(f32, f32)> = if layer == 0 {
            vec![(0.1, 1.0), (scale(0), 2.0), (scale(0), 0.5)]
        } else {
            let next = if layer + 1 == STRIDES.len() { 1.0 } else { scale(layer + 1) };
            RATIOS.iter().map(|&r| (scale(layer), r)).chain([((scale(layer) * next).sqrt(), 1.0)]).collect()
        };
        for y in 0..cells {
            for x in 0..cells {
                let (cx, cy) = ((x as f32 + 0.5) / cells as f32, (y as f32 + 0.5) / cells as f32);
                anchors.extend(shapes.iter().map(|&(s, r)| [cx, cy, s * r.sqrt(), s / r.sqrt()]));
            }
        }
    }
    anchors
}

/// Raw outputs → kept objects: each class's score through the sigmoid, boxes
/// decoded from their anchors and clipped to the image, overlapping boxes of one
/// class suppressed; most confident first, at most [`MAX_OBJECTS`].
fn decode(anchors: &[[f32; 4]], boxes: &[f32], logits: &[f32], min_confidence: f32) -> Vec<Detection> {
    // The sigmoid is monotonic: compare logits, not probabilities.
    let p = (min_confidence / 100.0).clamp(1e-6, 1.0 - 1e-6);
    let min_logit = (p / (1.0 - p)).ln();
    let mut candidates = Vec::new();
    for ((anchor, b), scores) in anchors.iter().zip(boxes.chunks_exact(4)).zip(logits.chunks_exact(CLASSES.len())) {
        let [ax, ay, aw, ah] = *anchor;
        let cy = b[0] / CENTRE_SCALE * ah + ay;
        let cx = b[1] / CENTRE_SCALE * aw + ax;
        let h = (b[2] / SIZE_SCALE).clamp(-20.0, 20.0).exp() * ah;
        let w = (b[3] / SIZE_SCALE).clamp(-20.0, 20.0).exp() * aw;
        let (x1, y1) = ((cx - w / 2.0).clamp(0.0, 1.0), (cy - h / 2.0).clamp(0.0, 1.0));
        let (x2, y2) = ((cx + w / 2.0).clamp(0.0, 1.0), (cy + h / 2.0).clamp(0.0, 1.0));
        if !(x2 > x1 && y2 > y1) {
            continue;
        }
        for (class, &logit) in scores.iter().enumerate().skip(1) {
            if logit >= min_logit {
                candidates.push(Detection {
                    name: CLASSES[class].0,
                    confidence: 100.0 / (1.0 + (-logit).exp()),
                    bounding_box: corners_box(x1, y1, x2, y2),
                });
            }
        }
    }
    let mut kept = suppress(candidates);
    kept.truncate(MAX_OBJECTS);
    kept
}

/// The parents a class's label gets where the hierarchy does not know its name.
pub fn fallback_parents(name: &str) -> &'static [&'static str] {
    CLASSES.iter().find(|(n, _)| *n == name).map_or(&[], |(_, parents)| parents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchors_are_the_1917_of_the_models_outputs_laid_out_by_map_row_column() {
        let a = anchors();
        assert_eq!(a.len(), 1917);
        // The first: the top-left cell of the 19×19 map, the small square of scale 0.1.
        assert!((a[0][0] - 0.5 / 19.0).abs() < 1e-6 && (a[0][2] - 0.1).abs() < 1e-6, "{:?}", a[0]);
        // The second anchor of a cell is twice as wide as tall (ratio 2).
        assert!((a[1][2] / a[1][3] - 2.0).abs() < 1e-4, "{:?}", a[1]);
        // The last: the single cell of the 1×1 map, the one between 0.95 and 1.
        let last = a[1916];
        assert!((last[0] - 0.5).abs() < 1e-6 && (last[2] - (0.95f32).sqrt()).abs() < 1e-5, "{last:?}");
        // 19²·3 anchors come before the 10×10 map; its first is centred on its first cell.
        assert!((a[1083][0] - 0.05).abs() < 1e-6 && (a[1083][2] - 0.35).abs() < 1e-6, "{:?}", a[1083]);
    }

    #[test]
    fn outputs_of_the_wrong_shape_are_the_models_error_not_labels() {
        let output = |shape: Vec<usize>| Output { values: vec![0.0; shape.iter().product()], shape };
        let right = || vec![output(vec![1, 1917, 4]), output(vec![1, 1917, CLASSES.len()])];
        let (boxes, logits) = split_outputs(right(), 1917).unwrap();
        assert_eq!((boxes.len(), logits.len()), (1917 * 4, 1917 * CLASSES.len()));
        let failure = split_outputs(right(), 1014).unwrap_err();
        assert_eq!((failure.code, failure.retryable), (error_codes::MODEL_ERROR, false));
        assert!(failure.message.contains("1917 boxes and 1917 class scores for 1014 anchors"), "{}", failure.message);
        let failure = split_outputs(vec![output(vec![1, 1917, 4]), output(vec![1, 1917, 91])], 1917).unwrap_err();
        assert!(failure.message.contains("unexpected outputs"), "{}", failure.message);
        assert!(split_outputs(Vec::new(), 1917).is_err(), "no outputs at all");
    }

    #[test]
    fn an_encoded_box_decodes_around_its_anchor_and_the_background_is_never_a_label() {
        let anchors = vec![[0.5, 0.5, 0.2, 0.4], [0.25, 0.25, 0.1, 0.1]];
        // The first anchor: moved right by half its width, twice as tall; a person (class 4).
        let boxes = [0.0, 5.0, 5.0 * 2f32.ln(), 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut logits = vec![-10.0; 2 * CLASSES.len()];
        logits[4] = 2.0; // Person, 88%
        logits[CLASSES.len()] = 9.0; // the second anchor: background only
        let found = decode(&anchors, &boxes, &logits, 50.0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "Person");
        assert!((found[0].confidence - 88.08).abs() < 0.01, "{}", found[0].confidence);
        let b = found[0].bounding_box;
        assert!((b.left - 0.5).abs() < 1e-5 && (b.width - 0.2).abs() < 1e-5, "{b:?}");
        assert!((b.top - 0.1).abs() < 1e-5 && (b.height - 0.8).abs() < 1e-5, "{b:?}");
        assert!(decode(&anchors, &boxes, &logits, 90.0).is_empty(), "under the confidence asked for");
    }
}

//! The optional COCO object detector (MobileNetV3-CenterNet, converted to ONNX by
//! `models/centernet/fetch`): people, cars, dogs… with bounding boxes.
//!
//! Input NHWC `[1, 512, 512, 3]`, raw 0–255 (the /255 is folded into the first
//! convolution); the image is stretched to 512×512, so a box in 512-space divided by
//! 512 is the box as a fraction of the image. Output `[1, 100, 6]`: x1, y1, x2, y2,
//! score, class (0-based COCO-80). Here: a score threshold, per-class non-maximum
//! suppression, boxes clipped to the image, one label per class with its instances.
//!
//! It sees COCO's 80 classes only; opt-in (`labeler.detector`), fetched by the user.

use std::path::Path;
use std::sync::Arc;

use crate::engine::{Engine, Net};
use crate::image::resize_rgb;
use ::image::RgbImage;

use super::boxes::{corners_box, suppress, Detection};
use super::{Analyzer, Naming, Picture};
use crate::labeler::{LabelFailure, LabelSet, ModelError};

pub const INPUT_SIDE: u32 = 512;

/// COCO-80 class names, in the model's (0-based) order, Title Case as labels are.
pub const COCO_CLASSES: [&str; 80] = [
    "Person",
    "Bicycle",
    "Car",
    "Motorcycle",
    "Airplane",
    "Bus",
    "Train",
    "Truck",
    "Boat",
    "Traffic Light",
    "Fire Hydrant",
    "Stop Sign",
    "Parking Meter",
    "Bench",
    "Bird",
    "Cat",
    "Dog",
    "Horse",
    "Sheep",
    "Cow",
    "Elephant",
    "Bear",
    "Zebra",
    "Giraffe",
    "Backpack",
    "Umbrella",
    "Handbag",
    "Tie",
    "Suitcase",
    "Frisbee",
    "Skis",
    "Snowboard",
    "Sports Ball",
    "Kite",
    "Baseball Bat",
    "Baseball Glove",
    "Skateboard",
    "Surfboard",
    "Tennis Racket",
    "Bottle",
    "Wine Glass",
    "Cup",
    "Fork",
    "Knife",
    "Spoon",
    "Bowl",
    "Banana",
    "Apple",
    "Sandwich",
    "Orange",
    "Broccoli",
    "Carrot",
    "Hot Dog",
    "Pizza",
    "Donut",
    "Cake",
    "Chair",
    "Couch",
    "Potted Plant",
    "Bed",
    "Dining Table",
    "Toilet",
    "TV",
    "Laptop",
    "Mouse",
    "Remote",
    "Keyboard",
    "Cell Phone",
    "Microwave",
    "Oven",
    "Toaster",
    "Sink",
    "Refrigerator",
    "Book",
    "Clock",
    "Vase",
    "Scissors",
    "Teddy Bear",
    "Hair Drier",
    "Toothbrush",
];

/// The detector, loaded once.
#[derive(Clone)]
pub struct Detector {
    net: Arc<Net>,
    /// The first bytes of the model file's SHA-256, hex: part of the model version.
    pub digest: String,
    /// Detections under this confidence (0–100) are dropped.
    min_confidence: f32,
}

impl Detector {
    pub fn load(engine: &Engine, sessions: usize, path: &Path, min_confidence: f32) -> Result<Self, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|source| ModelError::Read { path: path.display().to_string(), source })?;
        let side = INPUT_SIDE as usize;
        let (net, digest) =
            Net::load_versioned(engine, &bytes, &[1, side, side, 3], sessions, &path.display().to_string())?;
        Ok(Self { net, digest, min_confidence })
    }

    /// Objects in `rgb`, most confident first. CPU work: call from the blocking pool.
    pub fn detect(&self, rgb: &RgbImage) -> Result<Vec<Detection>, LabelFailure> {
        let resized = resize_rgb(rgb, (0, 0, rgb.width(), rgb.height()), INPUT_SIDE, INPUT_SIDE)?;
        let pixels: Vec<f32> = resized.as_raw().iter().map(|&p| f32::from(p)).collect();
        let raw = self.net.run(pixels)?.into_iter().next().map(|o| o.values).unwrap_or_default();
        Ok(postprocess(&raw, self.min_confidence))
    }
}

impl Analyzer for Detector {
    fn model(&self) -> (&str, &str) {
        ("centernet", &self.digest)
    }

    /// The whole image is stretched to its 512×512.
    fn side(&self) -> u32 {
        INPUT_SIDE
    }

    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        naming.add_detections(&mut found.labels, self.detect(picture.rgb)?);
        Ok(())
    }
}

/// Rows of `[x1, y1, x2, y2, score, class]` in 512-space → kept detections.
fn postprocess(raw: &[f32], min_confidence: f32) -> Vec<Detection> {
    let scale = INPUT_SIDE as f32;
    let candidates: Vec<Detection> = raw
        .chunks_exact(6)
        .filter(|r| r[4] * 100.0 >= min_confidence && r[5] >= 0.0 && (r[5] as usize) < COCO_CLASSES.len())
        .filter_map(|r| {
            let (x1, y1) = ((r[0] / scale).clamp(0.0, 1.0), (r[1] / scale).clamp(0.0, 1.0));
            let (x2, y2) = ((r[2] / scale).clamp(0.0, 1.0), (r[3] / scale).clamp(0.0, 1.0));
            (x2 > x1 && y2 > y1).then(|| Detection {
                name: COCO_CLASSES[r[5] as usize],
                confidence: r[4] * 100.0,
                bounding_box: corners_box(x1, y1, x2, y2),
            })
        })
        .collect();
    suppress(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_boxes_of_one_class_are_suppressed_and_boxes_are_fractions() {
        let raw = [
            8.0, 9.0, 369.0, 520.0, 0.61, 0.0, // person
            26.0, 18.0, 377.0, 517.0, 0.26, 0.0, // the same person again: suppressed
            282.0, 344.0, 506.0, 511.0, 0.45, 3.0, // a motorcycle
            0.0, 0.0, 10.0, 10.0, 0.05, 2.0, // under the threshold
        ];
        let kept = postprocess(&raw, 20.0);
        assert_eq!(kept.iter().map(|d| d.name).collect::<Vec<_>>(), ["Person", "Motorcycle"]);
        let b = &kept[0].bounding_box;
        assert!((b.left - 8.0 / 512.0).abs() < 1e-6 && (b.top + b.height - 1.0).abs() < 1e-6, "{b:?}");
    }
}

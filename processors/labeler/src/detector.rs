//! The optional COCO object detector (MobileNetV3-CenterNet, converted to ONNX by
//! `models/centernet/fetch`): people, cars, dogs… with bounding boxes.
//!
//! Input NHWC `[1, 512, 512, 3]`, raw 0–255 (the /255 is folded into the first
//! convolution); the image is stretched to 512×512, so a box in 512-space divided by
//! 512 is the box as a fraction of the image. Output `[1, 100, 6]`: x1, y1, x2, y2,
//! score, class (0-based COCO-80). Here: a score threshold, per-class non-maximum
//! suppression, boxes clipped to the image, one label per class with its instances.

use std::path::Path;
use std::sync::Arc;

use crate::engine::{Engine, Net};
use crate::image::resize_rgb;
use ::image::RgbImage;
use bucketlens_schemas::{BoundingBox, Instance, Label};
use sha2::{Digest, Sha256};

use crate::labeler::{LabelFailure, ModelError};

pub const INPUT_SIDE: u32 = 512;
const NMS_IOU: f32 = 0.5;

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

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub class: usize,
    /// 0 to 100.
    pub confidence: f32,
    /// Fractions of the image's width and height.
    pub bounding_box: BoundingBox,
}

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
    pub fn load(engine: &Engine, threads: usize, path: &Path, min_confidence: f32) -> Result<Self, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|source| ModelError::Read { path: path.display().to_string(), source })?;
        let side = INPUT_SIDE as usize;
        let net = Net::load(engine, &bytes, &[1, side, side, 3], threads, &path.display().to_string())?;
        let digest = Sha256::digest(&bytes).iter().take(3).map(|b| format!("{b:02x}")).collect();
        Ok(Self { net: Arc::new(net), digest, min_confidence })
    }

    /// Objects in `rgb`, most confident first. CPU work: call from the blocking pool.
    pub fn detect(&self, rgb: &RgbImage) -> Result<Vec<Detection>, LabelFailure> {
        let resized = resize_rgb(rgb, (0, 0, rgb.width(), rgb.height()), INPUT_SIDE, INPUT_SIDE)?;
        let pixels: Vec<f32> = resized.as_raw().iter().map(|&p| f32::from(p)).collect();
        let raw = self.net.run(pixels)?.into_iter().next().map(|o| o.values).unwrap_or_default();
        Ok(postprocess(&raw, self.min_confidence))
    }
}

/// The box between corners already clipped to the image (fractions, `x1 < x2`),
/// with `left + width` and `top + height` at most 1 even where rounding the
/// difference in `f32` would land just past it.
pub(crate) fn corners_box(x1: f32, y1: f32, x2: f32, y2: f32) -> BoundingBox {
    let extent = |start: f32, end: f32| {
        let mut length = end - start;
        while length > 0.0 && f64::from(start) + f64::from(length) > 1.0 {
            length = length.next_down();
        }
        length
    };
    BoundingBox { left: x1, top: y1, width: extent(x1, x2), height: extent(y1, y2) }
}

/// Rows of `[x1, y1, x2, y2, score, class]` in 512-space → kept detections.
fn postprocess(raw: &[f32], min_confidence: f32) -> Vec<Detection> {
    let scale = INPUT_SIDE as f32;
    let mut candidates: Vec<Detection> = raw
        .chunks_exact(6)
        .filter(|r| r[4] * 100.0 >= min_confidence && r[5] >= 0.0 && (r[5] as usize) < COCO_CLASSES.len())
        .filter_map(|r| {
            let (x1, y1) = ((r[0] / scale).clamp(0.0, 1.0), (r[1] / scale).clamp(0.0, 1.0));
            let (x2, y2) = ((r[2] / scale).clamp(0.0, 1.0), (r[3] / scale).clamp(0.0, 1.0));
            (x2 > x1 && y2 > y1).then(|| Detection {
                class: r[5] as usize,
                confidence: r[4] * 100.0,
                bounding_box: corners_box(x1, y1, x2, y2),
            })
        })
        .collect();
    candidates.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in candidates {
        let overlaps =
            kept.iter().any(|k| k.class == candidate.class && iou(&k.bounding_box, &candidate.bounding_box) > NMS_IOU);
        if !overlaps {
            kept.push(candidate);
        }
    }
    kept
}

/// Intersection over union of two boxes (the face detector's merge uses it too).
pub(crate) fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let w = (a.left + a.width).min(b.left + b.width) - a.left.max(b.left);
    let h = (a.top + a.height).min(b.top + b.height) - a.top.max(b.top);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (a.width * a.height + b.width * b.height - inter)
}

/// Adds the detections to the classifier's labels: a class the classifier also named
/// gets the instances; another becomes a label of its own, as confident as its best
/// instance. Highest confidence first, at most `max_labels`.
pub fn merge(mut labels: Vec<Label>, detections: &[Detection], max_labels: usize) -> Vec<Label> {
    for detection in detections {
        let name = COCO_CLASSES[detection.class];
        let instance = Instance { bounding_box: detection.bounding_box, confidence: detection.confidence };
        match labels.iter_mut().find(|l| l.name.eq_ignore_ascii_case(name)) {
            Some(label) => label.instances.push(instance),
            None => labels.push(Label {
                name: name.to_string(),
                confidence: detection.confidence,
                parents: Vec::new(),
                categories: Vec::new(),
                aliases: Vec::new(),
                instances: vec![instance],
            }),
        }
    }
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    labels.truncate(max_labels);
    labels
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
        assert_eq!(kept.iter().map(|d| d.class).collect::<Vec<_>>(), [0, 3]);
        let b = &kept[0].bounding_box;
        assert!((b.left - 8.0 / 512.0).abs() < 1e-6 && (b.top + b.height - 1.0).abs() < 1e-6, "{b:?}");
    }

    #[test]
    fn a_box_reaching_the_edge_ends_at_it_not_past_it() {
        // 0.017223507 + (1 - 0.017223507) is 1.00000003 in f32 rounding.
        let edge = corners_box(0.017_223_507, 0.017_223_507, 1.0, 1.0);
        assert!(f64::from(edge.top) + f64::from(edge.height) <= 1.0, "{edge:?}");
        assert!(f64::from(edge.left) + f64::from(edge.width) <= 1.0, "{edge:?}");
        assert!(edge.height > 0.98, "{edge:?}");
    }

    #[test]
    fn detections_join_the_label_of_the_same_name_or_become_labels() {
        let cat = Label {
            name: "Cat".into(),
            confidence: 93.0,
            parents: vec!["Feline".into()],
            categories: vec![],
            aliases: vec![],
            instances: vec![],
        };
        let bbox = BoundingBox { left: 0.1, top: 0.1, width: 0.5, height: 0.5 };
        let detections = [
            Detection { class: 15, confidence: 70.0, bounding_box: bbox },
            Detection { class: 0, confidence: 61.0, bounding_box: bbox },
        ];
        let labels = merge(vec![cat], &detections, 20);
        assert_eq!(labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["Cat", "Person"]);
        assert_eq!(labels[0].instances.len(), 1);
        assert_eq!(labels[0].confidence, 93.0, "the classifier's confidence stays");
        assert_eq!(labels[1].confidence, 61.0);
    }
}

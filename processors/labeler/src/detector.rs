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
    /// The label's name.
    pub name: &'static str,
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

/// Non-maximum suppression: a detection overlapping a more confident one of the same
/// name (IoU over 0.5) is dropped. Most confident first.
pub(crate) fn suppress(mut candidates: Vec<Detection>) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in candidates {
        let overlaps =
            kept.iter().any(|k| k.name == candidate.name && iou(&k.bounding_box, &candidate.bounding_box) > NMS_IOU);
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

/// Adds a detector's findings to the classifier's labels. Each name found becomes a
/// label (or joins the classifier's label of that name) with one instance per box, as
/// confident as its best box (a label the classifier named already keeps the higher
/// of the two); `shape` gives the label's parents, aliases and category. Its parents,
/// and theirs, become labels too, as confident, the way Rekognition returns a `Car`
/// with `Vehicle` and `Transportation`. Highest confidence first.
pub fn merge(mut labels: Vec<Label>, detections: &[Detection], shape: impl Fn(&str) -> Label) -> Vec<Label> {
    fn add(labels: &mut Vec<Label>, label: Label) {
        match labels.iter_mut().find(|l| l.name == label.name) {
            Some(existing) => {
                existing.confidence = existing.confidence.max(label.confidence);
                existing.instances.extend(label.instances);
            }
            None => labels.push(label),
        }
    }
    for detection in detections {
        let instance = Instance { bounding_box: detection.bounding_box, confidence: detection.confidence };
        let found = Label { confidence: detection.confidence, instances: vec![instance], ..shape(detection.name) };
        // Its ancestors, each once.
        let mut queue: Vec<String> = found.parents.clone();
        let mut seen: Vec<String> = vec![found.name.clone()];
        add(&mut labels, found);
        while let Some(name) = queue.pop() {
            if seen.contains(&name) {
                continue;
            }
            let parent = Label { confidence: detection.confidence, ..shape(&name) };
            queue.extend(parent.parents.iter().cloned());
            seen.push(name);
            add(&mut labels, parent);
        }
    }
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    labels
}

/// A label of `name` with `parents` and nothing else, at confidence 0: the shape of
/// a name the classifier's hierarchy does not know.
pub fn plain(name: &str, parents: &[&str]) -> Label {
    Label {
        name: name.to_string(),
        confidence: 0.0,
        parents: parents.iter().map(|p| p.to_string()).collect(),
        categories: Vec::new(),
        aliases: Vec::new(),
        instances: Vec::new(),
    }
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

    #[test]
    fn a_box_reaching_the_edge_ends_at_it_not_past_it() {
        // 0.017223507 + (1 - 0.017223507) is 1.00000003 in f32 rounding.
        let edge = corners_box(0.017_223_507, 0.017_223_507, 1.0, 1.0);
        assert!(f64::from(edge.top) + f64::from(edge.height) <= 1.0, "{edge:?}");
        assert!(f64::from(edge.left) + f64::from(edge.width) <= 1.0, "{edge:?}");
        assert!(edge.height > 0.98, "{edge:?}");
    }

    #[test]
    fn detections_join_the_label_of_the_same_name_or_become_labels_with_their_parents() {
        let cat = Label { confidence: 93.0, ..plain("Cat", &["Feline"]) };
        let bbox = BoundingBox { left: 0.1, top: 0.1, width: 0.5, height: 0.5 };
        let detections = [
            Detection { name: "Cat", confidence: 70.0, bounding_box: bbox },
            Detection { name: "Car", confidence: 61.0, bounding_box: bbox },
            Detection { name: "Car", confidence: 55.0, bounding_box: bbox },
        ];
        let shape = |name: &str| match name {
            "Cat" => plain("Cat", &["Feline"]),
            "Feline" => plain("Feline", &["Animal"]),
            "Car" => plain("Car", &["Motor Vehicle", "Vehicle"]),
            "Motor Vehicle" => plain("Motor Vehicle", &["Vehicle"]),
            other => plain(other, &[]),
        };
        let labels = merge(vec![cat], &detections, shape);
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Cat", "Feline", "Animal", "Car", "Vehicle", "Motor Vehicle"]);
        assert_eq!(labels[0].instances.len(), 1);
        assert_eq!(labels[0].confidence, 93.0, "the classifier's higher confidence stays");
        assert_eq!(labels[1].confidence, 70.0, "a parent is as confident as what was found");
        assert_eq!(labels[3].confidence, 61.0, "as confident as its best box");
        assert_eq!(labels[3].instances.len(), 2, "one instance per box");
        assert!(labels[4].instances.is_empty(), "a parent has no boxes of its own");
        assert_eq!(labels.iter().filter(|l| l.name == "Vehicle").count(), 1, "a parent reached twice is one label");
    }
}

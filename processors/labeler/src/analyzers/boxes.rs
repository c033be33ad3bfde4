//! What the detectors share: a detection, its box, non-maximum suppression, and how
//! what a detector finds joins the labels (each name a label with one instance per
//! box, its parents labels too, the way Rekognition returns them).

use bucketlens_schemas::{BoundingBox, Instance, Label};

/// Two detections of one name overlapping more than this (IoU) are one.
const NMS_IOU: f32 = 0.5;

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

/// The box between corners already clipped to the image (fractions, `x1 < x2`),
/// with `left + width` and `top + height` at most 1 even where rounding the
/// difference in `f32` would land just past it.
pub fn corners_box(x1: f32, y1: f32, x2: f32, y2: f32) -> BoundingBox {
    let extent = |start: f32, end: f32| {
        let mut length = end - start;
        while length > 0.0 && f64::from(start) + f64::from(length) > 1.0 {
            length = length.next_down();
        }
        length
    };
    BoundingBox { left: x1, top: y1, width: extent(x1, x2), height: extent(y1, y2) }
}

/// Non-maximum suppression: a detection overlapping a more confident one of the same
/// name (IoU over 0.5) is dropped. Most confident first.
pub fn suppress(mut candidates: Vec<Detection>) -> Vec<Detection> {
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
pub fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
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
pub fn merge(labels: Vec<Label>, detections: &[Detection], shape: impl Fn(&str) -> Label) -> Vec<Label> {
    let found = detections.iter().map(|detection| {
        let instance = Instance { bounding_box: detection.bounding_box, confidence: detection.confidence };
        Label { confidence: detection.confidence, instances: vec![instance], ..shape(detection.name) }
    });
    let found: Vec<Label> = found.collect();
    merge_labels(labels, found, shape)
}

/// Adds `found` (labels of another analyzer, shaped) to `labels` as [`merge`] adds
/// detections: a label of the same name keeps the higher confidence, and every
/// ancestor becomes a label as confident. Highest confidence first.
pub fn merge_labels(mut labels: Vec<Label>, found: Vec<Label>, shape: impl Fn(&str) -> Label) -> Vec<Label> {
    fn add(labels: &mut Vec<Label>, label: Label) {
        match labels.iter_mut().find(|l| l.name == label.name) {
            Some(existing) => {
                existing.confidence = existing.confidence.max(label.confidence);
                existing.instances.extend(label.instances);
            }
            None => labels.push(label),
        }
    }
    for found in found {
        let confidence = found.confidence;
        // Its ancestors, each once.
        let mut queue: Vec<String> = found.parents.clone();
        let mut seen: Vec<String> = vec![found.name.clone()];
        add(&mut labels, found);
        while let Some(name) = queue.pop() {
            if seen.contains(&name) {
                continue;
            }
            let parent = Label { confidence, ..shape(&name) };
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

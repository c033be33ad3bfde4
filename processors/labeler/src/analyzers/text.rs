//! The words in a photo (`labeler.text`): PP-OCRv4's text detector finds the lines,
//! PP-OCR's direction classifier turns upside-down ones round, and PP-OCRv4's
//! recogniser reads them (Chinese and English: 6,623 characters). The three ONNX
//! files come from PyPI's `rapidocr-onnxruntime` 1.4.4 wheel (`models/ppocr/fetch`,
//! `models/ppocr/PROVENANCE.md`), each checked against its SHA-256 at load.
//!
//! What runs around the nets is [`decode`]: the map to boxes, CTC, reading order.
//! The steps, with PaddleOCR's documented parameters:
//! - The detector first glances at the photo with its long side at 480 pixels: a
//!   photo with no text pixels there (most photos) is done. Otherwise it looks again
//!   with the long side at [`LONG_SIDE`] (no larger than the photo), both sides
//!   rounded to multiples of 32, normalised to −1…1.
//! - Each line's box is cut out upright (a perspective warp of its four corners). A
//!   cut at least 1.5 times as tall as wide is a line of a photo taken sideways: it
//!   is turned a quarter round, and the direction classifier decides whether it is
//!   then upside down (above 0.9, as PaddleOCR's `cls_thresh`).
//! - The recogniser reads the cut at 48 pixels high, as wide as its proportions make
//!   it (at least 320, at most [`MAX_LINE_WIDTH`]).
//! - A line is kept when its confidence is at least `labeler.text-min-confidence`
//!   and it is words ([`decode::is_words`]).

pub mod decode;

use ::image::{imageops, RgbImage};
use bucketlens_schemas::{error_codes, ImageText, Instance, Label, TextLine};
use imageproc::geometric_transformations::{warp_into, Border, Interpolation, Projection};

use self::decode::Quad;
use crate::analyzers::{Analyzer, Naming, Picture};
use crate::engine::{Engine, Net};
use crate::labeler::{LabelFailure, LabelSet, ModelError};

/// The folder under the models folder ([`crate::models::dir`]) that
/// `models/ppocr/fetch` fills.
pub const FOLDER: &str = "ppocr-v4";

/// The files, their SHA-256 (as in the wheel), and what each is.
const FILES: [(&str, &str, &str); 3] = [
    ("det.onnx", "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9", "the text detector"),
    ("cls.onnx", "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c", "the text direction classifier"),
    ("rec.onnx", "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b", "the text recogniser"),
];

/// The detector sees the photo with its long side at most this (PaddleOCR's
/// `det_limit_side_len`, with `det_limit_type = max`).
pub const LONG_SIDE: u32 = 960;
/// The first look's long side: text this much smaller still shows as text pixels.
const GLANCE_SIDE: u32 = 480;
/// Fewer text pixels than this in the first look: no text (a speck is not a word).
const GLANCE_PIXELS: usize = 8;
/// The short side the one decode must have: a 4:3 photo's at [`LONG_SIDE`].
const SIDE: u32 = 720;
/// The recogniser's and the classifier's line height.
const LINE_HEIGHT: u32 = 48;
/// The classifier's input width.
const DIRECTION_WIDTH: u32 = 192;
/// The recogniser's narrowest input (PaddleOCR's `rec_image_shape` 3×48×320).
const MIN_LINE_WIDTH: u32 = 320;
/// The recogniser's widest input: a longer line is squeezed into it (a 1×60000
/// strip stays bounded).
pub const MAX_LINE_WIDTH: u32 = 3200;
/// At most this many lines are read in one photo (a dense page has a few hundred).
pub const MAX_LINES: usize = 400;
/// A cut this much taller than wide is turned a quarter round.
const SIDEWAYS: f32 = 1.5;
/// The classifier's score above which a line is turned upside down.
const FLIP_THRESHOLD: f32 = 0.9;

/// The text analyzer.
pub struct Text {
    detector: Net,
    direction: Net,
    recogniser: Net,
    /// Class `i`'s character: 0 is CTC's blank, the last a space.
    characters: Vec<String>,
    /// The first bytes of the three files' SHA-256, for the model's version.
    digest: String,
    /// A line under this confidence (0–100) is dropped (`labeler.text-min-confidence`).
    min_confidence: f32,
}

/// A line as read: its text, confidence (0–100) and box, in the image's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub confidence: f32,
    pub quad: Quad,
}

impl Text {
    /// Loads the three nets from the models folder, checking each file's SHA-256;
    /// `sessions` ONNX Runtime sessions each.
    pub fn load(engine: &Engine, sessions: usize, min_confidence: f32) -> Result<Self, ModelError> {
        let folder = crate::models::dir().join(FOLDER);
        let refused = |reason: String| ModelError::Text { reason };
        let mut nets = Vec::new();
        let mut digest = String::new();
        for (file, pin, what) in FILES {
            let path = folder.join(file);
            if !path.exists() {
                return Err(refused(format!(
                    "{what} is not installed ({} does not exist): run `models/ppocr/fetch`, which installs PP-OCR's models (15 MB, once)",
                    path.display()
                )));
            }
            let bytes = std::fs::read(&path).map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
            let found = crate::models::sha256_hex(&bytes);
            if found != pin {
                return Err(refused(format!(
                    "{} has SHA-256 {found}, not the pinned {pin}: refused (a damaged, partial or different file; `models/ppocr/fetch` installs it again once the folder is removed)",
                    path.display()
                )));
            }
            digest.push_str(&pin[..4]);
            nets.push((bytes, what));
        }
        let characters = characters_of(&nets[2].0).map_err(refused)?;
        let load = |i: usize| Net::load_any_shape(engine, &nets[i].0, sessions, nets[i].1);
        let detector = load(0)?;
        let direction = load(1)?;
        let recogniser = load(2)?;
        Ok(Self { detector, direction, recogniser, characters, digest, min_confidence })
    }

    /// Every line the nets read in `rgb`, in reading order, before the floor.
    pub fn read(&self, rgb: &RgbImage) -> Result<Vec<Line>, LabelFailure> {
        let (width, height) = rgb.dimensions();
        if width < 8 || height < 8 {
            return Ok(Vec::new());
        }
        let mut quads = self.detect(rgb)?;
        quads.truncate(MAX_LINES);
        decode::reading_order(&mut quads, Quad::bounds);
        let mut lines = Vec::new();
        for quad in quads {
            let Some(cut) = cut(rgb, &quad) else { continue };
            let cut = self.upright(cut)?;
            let (text, confidence) = self.recognise(&cut)?;
            let text = text.trim().to_string();
            if !text.is_empty() {
                lines.push(Line { text, confidence: confidence * 100.0, quad });
            }
        }
        Ok(lines)
    }

    /// The detector's boxes, in `rgb`'s pixels. A first look at half the size
    /// ([`GLANCE_SIDE`], a quarter of the work) decides whether the photo has any
    /// text at all: most photos have none, and stop there.
    fn detect(&self, rgb: &RgbImage) -> Result<Vec<Quad>, LabelFailure> {
        let (width, height) = rgb.dimensions();
        if width.max(height) > GLANCE_SIDE + GLANCE_SIDE / 2 {
            let (map, _, _) = self.probabilities(rgb, GLANCE_SIDE)?;
            let text_pixels = map.iter().filter(|p| **p > decode::PIXEL_THRESHOLD).count();
            if text_pixels < GLANCE_PIXELS {
                return Ok(Vec::new());
            }
        }
        let (map, mw, mh) = self.probabilities(rgb, LONG_SIDE)?;
        Ok(decode::boxes(&map, mw, mh, width as f32, height as f32))
    }

    /// The detector's map of `rgb` seen with its long side at most `long_side`, and
    /// the map's width and height.
    fn probabilities(&self, rgb: &RgbImage, long_side: u32) -> Result<(Vec<f32>, usize, usize), LabelFailure> {
        let (width, height) = rgb.dimensions();
        let scale = (long_side as f32 / width.max(height) as f32).min(1.0);
        let round = |side: u32| ((((side as f32 * scale) / 32.0).round() as u32) * 32).max(32);
        let (w, h) = (round(width), round(height));
        let resized = crate::image::resize_rgb(rgb, (0, 0, width, height), w, h)?;
        let outputs = self.detector.run_shaped(&[1, 3, h as usize, w as usize], planar(&resized))?;
        let map = outputs.into_iter().next().ok_or_else(|| model_error("the text detector gave no output"))?;
        let (mh, mw) = match map.shape.as_slice() {
            [1, 1, mh, mw] => (*mh, *mw),
            other => return Err(model_error(&format!("the text detector gave a map of shape {other:?}"))),
        };
        if map.values.len() != mw * mh {
            return Err(model_error("the text detector gave a map shorter than its shape"));
        }
        Ok((map.values, mw, mh))
    }

    /// The cut turned upright: a quarter round when it stands, and half round when
    /// the direction classifier is sure it is upside down.
    fn upright(&self, cut: RgbImage) -> Result<RgbImage, LabelFailure> {
        let cut = if cut.height() as f32 >= cut.width() as f32 * SIDEWAYS { imageops::rotate270(&cut) } else { cut };
        let input = line_tensor(&cut, DIRECTION_WIDTH, DIRECTION_WIDTH)?;
        let outputs = self.direction.run_shaped(&[1, 3, LINE_HEIGHT as usize, DIRECTION_WIDTH as usize], input)?;
        let scores = outputs.first().map(|o| o.values.as_slice()).unwrap_or_default();
        Ok(match scores {
            [upright, flipped] if flipped > upright && *flipped > FLIP_THRESHOLD => imageops::rotate180(&cut),
            _ => cut,
        })
    }

    /// The line's text and confidence (0–1).
    fn recognise(&self, cut: &RgbImage) -> Result<(String, f32), LabelFailure> {
        let ratio = cut.width() as f32 / cut.height().max(1) as f32;
        let wanted = (LINE_HEIGHT as f32 * ratio).ceil() as u32;
        // Padded to a multiple of 32 (a few plans on tract, not one per line).
        let width = wanted.clamp(MIN_LINE_WIDTH, MAX_LINE_WIDTH).div_ceil(32) * 32;
        let input = line_tensor(cut, wanted.min(width), width)?;
        let outputs = self.recogniser.run_shaped(&[1, 3, LINE_HEIGHT as usize, width as usize], input)?;
        let scores = outputs.first().ok_or_else(|| model_error("the text recogniser gave no output"))?;
        let classes = scores.shape.last().copied().unwrap_or(0);
        if classes != self.characters.len() {
            return Err(model_error(&format!(
                "the text recogniser gave {classes} classes for a dictionary of {}",
                self.characters.len()
            )));
        }
        Ok(decode::ctc(&scores.values, classes, &self.characters))
    }
}

impl Analyzer for Text {
    fn model(&self) -> (&str, &str) {
        ("ppocr-v4", &self.digest)
    }

    fn side(&self) -> u32 {
        SIDE
    }

    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        let rgb = picture.rgb;
        let lines = self.read(rgb)?;
        let (width, height) = (rgb.width() as f32, rgb.height() as f32);
        let kept: Vec<decode::Read> = lines
            .into_iter()
            .filter(|l| l.confidence >= self.min_confidence && decode::is_words(&l.text))
            .map(|l| (l.text, l.confidence, l.quad.bounds()))
            .collect();
        let kept: Vec<TextLine> = decode::join_rows(kept)
            .into_iter()
            .map(|(text, confidence, (left, top, right, bottom))| {
                let bounding_box = crate::analyzers::boxes::corners_box(
                    (left / width).clamp(0.0, 1.0),
                    (top / height).clamp(0.0, 1.0),
                    (right / width).clamp(0.0, 1.0),
                    (bottom / height).clamp(0.0, 1.0),
                );
                TextLine { text, confidence, bounding_box }
            })
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        add_text(found, ImageText::of(kept), naming.shape("Text"));
        Ok(())
    }
}

/// Adds `text` to what was found, with its `Text` label shaped as `label` (a box per
/// line, the most confident line's confidence; in Rekognition's category "Text and
/// Documents"). Both text readers (PP-OCR, Rekognition's DetectText) add theirs so.
pub fn add_text(found: &mut LabelSet, text: ImageText, label: Label) {
    let confidence = text.lines.iter().map(|l| l.confidence).fold(0.0, f32::max);
    let instances =
        text.lines.iter().map(|l| Instance { bounding_box: l.bounding_box, confidence: l.confidence }).collect();
    let label = Label { confidence, instances, categories: vec!["Text and Documents".to_string()], ..label };
    found.labels.retain(|l| l.name != "Text");
    let at = found.labels.iter().position(|l| l.confidence < confidence).unwrap_or(found.labels.len());
    found.labels.insert(at, label);
    found.text = Some(Box::new(text));
}

/// The recogniser's characters, from its file's `character` metadata (one a line),
/// with CTC's blank first and a space last, as PaddleOCR reads them.
fn characters_of(bytes: &[u8]) -> Result<Vec<String>, String> {
    use tract_onnx::prelude::Framework;
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("the text recogniser cannot be read: {e:#}"))?;
    let list = proto
        .metadata_props
        .iter()
        .find(|p| p.key == "character")
        .ok_or("the text recogniser carries no character list (its `character` metadata)")?;
    let mut characters = vec![String::new()];
    characters.extend(list.value.lines().map(str::to_string));
    characters.push(" ".to_string());
    Ok(characters)
}

/// `quad`'s part of `rgb`, warped upright to its width and height; `None` when it is
/// under 2 pixels either way.
fn cut(rgb: &RgbImage, quad: &Quad) -> Option<RgbImage> {
    let (w, h) = quad.size();
    let (w, h) = (w.round() as u32, h.round() as u32);
    if w < 2 || h < 2 {
        return None;
    }
    // Never larger than the image itself (a box is inside it).
    let (w, h) = (w.min(rgb.width() * 2), h.min(rgb.height() * 2));
    let to = [(0.0, 0.0), (w as f32, 0.0), (w as f32, h as f32), (0.0, h as f32)];
    let projection = Projection::from_control_points(quad.corners, to)?;
    let mut out = RgbImage::new(w, h);
    warp_into(rgb, projection, Interpolation::Bilinear, Border::Replicate, &mut out);
    Some(out)
}

/// A line cut as the recogniser (or classifier) takes it: resized to 48 pixels high
/// and `resized` wide, then padded with zeros to `width`; −1…1, planar, blue first
/// (PaddleOCR's models were trained on OpenCV's BGR).
fn line_tensor(cut: &RgbImage, resized: u32, width: u32) -> Result<Vec<f32>, LabelFailure> {
    let ratio = cut.width() as f32 / cut.height().max(1) as f32;
    let resized = ((LINE_HEIGHT as f32 * ratio).ceil() as u32).clamp(1, resized.max(1)).min(width);
    let line = crate::image::resize_rgb(cut, (0, 0, cut.width(), cut.height()), resized, LINE_HEIGHT)?;
    let plane = (LINE_HEIGHT * width) as usize;
    let mut tensor = vec![0.0f32; 3 * plane];
    for (x, y, pixel) in line.enumerate_pixels() {
        for c in 0..3 {
            tensor[c * plane + (y * width + x) as usize] = f32::from(pixel[2 - c]) / 127.5 - 1.0;
        }
    }
    Ok(tensor)
}

/// An image as the detector takes it: −1…1 (PP-OCR's mean and std of 0.5), planar,
/// blue first.
fn planar(rgb: &RgbImage) -> Vec<f32> {
    let plane = (rgb.width() * rgb.height()) as usize;
    let mut tensor = vec![0.0f32; 3 * plane];
    for (i, pixel) in rgb.pixels().enumerate() {
        for c in 0..3 {
            tensor[c * plane + i] = f32::from(pixel[2 - c]) / 127.5 - 1.0;
        }
    }
    tensor
}

fn model_error(message: &str) -> LabelFailure {
    LabelFailure::permanent(error_codes::MODEL_ERROR, message.to_string())
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text").field("digest", &self.digest).field("characters", &self.characters.len()).finish()
    }
}

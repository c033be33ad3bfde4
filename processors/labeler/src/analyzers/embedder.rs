//! The embedder: a CLIP-class model (`[labeler] embedder = "clip-vit-b32"`) whose
//! image tower embeds each image, and whose text tower embeds a phrase at search
//! time, into one space: a phrase finds the photos whose embeddings are nearest its
//! own (search by meaning). Its image embedding replaces the classifier's pooled
//! features (similar photos then use it too), stored and searched the same way.
//!
//! The models are fetched once by the user ([`crate::models`]); nothing is in the
//! binary. Preprocessing is as the model was trained: for OpenAI's CLIP (`clip.py`,
//! `_transform`), a bicubic resize of the short side to the input side, a centre
//! crop, RGB scaled to 0-1, then the catalogue's per-channel mean and standard
//! deviation. Here the centre square is cut first and resized once (the same pixels,
//! and memory that does not depend on the aspect ratio).

use std::sync::Arc;

use ::image::RgbImage;
use bucketlens_schemas::{error_codes, ImageEmbedding};
use instant_clip_tokenizer::{Token, Tokenizer};

use super::classifier::quantise;
use super::{Analyzer, Naming, Picture};
use crate::engine::{Engine, Input, Net};
use crate::image::resize_rgb_with;
use crate::labeler::{LabelFailure, LabelSet, ModelError};
use crate::models::{IdType, Installed};

/// The longest embedding kept (the index compares vectors of up to this length).
pub const MAX_DIMENSIONS: usize = 1280;

/// The zero-shot vocabulary beside the names table's labels (`labeler.clip-labels`).
pub static VOCABULARY: &str = include_str!("../../../../models/clip/vocabulary.toml");

/// CLIP's logit scale: image-text cosines times 100 before the softmax, the value
/// OpenAI's training ends at (it is clamped there: `model.py`, `logit_scale`).
const LOGIT_SCALE: f32 = 100.0;

/// A model's image tower, loaded once and shared by the labeling threads.
#[derive(Clone)]
pub struct ImageTower {
    /// The zero-shot labels, when on.
    zero_shot: Option<Arc<ZeroShot>>,
    net: Arc<Net>,
    name: String,
    version: String,
    /// The name its embeddings carry ([`Installed::embedding_model`]).
    model: String,
    side: u32,
    mean: [f32; 3],
    std: [f32; 3],
    dimensions: usize,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Read { path: path.display().to_string(), source })
}

impl ImageTower {
    /// Loads `model`'s image tower with `sessions` ONNX Runtime sessions.
    pub fn load(engine: &Engine, model: &Installed, sessions: usize) -> Result<Self, ModelError> {
        let entry = &model.entry;
        let side = entry.side as usize;
        let what = format!("{}'s image tower", model.name);
        let net = Net::load(engine, &read(&model.image)?, &[1, 3, side, side], sessions, &what)?;
        // One run at start-up: a graph that is not what its entry says stops here,
        // not on every image.
        let probe = net.run(vec![0.0; 3 * side * side]).map_err(|e| ModelError::Model(e.message))?;
        first_output(probe, entry.dimensions, &model.name, "image").map_err(|e| ModelError::Model(e.message))?;
        Ok(Self {
            zero_shot: None,
            net: Arc::new(net),
            name: model.name.clone(),
            version: entry.version(),
            model: model.embedding_model(),
            side: entry.side,
            mean: entry.mean,
            std: entry.std,
            dimensions: entry.dimensions,
        })
    }

    /// The model's input for `rgb`: its centre square, resized to `side`² by
    /// Catmull-Rom (Pillow's bicubic), RGB in 0-1 less `mean`, over `std`, NCHW.
    pub fn tensor(&self, rgb: &RgbImage) -> Result<Vec<f32>, LabelFailure> {
        clip_tensor(rgb, self.side, self.mean, self.std)
    }

    /// Labels by zero-shot classification too (see [`ZeroShot`]).
    pub fn with_zero_shot(mut self, zero_shot: ZeroShot) -> Self {
        self.zero_shot = Some(Arc::new(zero_shot));
        self
    }

    /// The embedding of `rgb`, as the model gives it.
    pub fn features(&self, rgb: &RgbImage) -> Result<Vec<f32>, LabelFailure> {
        first_output(self.net.run(self.tensor(rgb)?)?, self.dimensions, &self.name, "image")
    }

    /// The embedding of `rgb`, as it is stored.
    pub fn embed(&self, rgb: &RgbImage) -> Result<Option<ImageEmbedding>, LabelFailure> {
        Ok(self.stored(&self.features(rgb)?))
    }

    fn stored(&self, features: &[f32]) -> Option<ImageEmbedding> {
        quantise(features).map(|vector| ImageEmbedding { model: self.model.clone(), vector })
    }
}

/// A vocabulary name and the parents the vocabulary gives it (`None`: the names
/// table's shape).
pub type Named = (String, Option<Vec<String>>);

/// Zero-shot labels: each image's embedding is compared with the text embeddings of
/// "a photo of NAME" for every name of the vocabulary (the names table's labels and
/// [`VOCABULARY`]'s), the cosines scaled by [`LOGIT_SCALE`] and turned into
/// probabilities by a softmax, as CLIP's paper classifies; a name whose probability
/// (in percent) reaches `labeler.min-confidence` becomes a label, with its parents.
/// The threshold is not calibrated for any real model here (no real weights on these
/// machines).
pub struct ZeroShot {
    /// Each name, the parents the vocabulary gives it (`None`: the names table's
    /// shape), and its phrase's unit text embedding.
    names: Vec<(String, Option<Vec<String>>, Vec<f32>)>,
}

impl ZeroShot {
    /// The vocabulary's names: the names table's labels (`names`: models/names.toml),
    /// then [`VOCABULARY`]'s, each once.
    pub fn vocabulary(names: &[u8]) -> Result<Vec<Named>, ModelError> {
        let table: toml::Table = std::str::from_utf8(names)
            .ok()
            .and_then(|t| toml::from_str(t).ok())
            .ok_or_else(|| ModelError::Labels("the names table is not TOML".into()))?;
        let mut found: Vec<Named> = Vec::new();
        let mut add = |name: &str, parents: Option<Vec<String>>| {
            if !found.iter().any(|(n, _)| n == name) {
                found.push((name.to_string(), parents));
            }
        };
        for renamed in table.get("rename").and_then(toml::Value::as_table).into_iter().flat_map(|t| t.values()) {
            renamed.as_str().into_iter().for_each(|n| add(n, None));
        }
        for label in table.get("label").and_then(toml::Value::as_array).into_iter().flatten() {
            label.get("name").and_then(toml::Value::as_str).into_iter().for_each(|n| add(n, None));
        }
        let extra: toml::Table =
            toml::from_str(VOCABULARY).map_err(|e| ModelError::Labels(format!("models/clip/vocabulary.toml: {e}")))?;
        for (name, parents) in extra.get("labels").and_then(toml::Value::as_table).into_iter().flatten() {
            let parents = parents.as_array().into_iter().flatten().filter_map(|p| p.as_str().map(String::from));
            add(name, Some(parents.collect()));
        }
        Ok(found)
    }

    /// Encodes every phrase with `tower` (once, when the labeler loads). Names whose
    /// phrase gives a vector of zeros are left out.
    pub fn build(tower: &TextTower, names: &[u8]) -> Result<Self, ModelError> {
        let mut encoded = Vec::new();
        for (name, parents) in Self::vocabulary(names)? {
            let phrase = format!("a photo of {}", name.to_lowercase());
            let values = tower.features(&phrase).map_err(ModelError::Model)?;
            if let Some(unit) = unit(&values) {
                encoded.push((name, parents, unit));
            }
        }
        Ok(Self { names: encoded })
    }

    /// The labels an image of unit embedding `image` gets, at `min_confidence` (0-100)
    /// or more, with their confidences: see [`ZeroShot`].
    pub fn labels(&self, image: &[f32], naming: &Naming) -> Vec<bucketlens_schemas::Label> {
        let Some(image) = unit(image) else { return Vec::new() };
        let logits: Vec<f32> = self
            .names
            .iter()
            .map(|(_, _, text)| LOGIT_SCALE * text.iter().zip(&image).map(|(a, b)| a * b).sum::<f32>())
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let mut found = Vec::new();
        for ((name, parents, _), e) in self.names.iter().zip(exp) {
            // At most 100: a float sum can round above it, and 100 is the scale's end.
            let confidence = (e / sum * 100.0).min(100.0);
            if confidence < naming.min_confidence {
                continue;
            }
            let shape = match parents {
                Some(parents) => {
                    let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
                    super::boxes::plain(name, &parents)
                }
                None => naming.shape(name),
            };
            found.push(bucketlens_schemas::Label { confidence, ..shape });
        }
        found
    }
}

/// `values` scaled to length 1; `None` for zeros or what is not finite.
fn unit(values: &[f32]) -> Option<Vec<f32>> {
    let norm = values.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| values.iter().map(|x| x / norm).collect())
}

/// See [`ImageTower::tensor`].
pub fn clip_tensor(rgb: &RgbImage, side: u32, mean: [f32; 3], std: [f32; 3]) -> Result<Vec<f32>, LabelFailure> {
    let (w, h) = rgb.dimensions();
    let short = w.min(h);
    let square = ((w - short) / 2, (h - short) / 2, short, short);
    let resized = resize_rgb_with(rgb, square, side, side, fast_image_resize::FilterType::CatmullRom)?;
    let plane = (side * side) as usize;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, p) in resized.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            tensor[c * plane + i] = (f32::from(p[c]) / 255.0 - mean[c]) / std[c];
        }
    }
    Ok(tensor)
}

/// A tower's first output, checked to be one embedding of `dimensions`.
fn first_output(
    outputs: Vec<crate::engine::Output>,
    dimensions: usize,
    name: &str,
    tower: &str,
) -> Result<Vec<f32>, LabelFailure> {
    let values = outputs.into_iter().next().map(|o| o.values).unwrap_or_default();
    if values.len() != dimensions {
        return Err(LabelFailure::permanent(
            error_codes::MODEL_ERROR,
            format!("{name}'s {tower} tower gave {} values, its catalogue entry says {dimensions}", values.len()),
        ));
    }
    Ok(values)
}

impl Analyzer for ImageTower {
    fn model(&self) -> (&str, &str) {
        (&self.name, &self.version)
    }

    fn side(&self) -> u32 {
        self.side
    }

    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        let features = self.features(picture.rgb)?;
        found.embedding = self.stored(&features);
        if let Some(zero_shot) = &self.zero_shot {
            let labels = zero_shot.labels(&features, naming);
            found.labels = super::boxes::merge_labels(std::mem::take(&mut found.labels), labels, |n| naming.shape(n));
        }
        Ok(())
    }
}

/// A model's text tower and CLIP's tokenizer (`instant-clip-tokenizer`: OpenAI's
/// byte-pair vocabulary, compiled in), loaded once by the process that searches.
pub struct TextTower {
    net: Net,
    tokenizer: Tokenizer,
    context: usize,
    dimensions: usize,
    name: String,
    model: String,
}

impl std::fmt::Debug for TextTower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTower").field("model", &self.model).finish()
    }
}

/// See [`TextTower::tokens`].
fn token_ids(tokenizer: &Tokenizer, text: &str, context: usize) -> Vec<i64> {
    let mut tokens = Vec::new();
    tokenizer.encode(text, &mut tokens);
    tokens.truncate(context.saturating_sub(2));
    let mut ids = Vec::with_capacity(context);
    ids.push(i64::from(tokenizer.start_of_text().to_u16()));
    ids.extend(tokens.into_iter().map(|t: Token| i64::from(t.to_u16())));
    ids.push(i64::from(tokenizer.end_of_text().to_u16()));
    ids.resize(context, 0);
    ids
}

impl TextTower {
    /// Loads `model`'s text tower (one session: a query at a time).
    pub fn load(engine: &Engine, model: &Installed) -> Result<Self, ModelError> {
        let entry = &model.entry;
        let input = match entry.text_input {
            IdType::Int32 => Input::I32,
            IdType::Int64 => Input::I64,
        };
        let what = format!("{}'s text tower", model.name);
        let net = Net::load_typed(engine, &read(&model.text)?, &[1, entry.context], input, 1, &what)?;
        let tokenizer = Tokenizer::new();
        let probe =
            net.run_ids(token_ids(&tokenizer, "a photo", entry.context)).map_err(|e| ModelError::Model(e.message))?;
        first_output(probe, entry.dimensions, &model.name, "text").map_err(|e| ModelError::Model(e.message))?;
        Ok(Self {
            net,
            tokenizer,
            context: entry.context,
            dimensions: entry.dimensions,
            name: model.name.clone(),
            model: model.embedding_model(),
        })
    }

    /// The model's input for `text`: start of text, its tokens (as many as fit), end
    /// of text, then zeros to the context's length (as `clip.tokenize(truncate=True)`).
    pub fn tokens(&self, text: &str) -> Vec<i64> {
        token_ids(&self.tokenizer, text, self.context)
    }

    /// The embedding of `text`, as the model gives it.
    pub fn features(&self, text: &str) -> Result<Vec<f32>, String> {
        let outputs = self.net.run_ids(self.tokens(text)).map_err(|e| e.message)?;
        first_output(outputs, self.dimensions, &self.name, "text").map_err(|e| e.message)
    }

    /// The embedding of `text`, as image embeddings of the same model are stored.
    pub fn embed(&self, text: &str) -> Result<ImageEmbedding, String> {
        if text.trim().is_empty() {
            return Err("a search by meaning needs some words".into());
        }
        let values = self.features(text)?;
        let vector = quantise(&values).ok_or_else(|| format!("{}'s text tower gave a vector of zeros", self.name))?;
        Ok(ImageEmbedding { model: self.model.clone(), vector })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_has_the_names_tables_labels_and_what_imagenet_lacks() {
        let names = ZeroShot::vocabulary(crate::names::BUILTIN_NAMES).expect("vocabulary");
        let has = |name: &str| names.iter().find(|(n, _)| n == name).map(|(_, p)| p.clone());
        assert_eq!(has("Beach"), Some(None), "a names-table label, shaped by the table");
        for name in ["Brick", "Coins", "Grass", "Galaxy", "Retina", "Snow"] {
            assert!(has(name).flatten().is_some_and(|p| !p.is_empty()), "{name} with its parents");
        }
        let mut unique: Vec<&String> = names.iter().map(|(n, _)| n).collect();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "each name once");
    }

    #[test]
    fn a_phrase_is_tokenized_as_clip_tokenize_does() {
        // CLIP's ids: start of text 49406, "a" 320, "red" 736, "photo" 1125, end 49407.
        let tokenizer = Tokenizer::new();
        assert_eq!(token_ids(&tokenizer, "a red photo", 8), [49406, 320, 736, 1125, 49407, 0, 0, 0]);
        let long = token_ids(&tokenizer, &"red ".repeat(100), 77);
        assert_eq!((long.len(), long[75], long[76]), (77, 736, 49407), "truncated, the end kept");
    }
}

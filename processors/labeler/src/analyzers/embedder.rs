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

/// A model's image tower, loaded once and shared by the labeling threads.
#[derive(Clone)]
pub struct ImageTower {
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
        Ok(Self {
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

    /// The embedding of `rgb`.
    pub fn embed(&self, rgb: &RgbImage) -> Result<Option<ImageEmbedding>, LabelFailure> {
        let values = first_output(self.net.run(self.tensor(rgb)?)?, self.dimensions, &self.name, "image")?;
        Ok(quantise(&values).map(|vector| ImageEmbedding { model: self.model.clone(), vector }))
    }
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

    fn analyze(&self, picture: &Picture<'_>, _naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        found.embedding = self.embed(picture.rgb)?;
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
        Ok(Self {
            net,
            tokenizer: Tokenizer::new(),
            context: entry.context,
            dimensions: entry.dimensions,
            name: model.name.clone(),
            model: model.embedding_model(),
        })
    }

    /// The model's input for `text`: start of text, its tokens (as many as fit), end
    /// of text, then zeros to the context's length (as `clip.tokenize(truncate=True)`).
    pub fn tokens(&self, text: &str) -> Vec<i64> {
        let mut tokens = Vec::new();
        self.tokenizer.encode(text, &mut tokens);
        tokens.truncate(self.context - 2);
        let mut ids = Vec::with_capacity(self.context);
        ids.push(i64::from(self.tokenizer.start_of_text().to_u16()));
        ids.extend(tokens.into_iter().map(|t: Token| i64::from(t.to_u16())));
        ids.push(i64::from(self.tokenizer.end_of_text().to_u16()));
        ids.resize(self.context, 0);
        ids
    }

    /// The embedding of `text`, as image embeddings of the same model are stored.
    pub fn embed(&self, text: &str) -> Result<ImageEmbedding, String> {
        if text.trim().is_empty() {
            return Err("a search by meaning needs some words".into());
        }
        let outputs = self.net.run_ids(self.tokens(text)).map_err(|e| e.message)?;
        let values = first_output(outputs, self.dimensions, &self.name, "text").map_err(|e| e.message)?;
        let vector = quantise(&values).ok_or_else(|| format!("{}'s text tower gave a vector of zeros", self.name))?;
        Ok(ImageEmbedding { model: self.model.clone(), vector })
    }
}

//! The classifier: EfficientNet-Lite0 (ImageNet-1k), or Lite1, Lite2 or a user's own
//! classifier of the same input, on the [`crate::engine`]. Its classes' probabilities
//! become labels through the hierarchy ([`crate::names`]): `Cat` with `Feline`,
//! `Mammal`, `Animal`, and the names people search for.
//!
//! It sees what ImageNet's 1,000 classes name, in the centre square of the image (the
//! 87.5% crop EfficientNet was evaluated with); it cannot say where a thing is, nor
//! see what lies outside that square.
//!
//! The built-in model and its label file are compiled into the binary (see
//! `models/efficientnet-lite0/PROVENANCE.md`); nothing is fetched at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bucketlens_schemas::{error_codes, ImageEmbedding};
use sha2::{Digest, Sha256};

use super::{Analyzer, Naming, Picture};
use crate::engine::{Engine, Net};
use crate::image::{resize_short_side, to_tensor_sized, INPUT_SIZE};
use crate::labeler::{LabelFailure, LabelSet, ModelError};
use crate::names::{Hierarchy, Strictness, BUILTIN_NAMES};

const MODEL_NAME: &str = "efficientnet-lite0";
static BUILTIN_MODEL: &[u8] = include_bytes!("../../../../models/efficientnet-lite0/model.onnx");
static BUILTIN_LABELS: &[u8] = include_bytes!("../../../../models/efficientnet-lite0/labels.json");

/// Another classifier than the built-in one: one of the EfficientNet-Lite models
/// `models/efficientnet-lite0/fetch` converts, or a user's own ONNX file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelFiles {
    /// The model's name in every record (`efficientnet-lite2`; `efficientnet-lite0` for
    /// a user's own file, as before).
    pub name: String,
    pub model: PathBuf,
    /// Its label file; `None`: the built-in one (the same 1000 ImageNet classes).
    pub labels: Option<PathBuf>,
    /// The input's side (the model takes `[N, 3, side, side]`).
    pub side: u32,
    /// Made by the fetch script (its absence is told as "not fetched").
    pub fetched: bool,
}

/// A classifier's version: a digest of its weights, its labels and the names table
/// (which changes what the labels are called, so it is part of the version).
pub fn model_version(model: &[u8], labels: &[u8], names: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(model);
    digest.update(labels);
    digest.update(names);
    digest.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The classifier, loaded once and shared by the labeling threads.
#[derive(Clone)]
pub struct Classifier {
    net: Arc<Net>,
    name: String,
    version: String,
    /// The input's side (224 for Lite0, 240 for Lite1, 260 for Lite2).
    side: u32,
    /// Whether each image's embedding is kept (`labeler.embedding`).
    embed: bool,
}

/// How the embedding is made from the classifier's pooled features, part of its
/// model name: L2-normalised, then each component scaled so the largest is ±127 and
/// rounded to a signed byte. All 1280 dimensions are kept: `bucketlens-bench-similar`
/// measured a random projection to 256 losing an eighth of the true ten nearest
/// (recall@10 0.87), int8 at full width under 1% (0.99).
pub const EMBEDDING_FORMAT: &str = "int8";

/// The pooled features as an embedding: see [`EMBEDDING_FORMAT`]. `None` for no
/// features, or features that are all zero or not finite.
pub fn quantise(features: &[f32]) -> Option<Vec<u8>> {
    let largest = features.iter().fold(0f32, |m, &x| m.max(x.abs()));
    if features.is_empty() || !largest.is_finite() || largest == 0.0 {
        return None;
    }
    // Scaling by the largest component alone keeps every direction (cosine is blind
    // to length), and uses the byte's whole range.
    Some(features.iter().map(|&x| ((x / largest * 127.0).round() as i8) as u8).collect())
}

impl Classifier {
    /// Loads the built-in model, or another classifier (`custom`), with `sessions`
    /// ONNX Runtime sessions; with the hierarchy its label file names. Slow (about a
    /// second): call it once.
    pub fn load(
        engine: &Engine,
        custom: Option<&ModelFiles>,
        sessions: usize,
    ) -> Result<(Self, Hierarchy), ModelError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|source| ModelError::Read { path: p.display().to_string(), source });
        let (name, side) = custom.map_or((MODEL_NAME, INPUT_SIZE), |c| (c.name.as_str(), c.side));
        let model_bytes = match custom {
            Some(c) if c.fetched && !c.model.exists() => {
                return Err(ModelError::NotFetched { name: c.name.clone(), path: c.model.display().to_string() })
            }
            Some(c) => read(&c.model)?,
            None => BUILTIN_MODEL.to_vec(),
        };
        // Another classifier of the same 1000 classes may use the built-in labels.
        let (label_bytes, strictness) = match custom.and_then(|c| c.labels.as_deref()) {
            Some(l) => (read(l)?, Strictness::Lenient),
            None => (BUILTIN_LABELS.to_vec(), Strictness::Strict),
        };
        let version = model_version(&model_bytes, &label_bytes, BUILTIN_NAMES);
        let shape = [1, 3, side as usize, side as usize];
        let net = Net::load(engine, &model_bytes, &shape, sessions, "the classifier")?;
        let hierarchy = Hierarchy::build(&label_bytes, 1000, BUILTIN_NAMES, strictness)?;
        Ok((Self { net: Arc::new(net), name: name.to_string(), version, side, embed: false }, hierarchy))
    }

    /// Keeps (or not) each image's embedding: the net's second output, when it has one.
    pub fn embedding(mut self, on: bool) -> Self {
        self.embed = on;
        self
    }

    /// The name embeddings of this classifier carry: `name@version/int8`.
    pub fn embedding_model(&self) -> String {
        format!("{}@{}/{EMBEDDING_FORMAT}", self.name, self.version)
    }

    /// The classes' probabilities for a prepared input tensor (`3*side*side` floats):
    /// the model alone, which the benchmark also uses as its ceiling.
    pub fn probabilities(&self, tensor: Vec<f32>) -> Result<Vec<f32>, LabelFailure> {
        Ok(self.outputs(tensor)?.0)
    }

    /// The probabilities, and the pooled features when the net has them (before
    /// [`quantise`]: the benchmark measures what quantising loses).
    pub fn outputs(&self, tensor: Vec<f32>) -> Result<(Vec<f32>, Option<Vec<f32>>), LabelFailure> {
        let mut outputs = self.net.run(tensor)?.into_iter().map(|o| o.values);
        let logits = outputs.next().unwrap_or_default();
        let features = outputs.next();
        if logits.is_empty() {
            return Err(LabelFailure::permanent(error_codes::MODEL_ERROR, "the classifier gave no output"));
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        Ok((exp.into_iter().map(|e| e / sum).collect(), features))
    }
}

impl Analyzer for Classifier {
    fn model(&self) -> (&str, &str) {
        (&self.name, &self.version)
    }

    /// The centre square is cut from a decode whose short side is the resize before
    /// the crop (256 for 224).
    fn side(&self) -> u32 {
        resize_short_side(self.side)
    }

    fn analyze(&self, picture: &Picture<'_>, naming: &Naming, found: &mut LabelSet) -> Result<(), LabelFailure> {
        let (probabilities, features) = self.outputs(to_tensor_sized(picture.rgb, self.side)?)?;
        if self.embed {
            found.embedding = features
                .as_deref()
                .and_then(quantise)
                .map(|vector| ImageEmbedding { model: self.embedding_model(), vector });
        }
        found.labels.extend(naming.hierarchy.labels(&probabilities, naming.min_confidence, naming.max_labels));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_table_is_part_of_the_model_version() {
        let version = model_version(BUILTIN_MODEL, BUILTIN_LABELS, BUILTIN_NAMES);
        assert_eq!(version.len(), 12);
        let mut renamed = BUILTIN_NAMES.to_vec();
        renamed.extend_from_slice(b"\n");
        assert_ne!(
            model_version(BUILTIN_MODEL, BUILTIN_LABELS, &renamed),
            version,
            "a changed names table keeps stale names"
        );
        assert_ne!(model_version(BUILTIN_MODEL, b"[]", BUILTIN_NAMES), version);
    }
}

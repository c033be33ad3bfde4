//! The models a user fetches once from their publishers (`bucketlens models`): the
//! CLIP-class embedders of search by meaning. None is in the binary and none is in a
//! package registry, so they are opt-in, and every file is pinned by SHA-256 in the
//! catalogue (`models/catalogue.toml`, compiled in; a user's own catalogue adds
//! entries). A file that does not match its pin is refused, fetched or copied.
//!
//! An installed model is a folder `NAME/` under [`dir`]: `image.onnx`, `text.onnx`
//! and `model.toml` (its catalogue entry as it was fetched, pins included). The same
//! layout is what `fetch --from URL` reads from a mirror, so a models folder served
//! over HTTP is a mirror.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The catalogue this build knows.
pub static BUILTIN_CATALOGUE: &str = include_str!("../../../models/catalogue.toml");

/// The file names of an installed model.
pub const IMAGE_FILE: &str = "image.onnx";
pub const TEXT_FILE: &str = "text.onnx";
pub const MANIFEST: &str = "model.toml";

/// One model of the catalogue: a pair of ONNX graphs, image and text towers, that
/// embed into one space, and how their input is prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Entry {
    pub description: String,
    pub licence: String,
    /// Where the weights come from (the publisher's page).
    pub source: String,
    /// The embedding's length: both towers' output `[N, dimensions]`.
    pub dimensions: usize,
    /// The image tower's input side.
    pub side: u32,
    /// The text tower's input length in tokens.
    pub context: usize,
    pub text_input: IdType,
    /// Per-channel mean and standard deviation of RGB in 0-1, as the model was trained.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// The relevance floor of a search by meaning, unless the search says otherwise.
    pub min_similarity: f64,
    pub image: File,
    pub text: File,
}

/// One file of a model: where the publisher serves it, and its SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub url: String,
    pub sha256: String,
}

/// The element type of the text tower's token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdType {
    Int32,
    Int64,
}

/// Model names to entries.
pub type Catalogue = BTreeMap<String, Entry>;

/// The built-in catalogue, then `extra`'s entries (a user's own file), which add
/// models or replace those of the same name.
pub fn catalogue(extra: Option<&Path>) -> Result<Catalogue, String> {
    let mut models: Catalogue =
        toml::from_str(BUILTIN_CATALOGUE).map_err(|e| format!("the built-in model catalogue: {e}"))?;
    if let Some(path) = extra {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let theirs: Catalogue = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        models.extend(theirs);
    }
    for (name, entry) in &models {
        // A name is a folder under the models folder: never a path out of it.
        if !is_name(name) {
            return Err(format!("catalogue entry {name:?}: a name is letters, digits, - _ and ., not starting with ."));
        }
        entry.check().map_err(|e| format!("catalogue entry {name:?}: {e}"))?;
    }
    Ok(models)
}

/// Whether `name` can name a model (and its folder): letters, digits, `-`, `_` and
/// `.`, not starting with `.`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Entry {
    fn check(&self) -> Result<(), String> {
        let pin =
            |f: &File| f.sha256.is_empty() || (f.sha256.len() == 64 && f.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        if !pin(&self.image) || !pin(&self.text) {
            return Err("a sha256 is 64 hex digits (or empty: not pinned yet)".into());
        }
        if self.dimensions == 0 || self.dimensions > crate::analyzers::embedder::MAX_DIMENSIONS {
            return Err(format!(
                "dimensions must be 1 to {}, got {}",
                crate::analyzers::embedder::MAX_DIMENSIONS,
                self.dimensions
            ));
        }
        if !(16..=1024).contains(&self.side) || !(3..=1024).contains(&self.context) {
            return Err(format!("side must be 16-1024 and context 3-1024, got {} and {}", self.side, self.context));
        }
        if self.std.iter().any(|&s| s <= 0.0 || !s.is_finite()) || !(0.0..=1.0).contains(&self.min_similarity) {
            return Err("std must be above 0 and min-similarity within 0-1".into());
        }
        Ok(())
    }

    /// The model's version: the first bytes of a digest of its two files' pins (so
    /// of the files: an installed file matches its pin).
    pub fn version(&self) -> String {
        let digest = Sha256::digest(format!("{}{}", self.image.sha256, self.text.sha256));
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

/// Where models are installed: `$BUCKETLENS_MODELS_DIR`, or `~/.cache/bucketlens/models`.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BUCKETLENS_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/bucketlens/models")
}

/// A model installed and checked: its entry and its two files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub entry: Entry,
    pub image: PathBuf,
    pub text: PathBuf,
}

impl Installed {
    /// The name its embeddings carry, so that vectors of two models are never
    /// compared: `clip-vit-b32@<version>/int8`.
    pub fn embedding_model(&self) -> String {
        format!("{}@{}/{}", self.name, self.entry.version(), crate::analyzers::classifier::EMBEDDING_FORMAT)
    }
}

/// The model `name` as installed under [`dir`], its files checked against its pins
/// (and the pins against the built-in catalogue's, where that has them): reads both
/// files once (about a second for ViT-B/32's 600 MB).
pub fn installed(name: &str) -> Result<Installed, String> {
    let folder = dir().join(name);
    let manifest = folder.join(MANIFEST);
    let entry = manifest_entry(name)?;
    if let Some(ours) = catalogue(None)?.get(name) {
        for (what, pinned, theirs) in [("image", &ours.image, &entry.image), ("text", &ours.text, &entry.text)] {
            if !pinned.sha256.is_empty() && pinned.sha256 != theirs.sha256 {
                return Err(format!(
                    "{} pins {name}'s {what} file as {}, but this bucketlens pins it as {}: refused",
                    manifest.display(),
                    theirs.sha256,
                    pinned.sha256
                ));
            }
        }
    }
    let (image, text) = (folder.join(IMAGE_FILE), folder.join(TEXT_FILE));
    for (path, file) in [(&image, &entry.image), (&text, &entry.text)] {
        if file.sha256.is_empty() {
            return Err(format!("{} has no pin for {}: refused", manifest.display(), path.display()));
        }
        let found = sha256_of(path)?;
        if found != file.sha256 {
            return Err(mismatch(&path.display().to_string(), &found, &file.sha256));
        }
    }
    Ok(Installed { name: name.to_string(), entry, image, text })
}

/// The catalogue entry model `name` was installed with (its `model.toml`), unchecked.
pub fn manifest_entry(name: &str) -> Result<Entry, String> {
    let folder = dir().join(name);
    let manifest = folder.join(MANIFEST);
    let fetch = format!("`bucketlens models fetch {name}` installs it, or copy its files there (see the README)");
    let text = match std::fs::read_to_string(&manifest) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("model {name:?} is not installed in {}: {fetch}", folder.display()))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", manifest.display())),
    };
    let mut entries: Catalogue = toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let entry = entries.remove(name).ok_or_else(|| format!("{} describes no model {name:?}", manifest.display()))?;
    entry.check().map_err(|e| format!("{}: {e}", manifest.display()))?;
    Ok(entry)
}

/// The names of the folders under [`dir`] that hold a model's manifest.
pub fn installed_names() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir()) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(MANIFEST).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn mismatch(what: &str, found: &str, pinned: &str) -> String {
    format!("{what} has SHA-256 {found}, not the pinned {pinned}: refused (a damaged, partial or different file)")
}

/// The SHA-256 of a file, in hex.
pub fn sha256_of(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut digest = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        digest.update(&buffer[..n]);
    }
    Ok(hex(&digest.finalize()))
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads model `name` of `entry` into [`dir`]: from the publisher's URLs, or from
/// the mirror `from` (`FROM/NAME/image.onnx`, `FROM/NAME/text.onnx`). Each file is
/// hashed as it arrives and kept only if it matches its pin; an entry with no pin is
/// not fetched at all. `say` hears each file's progress in words.
pub async fn fetch(name: &str, entry: &Entry, from: Option<&str>, say: impl Fn(String)) -> Result<Installed, String> {
    for (what, file) in [("image", &entry.image), ("text", &entry.text)] {
        if file.sha256.is_empty() {
            return Err(format!(
                "the catalogue has no SHA-256 pin for {name}'s {what} file, so bucketlens will not fetch it: pin it \
                 in a catalogue of your own (`--catalogue FILE`, the same shape as models/catalogue.toml)"
            ));
        }
    }
    let folder = dir().join(name);
    std::fs::create_dir_all(&folder).map_err(|e| format!("cannot make {}: {e}", folder.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        // A server that stops sending mid-file is an error, not a wait for ever.
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot start an HTTP client: {e}"))?;
    for (file_name, file) in [(IMAGE_FILE, &entry.image), (TEXT_FILE, &entry.text)] {
        let url = match from {
            Some(base) => format!("{}/{name}/{file_name}", base.trim_end_matches('/')),
            None => file.url.clone(),
        };
        let target = folder.join(file_name);
        if target.exists() && sha256_of(&target)? == file.sha256 {
            say(format!("{} is there already and matches its pin", target.display()));
            continue;
        }
        say(format!("fetching {url}"));
        download(&client, &url, &target, &file.sha256).await?;
        say(format!("{} matches its pin {}", target.display(), file.sha256));
    }
    let mut manifest = Catalogue::new();
    manifest.insert(name.to_string(), entry.clone());
    let text = toml::to_string(&manifest).map_err(|e| format!("cannot write {name}'s manifest: {e}"))?;
    std::fs::write(folder.join(MANIFEST), text)
        .map_err(|e| format!("cannot write {}: {e}", folder.join(MANIFEST).display()))?;
    installed(name)
}

/// One file from `url` into `target`, through `target.part`, kept only if its
/// SHA-256 is `pin`.
async fn download(client: &reqwest::Client, url: &str, target: &Path, pin: &str) -> Result<(), String> {
    use std::io::Write;
    let failed = |e: &dyn std::fmt::Display| format!("fetching {url}: {e}");
    let mut response = client.get(url).send().await.map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        return Err(failed(&format!("the server answered {}", response.status())));
    }
    let part = target.with_extension("onnx.part");
    let mut out = std::fs::File::create(&part).map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let mut digest = Sha256::new();
    let written = async {
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
            digest.update(&chunk);
            out.write_all(&chunk).map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        }
        out.sync_all().map_err(|e| format!("cannot write {}: {e}", part.display()))
    }
    .await;
    let found = hex(&digest.finalize());
    let outcome = written.and_then(|()| if found == pin { Ok(()) } else { Err(mismatch(url, &found, pin)) });
    match outcome {
        Ok(()) => std::fs::rename(&part, target).map_err(|e| format!("cannot move {} into place: {e}", part.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalogue_reads_and_names_clip_vit_b32() {
        let models = catalogue(None).expect("the built-in catalogue");
        let clip = &models["clip-vit-b32"];
        assert_eq!((clip.dimensions, clip.side, clip.context), (512, 224, 77));
        assert_eq!(clip.licence, "MIT");
        assert_eq!(clip.mean, [0.481_454_66, 0.457_827_5, 0.408_210_73], "openai/CLIP clip.py's mean");
    }

    #[test]
    fn a_catalogue_of_ones_own_adds_entries_and_bad_pins_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mine.toml");
        let mut entry = catalogue(None).expect("catalogue")["clip-vit-b32"].clone();
        entry.image.sha256 = "ab".repeat(32);
        entry.text.sha256 = "cd".repeat(32);
        let mut mine = Catalogue::new();
        mine.insert("mine".into(), entry.clone());
        std::fs::write(&path, toml::to_string(&mine).expect("toml")).expect("write");
        let both = catalogue(Some(&path)).expect("both");
        assert!(both.contains_key("clip-vit-b32") && both["mine"] == entry);
        let mut outside = Catalogue::new();
        outside.insert("../outside".into(), entry.clone());
        std::fs::write(&path, toml::to_string(&outside).expect("toml")).expect("write");
        assert!(catalogue(Some(&path)).expect_err("a path").contains("a name is"));
        entry.image.sha256 = "not hex".into();
        mine.insert("mine".into(), entry);
        std::fs::write(&path, toml::to_string(&mine).expect("toml")).expect("write");
        let refused = catalogue(Some(&path)).expect_err("a bad pin");
        assert!(refused.contains("64 hex digits"), "{refused}");
    }
}

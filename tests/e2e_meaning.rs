//! Search by meaning, end to end, without real CLIP weights (none can be fetched
//! here): synthetic CLIP-class models built by `models/clip/synthetic.py`, served by
//! a real HTTP server on 127.0.0.1 as a mirror, fetched with `bucketlens models fetch`
//! against their SHA-256 pins, then used by the real binary to label and to search.
//!
//! - a pair whose meaning is known (an image's mean colour; "red", "green", "blue")
//!   proves the ranking through the whole pipeline, on tantivy and on OpenSearch;
//! - a pair of random weights with int32 token ids proves the other signature, on
//!   both engines;
//! - a file that does not match its pin is refused, fetched or copied;
//! - switching the embedder relabels;
//! - the image tower's preprocessing is checked against Pillow's.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::opensearch::Osmem;
use common::serve::Server;
use common::World;
use serde_json::Value;

fn model_python() -> String {
    std::env::var("MODEL_PYTHON").expect("MODEL_PYTHON: run the tests with scripts/test")
}

fn synthetic_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/clip/synthetic.py")
}

/// A mirror of synthetic models: `DIR/NAME/{image,text}.onnx` served over HTTP by
/// Python's http.server, and the catalogue that pins them.
struct Mirror {
    server: Child,
    url: String,
    catalogue: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Mirror {
    /// Builds `models` (`(kind, name, text-input)`) and serves them.
    fn start(models: &[(&str, &str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut catalogue = String::new();
        for (kind, name, ids) in models {
            let out = Command::new(model_python())
                .arg(synthetic_script())
                .args([kind, name, dir.path().to_str().unwrap(), "--text-input", ids])
                .output()
                .unwrap();
            assert!(out.status.success(), "synthetic.py {kind}: {}", String::from_utf8_lossy(&out.stderr));
            catalogue.push_str(&String::from_utf8(out.stdout).unwrap());
        }
        let catalogue_path = dir.path().join("catalogue.toml");
        std::fs::write(&catalogue_path, catalogue).unwrap();
        let port = common::free_port();
        let mut server = Command::new(model_python())
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        common::wait_listening(&mut server, "127.0.0.1", port, Duration::from_secs(20)).unwrap();
        Self { server, url: format!("http://127.0.0.1:{port}"), catalogue: catalogue_path, _dir: dir }
    }

    /// A catalogue with `name`'s entry, its image pin replaced by `pin`.
    fn with_image_pin(&self, name: &str, pin: &str) -> PathBuf {
        let mut catalogue: toml::Table = toml::from_str(&std::fs::read_to_string(&self.catalogue).unwrap()).unwrap();
        catalogue[name]["image"]["sha256"] = toml::Value::String(pin.to_string());
        let path = self.catalogue.with_file_name(format!("{name}-repinned.toml"));
        std::fs::write(&path, toml::to_string(&catalogue).unwrap()).unwrap();
        path
    }
}

/// A world of the example photos plus a red, a green and a blue one, whose commands
/// install models in a folder of its own.
fn world() -> World {
    let mut w = World::new(1);
    for (name, rgb) in [("red", [210u8, 40, 35]), ("green", [40, 190, 60]), ("blue", [35, 50, 215])] {
        image::RgbImage::from_pixel(320, 240, image::Rgb(rgb)).save(w.photos.join(format!("{name}.png"))).unwrap();
    }
    let models = w.tmp.path().join("models");
    w.env.push(("BUCKETLENS_MODELS_DIR".into(), models.to_str().unwrap().into()));
    w
}

fn fetch(w: &World, mirror: &Mirror, name: &str) -> std::process::Output {
    w.command(&["models", "fetch", name, "--catalogue", mirror.catalogue.to_str().unwrap(), "--from", &mirror.url])
        .output()
        .unwrap()
}

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `search --semantic PHRASE [args] --json`: the keys and similarities, best first.
fn by_meaning(w: &World, phrase: &str, args: &[&str]) -> Vec<(String, f64)> {
    let mut all = vec!["search", "--semantic", phrase, "--json"];
    all.extend_from_slice(args);
    common::ranked(&w.json(&all))
}

#[test]
fn a_phrase_finds_its_photo_first_on_both_index_backends_and_the_labels_filter_it() {
    let mirror = Mirror::start(&[("colours", "clip-colours", "int64")]);
    let server = Osmem::start();
    let mut tantivy = world();
    let mut opensearch = world();
    opensearch.env.extend(Osmem::env(&server.url, "meaning"));
    for w in [&mut tantivy, &mut opensearch] {
        let out = fetch(w, &mirror, "clip-colours");
        assert!(out.status.success() && said(&out).contains("matches its pin"), "{}", said(&out));
        w.env.push(("BUCKETLENS_LABELER__EMBEDDER".into(), "clip-colours".into()));
        let out = w.index();
        assert!(out.contains("labeled 15") && out.contains("failed 0"), "{out}");
    }
    for w in [&tantivy, &opensearch] {
        for colour in ["red", "green", "blue"] {
            let found = by_meaning(w, colour, &[]);
            assert_eq!(found[0].0, format!("{colour}.png"), "{colour}: {found:?}");
            assert!(found.windows(2).all(|p| p[0].1 >= p[1].1), "best first: {found:?}");
            // The two other colours point away from it: under the floor, not shown.
            for other in ["red", "green", "blue"].iter().filter(|o| **o != colour) {
                assert!(!found.iter().any(|(k, _)| *k == format!("{other}.png")), "{colour}: {found:?}");
            }
        }
        // The label language filters: only photos with a Cat label, nearest "red".
        let cats = by_meaning(w, "red", &["cat", "--min-similarity", "0"]);
        assert_eq!(cats.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["chelsea.png"], "{cats:?}");
        // What is not near the phrase is not found, however few photos are left.
        assert!(by_meaning(w, "red", &["--prefix", "green", "--min-similarity", "0.05"]).is_empty());
        let none = w.run(&["search", "--semantic", "red", "--prefix", "green"]);
        assert!(none.starts_with("no matches"), "{none}");
        let plain = w.run(&["search", "--semantic", "blue"]);
        assert!(plain.starts_with("photos/blue.png\n    similarity 0."), "{plain}");
    }
    assert_eq!(by_meaning(&tantivy, "green", &["--limit", "50"]), by_meaning(&opensearch, "green", &["--limit", "50"]));
    // The HTTP API does the same, its text tower loaded at the first such search.
    let serve = Server::start(tantivy.command(&["serve"]));
    let found = serve.json("/api/search?semantic=red&limit=5");
    assert_eq!(found["hits"][0]["key"], "red.png", "{found}");
    assert!(found["hits"][0]["similarity"].as_f64().unwrap() > 0.4, "{found}");
    let refused = serve.get("/api/search?semantic=red&min_similarity=7");
    assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(&refused.body));
    // `models eval`: recall@10 of a user's own examples, and what a floor must keep.
    let examples = tantivy.tmp.path().join("examples.toml");
    std::fs::write(&examples, "red = [\"photos/red.png\"]\nblue = [\"photos/blue.png\", \"photos/nowhere.png\"]\n")
        .unwrap();
    let report = tantivy.json(&["models", "eval", examples.to_str().unwrap(), "--json"]);
    assert!((report["recall"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{report}");
    let phrases = report["phrases"].as_array().unwrap();
    assert_eq!((phrases[0]["phrase"].as_str(), phrases[0]["recall"].as_f64()), (Some("blue"), Some(0.5)), "{report}");
    assert_eq!(phrases[0]["missed"], serde_json::json!(["photos/nowhere.png"]));
    assert_eq!(phrases[1]["nearest"]["key"], "photos/red.png", "{report}");
    assert!(report["floor_keeping_every_found"].as_f64().unwrap() > 0.9, "{report}");
    let plain = tantivy.run(&["models", "eval", examples.to_str().unwrap()]);
    assert!(plain.contains("recall@10 0.67 over 2 phrases, 3 photos"), "{plain}");
}

#[test]
fn switching_the_embedder_relabels_and_a_search_by_meaning_needs_one() {
    let mirror = Mirror::start(&[("colours", "clip-colours", "int64"), ("random", "clip-random", "int32")]);
    let mut w = world();
    for name in ["clip-colours", "clip-random"] {
        assert!(fetch(&w, &mirror, name).status.success());
    }
    let first = w.index();
    assert!(first.contains("labeled 15"), "{first}");
    let out = w.command(&["search", "--semantic", "red"]).output().unwrap();
    assert!(!out.status.success() && said(&out).contains("needs a CLIP-class model"), "{}", said(&out));
    w.env.push(("BUCKETLENS_LABELER__EMBEDDER".into(), "clip-colours".into()));
    let switched = w.index();
    assert!(switched.contains("labeled 15") && switched.contains("unchanged 0"), "a new embedder relabels: {switched}");
    let again = w.index();
    assert!(again.contains("labeled 0 "), "and only once: {again}");
    assert_eq!(by_meaning(&w, "red", &[])[0].0, "red.png");
    // Another model: its vectors replace the first's, never mixed with them. Its text
    // tower takes int32 ids; tract runs it as well as ONNX Runtime.
    w.env.retain(|(k, _)| k != "BUCKETLENS_LABELER__EMBEDDER");
    w.env.push(("BUCKETLENS_LABELER__EMBEDDER".into(), "clip-random".into()));
    assert!(w.index().contains("labeled 15"));
    let hits = w.json(&["search", "--json", "--limit", "100"]);
    let random: Vec<_> = hits["hits"].as_array().unwrap().iter().collect();
    assert_eq!(random.len(), 15);
    for engine in ["onnxruntime", "tract"] {
        let mut args = vec!["search", "--semantic", "a rocket launch at night", "--json", "--min-similarity", "0"];
        args.extend(["--limit", "100"]);
        let out = w.command(&args).env("BUCKETLENS_LABELER__ENGINE", engine).output().unwrap();
        assert!(out.status.success(), "{engine}: {}", said(&out));
        let found: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!found["hits"].as_array().unwrap().is_empty(), "{engine}: {found}");
    }
}

#[test]
fn a_file_that_does_not_match_its_pin_is_refused_fetched_or_copied() {
    let mirror = Mirror::start(&[("colours", "clip-colours", "int64")]);
    let w = world();
    let models = w.tmp.path().join("models");
    // The built-in entry has no pin yet: not fetched at all, said why.
    let out = w.command(&["models", "fetch", "clip-vit-b32", "--from", &mirror.url]).output().unwrap();
    assert!(!out.status.success() && said(&out).contains("no SHA-256 pin"), "{}", said(&out));
    // A pin the served file does not match: refused, nothing left behind.
    let wrong = mirror.with_image_pin("clip-colours", &"0".repeat(64));
    let out = w
        .command(&["models", "fetch", "clip-colours", "--catalogue", wrong.to_str().unwrap(), "--from", &mirror.url])
        .output()
        .unwrap();
    assert!(!out.status.success() && said(&out).contains("not the pinned"), "{}", said(&out));
    let folder = models.join("clip-colours");
    assert!(!folder.join("image.onnx").exists() && !folder.join("image.onnx.part").exists());
    // Nothing served there: a clear error naming the URL.
    let out = w
        .command(&["models", "fetch", "clip-colours", "--catalogue", mirror.catalogue.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success() && said(&out).contains("file-not-published/clip-colours"), "{}", said(&out));
    // Fetched as pinned, then damaged in place: listed as refused, and neither the
    // labeler nor a search uses it.
    assert!(fetch(&w, &mirror, "clip-colours").status.success());
    let listed = w.run(&["models", "list"]);
    assert!(listed.contains("clip-colours") && listed.contains("installed"), "{listed}");
    let mut text = std::fs::read(folder.join("text.onnx")).unwrap();
    text.push(0);
    std::fs::write(folder.join("text.onnx"), text).unwrap();
    let listed = w.run(&["models", "list"]);
    assert!(listed.contains("refused") && listed.contains("text.onnx has SHA-256"), "{listed}");
    let out = w
        .command(&["index", w.photos.to_str().unwrap()])
        .env("BUCKETLENS_LABELER__EMBEDDER", "clip-colours")
        .output()
        .unwrap();
    assert!(!out.status.success() && said(&out).contains("not the pinned"), "{}", said(&out));
    let out = w
        .command(&["search", "--semantic", "red"])
        .env("BUCKETLENS_LABELER__EMBEDDER", "clip-colours")
        .output()
        .unwrap();
    assert!(!out.status.success() && said(&out).contains("not the pinned"), "{}", said(&out));
    // A graph that is not what its entry says (512 numbers, not 768): the labeler
    // stops at start with why, instead of failing every photo.
    let elsewhere = w.tmp.path().join("other-models");
    let mut catalogue: toml::Table = toml::from_str(&std::fs::read_to_string(&mirror.catalogue).unwrap()).unwrap();
    catalogue["clip-colours"]["dimensions"] = toml::Value::Integer(768);
    let wrong = mirror.catalogue.with_file_name("768.toml");
    std::fs::write(&wrong, toml::to_string(&catalogue).unwrap()).unwrap();
    let fetched = w
        .command(&["models", "fetch", "clip-colours", "--catalogue", wrong.to_str().unwrap(), "--from", &mirror.url])
        .env("BUCKETLENS_MODELS_DIR", &elsewhere)
        .output()
        .unwrap();
    assert!(fetched.status.success(), "{}", said(&fetched));
    for args in [&["index", w.photos.to_str().unwrap()][..], &["search", "--semantic", "red"]] {
        let out = w
            .command(args)
            .env("BUCKETLENS_MODELS_DIR", &elsewhere)
            .env("BUCKETLENS_LABELER__EMBEDDER", "clip-colours")
            .output()
            .unwrap();
        assert!(
            !out.status.success() && said(&out).contains("gave 512 values, its catalogue entry says 768"),
            "{}",
            said(&out)
        );
    }
    // A model never installed: named, with the command that installs it.
    let out = w
        .command(&["index", w.photos.to_str().unwrap()])
        .env("BUCKETLENS_LABELER__EMBEDDER", "clip-nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success() && said(&out).contains("bucketlens models fetch clip-nowhere"), "{}", said(&out));
}

/// The image tower's input for each example photo, against Pillow's bicubic resize of
/// the short side to 224 and centre crop (CLIP's own preprocessing) of the whole
/// image. bucketlens resizes from the decode it shares with the other analyzers (a
/// JPEG at a DCT scale, a PNG averaged in boxes, both still at least 224 on the short
/// side), so the two differ by rounding and by that first reduction: the test bounds
/// the difference in units of the normalised input (measured: 0.003 to 0.060 on
/// average over a photo, the most on the finest detail: Hubble's deep field, grass,
/// coins; 0.06 is about 4 levels of 255).
#[test]
fn the_image_tower_sees_what_pillow_prepares_for_clip() {
    let script = r#"
import sys
import numpy as np
from PIL import Image, ImageOps
mean = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
std = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
image = ImageOps.exif_transpose(Image.open(sys.argv[1])).convert("RGB")
w, h = image.size
scale = 224 / min(w, h)
image = image.resize((max(224, round(w * scale)), max(224, round(h * scale))), Image.BICUBIC)
left, top = (image.width - 224) // 2, (image.height - 224) // 2
pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32) / 255.0
sys.stdout.buffer.write(((pixels - mean) / std).transpose(2, 0, 1).astype("<f4").tobytes())
"#;
    let clip = bucketlens_labeler::models::catalogue(None).unwrap()["clip-vit-b32"].clone();
    let (mean, std) = (clip.mean, clip.std);
    let mut worst: (f64, String) = (0.0, String::new());
    for name in common::example_names() {
        let path = common::examples_dir().join(&name);
        let out = Command::new(model_python()).args(["-c", script]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let pillow: Vec<f32> =
            out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let bytes = std::fs::read(&path).unwrap();
        let (rgb, _) = bucketlens_labeler::image::decode(&bytes, 100_000_000, 224).unwrap();
        let ours = bucketlens_labeler::analyzers::embedder::clip_tensor(&rgb, 224, mean, std).unwrap();
        assert_eq!(ours.len(), pillow.len(), "{name}");
        let mean_diff =
            ours.iter().zip(&pillow).map(|(a, b)| f64::from((a - b).abs())).sum::<f64>() / ours.len() as f64;
        println!("{name}: mean |difference| {mean_diff:.4}");
        if mean_diff > worst.0 {
            worst = (mean_diff, name);
        }
    }
    assert!(worst.0 < 0.07, "the worst photo, {}, differs by {:.4} on average", worst.1, worst.0);
}

#[test]
fn zero_shot_labels_name_what_the_vocabulary_has_and_label_search_finds_them() {
    let mirror = Mirror::start(&[("colours", "clip-colours", "int64")]);
    let mut w = world();
    assert!(fetch(&w, &mirror, "clip-colours").status.success());
    // Without an embedder there is nothing to compare with: said at start.
    let out = w
        .command(&["index", w.photos.to_str().unwrap()])
        .env("BUCKETLENS_LABELER__CLIP_LABELS", "true")
        .output()
        .unwrap();
    assert!(!out.status.success() && said(&out).contains("labeler.clip-labels"), "{}", said(&out));
    w.env.push(("BUCKETLENS_LABELER__EMBEDDER".into(), "clip-colours".into()));
    assert!(w.index().contains("labeled 15"));
    assert!(w.json(&["search", "colour", "--json"])["hits"].as_array().unwrap().is_empty(), "off by default");
    w.env.push(("BUCKETLENS_LABELER__CLIP_LABELS".into(), "true".into()));
    let relabeled = w.index();
    assert!(relabeled.contains("labeled 15"), "turning them on relabels: {relabeled}");
    for colour in ["Red", "Green", "Blue"] {
        let found = w.json(&["search", colour, "--json", "--limit", "100"]);
        let hits = found["hits"].as_array().unwrap();
        let own = hits.iter().find(|h| h["key"] == format!("{}.png", colour.to_lowercase()));
        let own = own.unwrap_or_else(|| panic!("{colour}: {found}"));
        let label = own["labels"].as_array().unwrap().iter().find(|l| l["name"] == colour).unwrap();
        assert!(label["confidence"].as_f64().unwrap() > 90.0, "{label}");
        assert_eq!(label["parents"], serde_json::json!(["Colour"]), "{label}");
        for other in ["red", "green", "blue"].iter().filter(|o| **o != colour.to_lowercase()) {
            assert!(!hits.iter().any(|h| h["key"] == format!("{other}.png")), "{colour}: {found}");
        }
    }
    // The parent is a label as well, as the names table's parents are.
    let colours = w.json(&["search", "colour", "--json", "--limit", "100"]);
    assert!(colours["total"].as_u64().unwrap() >= 3, "{colours}");
}

/// The `sh models` block of the guide, run as written in a shell whose `$HOME` has the
/// example photos in `Pictures/`, with `my-pins.toml` pinning a synthetic pair named
/// `clip-vit-b32` (random weights, served by the mirror) and `my-examples.toml`, and
/// `[labeler] embedder = "clip-vit-b32"` set as the page's configuration says.
#[test]
fn the_guides_search_by_meaning_commands_run_as_written() {
    let blocks = common::docs::sh_blocks("models");
    assert_eq!(blocks.len(), 1, "one `sh models` block in the guide");
    let mirror = Mirror::start(&[("random", "clip-vit-b32", "int64")]);
    let w = World::new(0);
    let home = w.tmp.path().join("home");
    let pictures = home.join("Pictures");
    std::fs::create_dir_all(&pictures).unwrap();
    for name in common::example_names() {
        std::fs::copy(common::examples_dir().join(&name), pictures.join(&name)).unwrap();
    }
    let cwd = w.tmp.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut pins: toml::Table = toml::from_str(&std::fs::read_to_string(&mirror.catalogue).unwrap()).unwrap();
    for file in ["image", "text"] {
        pins["clip-vit-b32"][file]["url"] = toml::Value::String(format!("{}/clip-vit-b32/{file}.onnx", mirror.url));
    }
    std::fs::write(cwd.join("my-pins.toml"), toml::to_string(&pins).unwrap()).unwrap();
    std::fs::write(cwd.join("my-examples.toml"), "\"a rocket launch at night\" = [\"Pictures/rocket.jpg\"]\n").unwrap();
    let mut shell = common::docs::Shell::new(home.clone(), cwd, w.tmp.path().join("logs"));
    shell.env.push(("BUCKETLENS_DATA_DIR".into(), w.tmp.path().join("data").display().to_string()));
    shell.env.push(("BUCKETLENS_LABELER__EMBEDDER".into(), "clip-vit-b32".into()));
    if let Some(library) = std::env::var_os("ONNXRUNTIME_LIBRARY") {
        shell.env.push(("BUCKETLENS_LABELER__ONNXRUNTIME".into(), library.to_string_lossy().into_owned()));
    }
    let ran = shell.run_block(&blocks[0], false, |_, _| {}, |_| false);
    assert_eq!(ran, 6, "every line of the block");
    // What they left: the model installed where the page says, checked.
    let listed = shell.run("bucketlens models list");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(home.join(".cache/bucketlens/models").to_str().unwrap()), "{listed}");
    assert!(listed.contains("clip-vit-b32") && listed.contains("installed"), "{listed}");
}

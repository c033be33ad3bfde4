//! The inference engine under every local model: ONNX Runtime (the `libonnxruntime`
//! that `scripts/fetch-onnxruntime` installs, loaded at start-up) when it can be
//! loaded, tract (pure Rust, in the binary) otherwise.
//!
//! Measured on this model (`bucketlens-bench-engines`): ONNX Runtime runs
//! EfficientNet-Lite0 several times faster per core than tract, whose depthwise
//! convolutions take a generic path. Both give the same labels (within 0.5 points:
//! `tests/engines_agree.rs`). Each net runs on the calling thread, one intra-op
//! thread, no spinning: the labeler's own pool of `concurrency` threads is the only
//! parallelism, so nothing oversubscribes the cores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bucketlens_schemas::error_codes;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::labeler::{LabelFailure, ModelError};

/// The ONNX Runtime release `scripts/fetch-onnxruntime` installs (from PyPI's
/// `onnxruntime` wheel); any 1.17 or later loads.
pub const ONNXRUNTIME_VERSION: &str = "1.32.0";

/// Which engine the settings ask for (`labeler.engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// ONNX Runtime if it loads, tract otherwise (the default).
    #[default]
    Auto,
    /// ONNX Runtime, or fail at start-up saying why it did not load.
    Onnxruntime,
    /// tract, even where ONNX Runtime is installed.
    Tract,
}

/// The engine the labeler runs on, resolved once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Onnxruntime {
        version: String,
        path: PathBuf,
    },
    /// tract; `why`: why not ONNX Runtime (`None` when tract was asked for).
    Tract {
        why: Option<String>,
    },
}

impl Engine {
    /// The engine `choice` gives: with `Auto`, ONNX Runtime from `library` (or the
    /// places [`candidates`] lists) if it loads, else tract, saying why.
    pub fn resolve(choice: EngineChoice, library: Option<&Path>) -> Result<Engine, ModelError> {
        if choice == EngineChoice::Tract {
            return Ok(Engine::Tract { why: None });
        }
        match onnxruntime(library) {
            Ok((version, path)) => Ok(Engine::Onnxruntime { version: version.clone(), path: path.clone() }),
            Err(why) if choice == EngineChoice::Auto => Ok(Engine::Tract { why: Some(why.clone()) }),
            Err(why) => Err(ModelError::Engine(why.clone())),
        }
    }

    /// For the start-up line: `onnxruntime 1.32.0` or `tract (…why)`.
    pub fn describe(&self) -> String {
        match self {
            Engine::Onnxruntime { version, .. } => format!("onnxruntime {version}"),
            Engine::Tract { why: None } => "tract".to_string(),
            Engine::Tract { why: Some(why) } => format!("tract ({why})"),
        }
    }

    /// The engine's name alone (`onnxruntime`, `tract`), for metrics and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Onnxruntime { .. } => "onnxruntime",
            Engine::Tract { .. } => "tract",
        }
    }
}

/// Where ONNX Runtime is looked for, in order: `labeler.onnxruntime` (or
/// `ORT_DYLIB_PATH`, ONNX Runtime's own variable), then what
/// `scripts/fetch-onnxruntime` installs under `~/.cache/bucketlens/lib/`, then
/// `libonnxruntime.so.1` on the system's library path (the Docker image's).
pub fn candidates(library: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = library {
        return vec![path.to_path_buf()];
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(path)];
    }
    let mut places = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        places.push(fetched_library(Path::new(&home)));
    }
    places.push(PathBuf::from("libonnxruntime.so.1"));
    places
}

/// The library `scripts/fetch-onnxruntime` installs for `home`.
pub fn fetched_library(home: &Path) -> PathBuf {
    home.join(format!(
        ".cache/bucketlens/lib/onnxruntime-{ONNXRUNTIME_VERSION}/libonnxruntime.so.{ONNXRUNTIME_VERSION}"
    ))
}

/// ONNX Runtime's one environment in this process, and its version and file; or why
/// it could not be loaded. Loaded once: the library stays for the process.
fn onnxruntime(library: Option<&Path>) -> &'static Result<(String, PathBuf), String> {
    static LOADED: OnceLock<Result<(String, PathBuf), String>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let places = candidates(library);
        let mut tried = Vec::new();
        for path in &places {
            // A bare file name goes to the system's search path; a path must exist.
            if path.components().count() > 1 && !path.exists() {
                tried.push(format!("{} does not exist", path.display()));
                continue;
            }
            match ort::init_from(path) {
                Ok(builder) => {
                    let environment = builder.with_name("bucketlens").with_telemetry(false).build();
                    return match environment {
                        Ok(environment) => {
                            let _ = ENVIRONMENT.set(environment);
                            Ok((version_of(path), path.clone()))
                        }
                        Err(e) => Err(format!("onnxruntime at {} did not start: {e}", path.display())),
                    };
                }
                Err(e) => tried.push(e.to_string()),
            }
        }
        Err(format!("onnxruntime not found: {}; `scripts/fetch-onnxruntime` installs it", tried.join("; ")))
    })
}

/// The library's version, from its file name (`libonnxruntime.so.1.32.0`, or what a
/// `libonnxruntime.so.1` link points to); its build info carries none.
fn version_of(path: &Path) -> String {
    let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split_once(".so.").map_or_else(|| "(version unknown)".to_string(), |(_, v)| v.to_string())
}

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

/// One output of a net: its shape and values.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The element type of a net's one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    F32,
    /// Token ids (a text tower's), as 32- or 64-bit integers.
    I32,
    I64,
}

/// A model loaded on the engine, taking one input of a fixed shape (`f32`, or
/// token ids: [`Input`]).
pub struct Net {
    runner: Runner,
    shape: Vec<usize>,
    input: Input,
    /// What the net is, for its errors ("the face detector").
    what: String,
}

enum Runner {
    Tract(Arc<TypedRunnableModel>),
    /// tract for a net of any input shape ([`Net::load_any_shape`]): a plan per shape,
    /// made at its first call from the file's bytes, the last [`TRACT_PLANS`] kept.
    TractShapes(Vec<u8>, Mutex<Vec<(Vec<usize>, Arc<TypedRunnableModel>)>>),
    /// Sessions (each runs one call at a time) sharing the prepacked weights, and the
    /// count of calls that found none free, to spread their waits over the sessions.
    Onnxruntime(Vec<Mutex<ort::session::Session>>, AtomicUsize),
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.runner {
            Runner::Tract(_) | Runner::TractShapes(..) => "tract",
            Runner::Onnxruntime(..) => "onnxruntime",
        };
        f.debug_struct("Net").field("what", &self.what).field("engine", &engine).field("shape", &self.shape).finish()
    }
}

impl Net {
    /// [`Net::load`], shared between labeling threads, with the first bytes of the
    /// file's SHA-256 in hex: a detector's part of the model version.
    pub fn load_versioned(
        engine: &Engine,
        bytes: &[u8],
        shape: &[usize],
        sessions: usize,
        what: &str,
    ) -> Result<(Arc<Net>, String), ModelError> {
        let net = Net::load(engine, bytes, shape, sessions, what)?;
        let digest = Sha256::digest(bytes).iter().take(3).map(|b| format!("{b:02x}")).collect();
        Ok((Arc::new(net), digest))
    }

    /// Loads `bytes` (an ONNX file) for input `shape`, with `sessions` ONNX Runtime
    /// sessions: that many callers run at once, more wait for one to be free (tract's
    /// plan is shared by all). Slow-ish: call it once, at start-up.
    pub fn load(
        engine: &Engine,
        bytes: &[u8],
        shape: &[usize],
        sessions: usize,
        what: &str,
    ) -> Result<Net, ModelError> {
        Net::load_typed(engine, bytes, shape, Input::F32, sessions, what)
    }

    /// [`Net::load`] for an input of element type `input`.
    pub fn load_typed(
        engine: &Engine,
        bytes: &[u8],
        shape: &[usize],
        input: Input,
        sessions: usize,
        what: &str,
    ) -> Result<Net, ModelError> {
        let runner = match engine {
            Engine::Tract { .. } => {
                Runner::Tract(tract_plan(bytes, shape, input).map_err(|e| ModelError::Model(format!("{what}: {e}")))?)
            }
            Engine::Onnxruntime { .. } => {
                let environment =
                    ENVIRONMENT.get().ok_or_else(|| ModelError::Engine("onnxruntime is not loaded".into()))?;
                let prepacked = ort::session::builder::PrepackedWeights::new();
                let sessions = (0..sessions.max(1))
                    .map(|_| ort_session(environment, &prepacked, bytes).map(Mutex::new))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| ModelError::Model(format!("{what}: {e}")))?;
                Runner::Onnxruntime(sessions, AtomicUsize::new(0))
            }
        };
        Ok(Net { runner, shape: shape.to_vec(), input, what: what.to_string() })
    }

    /// Loads `bytes` (an ONNX file) for inputs of any shape, each call giving its own
    /// ([`Net::run_shaped`]): the text detector's image is as large as the photo's
    /// proportions make it, a line's as long as its text.
    pub fn load_any_shape(engine: &Engine, bytes: &[u8], sessions: usize, what: &str) -> Result<Net, ModelError> {
        let net = match engine {
            Engine::Tract { .. } => {
                // Parsed now, so that a file tract cannot read fails at start-up.
                tract_onnx::onnx()
                    .model_for_read(&mut std::io::Cursor::new(bytes))
                    .map_err(|e| ModelError::Model(format!("{what}: {e:#}")))?;
                let runner = Runner::TractShapes(bytes.to_vec(), Mutex::new(Vec::new()));
                Net { runner, shape: Vec::new(), input: Input::F32, what: what.to_string() }
            }
            Engine::Onnxruntime { .. } => Net::load(engine, bytes, &[], sessions, what)?,
        };
        Ok(net)
    }

    /// Runs a net loaded by [`Net::load_any_shape`] on `input` of `shape`.
    pub fn run_shaped(&self, shape: &[usize], input: Vec<f32>) -> Result<Vec<Output>, LabelFailure> {
        self.run_as(shape, input)
    }

    /// Runs a net of token ids on `ids` (the shape it was loaded for, as its
    /// [`Input`] type); its outputs in order.
    pub fn run_ids(&self, ids: Vec<i64>) -> Result<Vec<Output>, LabelFailure> {
        match self.input {
            Input::I64 => self.run_any(ids),
            Input::I32 => self.run_any(ids.into_iter().map(|i| i as i32).collect::<Vec<i32>>()),
            Input::F32 => self.run_any(ids.into_iter().map(|i| i as f32).collect::<Vec<f32>>()),
        }
    }

    /// Runs the net on `input` (the shape it was loaded for); its outputs in order.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<Output>, LabelFailure> {
        self.run_any(input)
    }

    fn run_any<T>(&self, input: Vec<T>) -> Result<Vec<Output>, LabelFailure>
    where
        T: Datum + Copy + ort::value::PrimitiveTensorElementType + std::fmt::Debug + 'static,
    {
        self.run_as(&self.shape, input)
    }

    fn run_as<T>(&self, shape: &[usize], input: Vec<T>) -> Result<Vec<Output>, LabelFailure>
    where
        T: Datum + Copy + ort::value::PrimitiveTensorElementType + std::fmt::Debug + 'static,
    {
        let internal = |e: String| LabelFailure {
            code: error_codes::MODEL_ERROR,
            message: format!("{}: {e}", self.what),
            retryable: false,
        };
        let plan = match &self.runner {
            Runner::Tract(plan) => Some(plan.clone()),
            Runner::TractShapes(bytes, plans) => Some(self.plan_for(bytes, plans, shape).map_err(internal)?),
            Runner::Onnxruntime(..) => None,
        };
        match (&self.runner, plan) {
            (_, Some(plan)) => {
                let tensor = Tensor::from_shape(shape, &input).map_err(|e| internal(format!("{e:#}")))?;
                let outputs = plan.run(tvec!(tensor.into_tvalue())).map_err(|e| internal(format!("{e:#}")))?;
                outputs
                    .iter()
                    .map(|o| {
                        let view = o.to_plain_array_view::<f32>().map_err(|e| internal(format!("{e:#}")))?;
                        Ok(Output { shape: view.shape().to_vec(), values: view.iter().copied().collect() })
                    })
                    .collect()
            }
            (Runner::Onnxruntime(sessions, waits), None) => {
                // A free session, or else a turn in the next one round.
                let mut session = match sessions.iter().find_map(|s| s.try_lock().ok()) {
                    Some(free) => free,
                    None => sessions[waits.fetch_add(1, Ordering::Relaxed) % sessions.len()]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                };
                let tensor =
                    ort::value::Tensor::from_array((shape.to_vec(), input)).map_err(|e| internal(e.to_string()))?;
                let outputs = session.run(ort::inputs![tensor]).map_err(|e| internal(e.to_string()))?;
                outputs
                    .values()
                    .map(|value| {
                        let (shape, values) = value.try_extract_tensor::<f32>().map_err(|e| internal(e.to_string()))?;
                        let shape = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
                        Ok(Output { shape, values: values.to_vec() })
                    })
                    .collect()
            }
            (_, None) => Err(internal("no plan for tract".to_string())),
        }
    }

    /// tract's plan for `shape`: the one kept, or a new one (kept, the oldest let go).
    fn plan_for(
        &self,
        bytes: &[u8],
        plans: &Mutex<Vec<(Vec<usize>, Arc<TypedRunnableModel>)>>,
        shape: &[usize],
    ) -> Result<Arc<TypedRunnableModel>, String> {
        let kept = |plans: &Mutex<Vec<(Vec<usize>, Arc<TypedRunnableModel>)>>| {
            let plans = plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            plans.iter().find(|(s, _)| s == shape).map(|(_, p)| p.clone())
        };
        if let Some(plan) = kept(plans) {
            return Ok(plan);
        }
        let plan = tract_plan(bytes, shape, self.input)?;
        let mut plans = plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if plans.len() >= TRACT_PLANS {
            plans.remove(0);
        }
        plans.push((shape.to_vec(), plan.clone()));
        Ok(plan)
    }
}

/// How many plans a net of any shape keeps on tract (each holds its weights: the
/// text recogniser's are 11 MB).
const TRACT_PLANS: usize = 8;

fn tract_plan(bytes: &[u8], shape: &[usize], input: Input) -> Result<Arc<TypedRunnableModel>, String> {
    let datum = match input {
        Input::F32 => f32::datum_type(),
        Input::I32 => i32::datum_type(),
        Input::I64 => i64::datum_type(),
    };
    let fact = InferenceFact::dt_shape(datum, shape.iter().copied().collect::<TVec<_>>());
    tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .and_then(|m| m.with_input_fact(0, fact))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("{e:#}"))
}

fn ort_session(
    environment: &ort::environment::Environment,
    prepacked: &ort::session::builder::PrepackedWeights,
    bytes: &[u8],
) -> Result<ort::session::Session, String> {
    use ort::session::builder::GraphOptimizationLevel;
    let text = |e: ort::Error<ort::session::builder::SessionBuilder>| e.to_string();
    ort::session::Session::builder(environment)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(text)?
        .with_intra_threads(1)
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        .with_intra_op_spinning(false)
        .map_err(text)?
        .with_independent_thread_pool()
        .map_err(text)?
        .with_prepacked_weights(prepacked)
        .map_err(text)?
        .commit_from_memory(bytes)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tract_is_what_tract_asks_for_and_a_missing_library_is_named() {
        assert_eq!(Engine::resolve(EngineChoice::Tract, None).expect("tract"), Engine::Tract { why: None });
        let places = candidates(Some(Path::new("/nonexistent/libonnxruntime.so")));
        assert_eq!(places, vec![PathBuf::from("/nonexistent/libonnxruntime.so")]);
    }
}

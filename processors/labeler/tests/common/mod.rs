//! What the labeler's integration tests share.

use std::path::PathBuf;

use bucketlens_labeler::engine::EngineChoice;
use bucketlens_labeler::local::LocalOptions;

/// A labeler's options on `engine` for comparing labels: two threads, and every
/// label down to 1%, up to 50. ONNX Runtime's library is the one `scripts/test`
/// installs (`scripts/fetch-onnxruntime`) and names in ONNXRUNTIME_LIBRARY.
pub fn options(engine: EngineChoice) -> LocalOptions {
    let onnxruntime = std::env::var_os("ONNXRUNTIME_LIBRARY")
        .expect("this test needs ONNX Runtime: run it with scripts/test, which installs it");
    LocalOptions {
        threads: 2,
        min_confidence: 1.0,
        max_labels: 50,
        engine,
        onnxruntime: Some(onnxruntime.into()),
        ..LocalOptions::default()
    }
}

/// The example photos' folder.
pub fn photos() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos")
}

//! Model-only speed per core of the labeler's two engines, ONNX Runtime (the library
//! `scripts/fetch-onnxruntime` installs) and tract, against the baseline of
//! onnxruntime in Python (the reference script's venv) on the same ONNX files, one
//! thread each, in the same run. Per model: the classifier, the face detector, the
//! object detector, and the COCO detector where `models/centernet/fetch` made it.
//!
//! Usage: target/release/bucketlens-bench-engines [RUNS=200]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use bucketlens_bench::{reference_python, repository};
use bucketlens_labeler::engine::{Engine, EngineChoice, Net};

/// Runs of one net on one thread per second, after a warm-up run.
fn rate(net: &Net, input: &[f32], runs: usize) -> anyhow::Result<f64> {
    net.run(input.to_vec()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = Instant::now();
    for _ in 0..runs {
        net.run(input.to_vec()).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(runs as f64 / start.elapsed().as_secs_f64())
}

/// The same in Python's onnxruntime, one intra-op thread.
fn python_rate(python: &Path, model: &Path, shape: &[usize], runs: usize) -> anyhow::Result<f64> {
    let script = r#"
import sys, time, numpy, onnxruntime
model, shape, runs = sys.argv[1], [int(d) for d in sys.argv[2].split(",")], int(sys.argv[3])
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
x = numpy.random.default_rng(1).uniform(-1, 1, shape).astype(numpy.float32)
name = session.get_inputs()[0].name
session.run(None, {name: x})
start = time.perf_counter()
for _ in range(runs):
    session.run(None, {name: x})
print(runs / (time.perf_counter() - start))
"#;
    let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
    let out =
        Command::new(python).arg("-c").arg(script).arg(model).arg(shape.join(",")).arg(runs.to_string()).output()?;
    if !out.status.success() {
        bail!("python onnxruntime on {}: {}", model.display(), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().context("python's rate")
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(200), |s| s.parse())?;
    let python = reference_python()?;
    let fast = Engine::resolve(EngineChoice::Onnxruntime, None)?;
    let tract = Engine::resolve(EngineChoice::Tract, None)?;
    println!("engines: {} and {}; {runs} runs per model, 1 thread", fast.describe(), tract.describe());
    let mut models: Vec<(&str, PathBuf, Vec<usize>)> = vec![
        (
            "classifier (EfficientNet-Lite0)",
            repository().join("models/efficientnet-lite0/model.onnx"),
            vec![1, 3, 224, 224],
        ),
        (
            "faces (BlazeFace)",
            repository().join("models/blazeface/face_detection_full_range.onnx"),
            vec![1, 3, 192, 192],
        ),
        (
            "objects (SSD MobileNetV2, Open Images)",
            repository().join("models/ssd-oidv4/ssd_mobilenetv2_oidv4.onnx"),
            vec![1, 3, 300, 300],
        ),
    ];
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME")?);
    let centernet = home.join(".cache/bucketlens/models/centernet/centernet.onnx");
    if centernet.exists() {
        models.push(("COCO detector (CenterNet)", centernet, vec![1, 512, 512, 3]));
    }
    for (name, path, shape) in models {
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let input: Vec<f32> = (0..shape.iter().product::<usize>()).map(|i| ((i % 255) as f32 / 127.5) - 1.0).collect();
        let ort = rate(&Net::load(&fast, &bytes, &shape, 1, name)?, &input, runs)?;
        let tr = rate(&Net::load(&tract, &bytes, &shape, 1, name)?, &input, runs.div_ceil(3))?;
        let py = python_rate(&python, &path, &shape, runs)?;
        println!("{name}:");
        println!("  baseline, onnxruntime in Python: {py:.1} runs/s");
        println!("  bucketlens on onnxruntime: {ort:.1} runs/s; ratio to the baseline {:.2}", ort / py);
        println!("  bucketlens on tract: {tr:.1} runs/s; ratio to the baseline {:.2}", tr / py);
    }
    Ok(())
}

//! Helpers shared by the benchmarks: running the real binary while sampling its
//! peak resident memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The `bucketlens` binary beside the running benchmark (same target folder).
pub fn bucketlens() -> anyhow::Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("bucketlens");
    if !binary.exists() {
        bail!("{} is missing: run `cargo build --release --workspace` first", binary.display());
    }
    Ok(binary)
}

/// Peak resident memory of a running process, in MiB (VmHWM), if still readable.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resident memory of a running process now, in MiB (VmRSS), if readable.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user and system) a running process has used, in seconds, if still readable.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: state, then utime and stime as the
    // 12th and 13th fields, in clock ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// The machine's CPU time so far, busy and in all, in seconds summed over its cores
/// (`/proc/stat`; idle and I/O wait are not busy).
pub fn machine_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> =
        stat.lines().next()?.split_whitespace().skip(1).take(8).map(|t| t.parse().unwrap_or(0.0)).collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some(((total - idle) / clock_ticks(), total / clock_ticks()))
}

/// Clock ticks a second (`getconf CLK_TCK`, asked once: the readings above are taken
/// inside the measured runs).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// What one sampled run took.
pub struct Sampled {
    pub wall: Duration,
    pub peak_rss_mib: f64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to the end, sampling its peak RSS every 20 ms; fails if it fails.
pub fn run_sampled(mut command: Command) -> anyhow::Result<Sampled> {
    let what = format!("{command:?}");
    let start = Instant::now();
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    // Drain the pipes on their own threads, so a chatty child never blocks.
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(rss) = peak_rss_mib(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("{what} failed ({status}):\n{stderr}");
    }
    Ok(Sampled { wall, peak_rss_mib: peak, stdout, stderr })
}

/// A local Kafka-protocol broker and the commands that run bucketlens against it.
pub mod kafka {
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::bail;
    use bucketlens_runtime::log::{KafkaLog, Log, Until};

    /// A tansu broker on 127.0.0.1 in a folder of its own, ended when dropped.
    pub struct Broker {
        child: Child,
        pub bootstrap: String,
    }

    impl Broker {
        pub fn pid(&self) -> u32 {
            self.child.id()
        }
    }

    impl Drop for Broker {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Starts tansu (SQLite engine) in `dir`: `TANSU_BINARY`, else the copy
    /// `scripts/test-servers` installs.
    pub fn start_broker(dir: &Path) -> anyhow::Result<Broker> {
        let tansu = std::env::var_os("TANSU_BINARY").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/bucketlens/tools/tansu-0.6.0/bin/tansu")
        });
        if !tansu.is_file() {
            bail!("no tansu at {}: run scripts/test-servers first", tansu.display());
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .current_dir(dir)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Broker { child, bootstrap: format!("127.0.0.1:{port}") })
    }

    /// `bucketlens --config CONFIG --data-dir DATA ARGS` with `env` set.
    pub fn command(config: &Path, data: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap_or_default().with_file_name("bucketlens"));
        cmd.arg("--config").arg(config).arg("--data-dir").arg(data).args(args);
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    /// A configuration for the Kafka log at `bootstrap`, topics prefixed `prefix`.
    pub fn write_config(path: &Path, bootstrap: &str, prefix: &str, partitions: u32) -> anyhow::Result<()> {
        std::fs::write(
            path,
            format!(
                "[log]\nbackend = \"kafka\"\npartitions = {partitions}\n[log.kafka]\nbrokers = \"{bootstrap}\"\ntopic-prefix = \"{prefix}\"\n"
            ),
        )?;
        Ok(())
    }

    /// Whether `group` has committed `topic` up to its end offsets now.
    pub async fn caught_up(log: &KafkaLog, group: &str, topic: &str) -> anyhow::Result<bool> {
        Ok(Until::EndOffsets(log.watermarks(topic).await?).reached(log, group, topic).await?)
    }
}

/// The example photos' folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos")
}

/// The example photos (PNG and JPEG), sorted.
pub fn example_files() -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg"))
        .collect();
    files.sort();
    Ok(files)
}

/// COPIES copies of the examples plus LARGE 12 MP JPEGs made from them, under `root`;
/// the number of images.
pub fn make_corpus(root: &Path, copies: usize, large: usize) -> anyhow::Result<usize> {
    let files = example_files()?;
    let mut count = 0;
    for copy in 0..copies {
        let dir = root.join(format!("copy-{copy:03}"));
        std::fs::create_dir_all(&dir)?;
        for f in &files {
            std::fs::copy(f, dir.join(f.file_name().context("file name")?))?;
            count += 1;
        }
    }
    let dir = root.join("large");
    std::fs::create_dir_all(&dir)?;
    // Upscaled from the PNG examples (the JPEG ones go through jpeg-decoder only).
    let pngs: Vec<&PathBuf> = files.iter().filter(|f| f.extension().is_some_and(|x| x == "png")).collect();
    for i in 0..large {
        let source = pngs[i % pngs.len()];
        let img = image::open(source)?.to_rgb8();
        let big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Triangle);
        let path = dir.join(format!("large-{i:03}.jpg"));
        let encoder = jpeg_encoder::Encoder::new_file(&path, 90)?;
        encoder.encode(big.as_raw(), 4000, 3000, jpeg_encoder::ColorType::Rgb)?;
        count += 1;
    }
    Ok(count)
}

/// What the Python reference runs on.
const PACKAGES: [&str; 3] = ["onnxruntime==1.32.0", "pillow==13.0.0", "numpy==2.4.6"];

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python of the venv with the reference's packages (onnxruntime, Pillow,
/// numpy, pinned), made once: `~/.cache/bucketlens/tools/bench-reference-1`.
pub fn reference_python() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = PathBuf::from(home).join(".cache/bucketlens/tools/bench-reference-1");
    let python = venv.join("bin/python");
    let ready = python.exists()
        && Command::new(&python).args(["-c", "import onnxruntime, PIL, numpy"]).status().is_ok_and(|s| s.success());
    if !ready {
        eprintln!("installing {} for the reference script (once)", PACKAGES.join(", "));
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?;
        let installed = Command::new(venv.join("bin/pip")).args(["install", "--quiet"]).args(PACKAGES).status()?;
        if !made.success() || !installed.success() {
            bail!("could not install the reference's packages into {}", venv.display());
        }
    }
    Ok(python)
}

/// The shipped photos and the copies of each that a bucket really holds (the
/// near-duplicate benchmarks' set: `bucketlens-bench-hashes`, `-similar`).
pub mod copies {
    use std::io::Cursor;

    use anyhow::Context;
    use image::{DynamicImage, ImageFormat, RgbImage};

    pub fn photos() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut found = Vec::new();
        for dir in [super::examples(), super::repository().join("examples/tagged")] {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|x| x == "png" || x == "jpg") {
                    let name = path.file_name().context("name")?.to_string_lossy().into_owned();
                    found.push((name, std::fs::read(&path)?));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    pub fn encode(image: &DynamicImage, format: ImageFormat) -> anyhow::Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format)?;
        Ok(out.into_inner())
    }

    pub fn jpeg(image: &RgbImage, quality: u8) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
        encoder.encode(image.as_raw(), image.width() as u16, image.height() as u16, jpeg_encoder::ColorType::Rgb)?;
        Ok(out)
    }

    /// The copies of one photo a bucket holds: (what, bytes).
    pub fn copies(bytes: &[u8]) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
        // The whole photo, decoded as the labeler decodes (the image crate here has no JPEG).
        let (rgb, _) =
            bucketlens_labeler::image::decode(bytes, 100_000_000, u32::MAX).map_err(|e| anyhow::anyhow!("{e}"))?;
        let image = DynamicImage::ImageRgb8(rgb.clone());
        let (w, h) = rgb.dimensions();
        let half = image.resize(w / 2, h / 2, image::imageops::FilterType::Lanczos3);
        let (dx, dy) = (w * 4 / 100, h * 4 / 100);
        let cropped = image.crop_imm(dx, dy, w - 2 * dx, h - 2 * dy);
        let graded = RgbImage::from_fn(w, h, |x, y| {
            let p = rgb.get_pixel(x, y).0;
            let curve =
                |v: u8, gain: f32| (((f32::from(v) / 255.0 - 0.5) * 1.15 + 0.5) * gain * 255.0).clamp(0.0, 255.0) as u8;
            image::Rgb([curve(p[0], 1.08), curve(p[1], 1.0), curve(p[2], 0.9)])
        });
        Ok(vec![
            ("original", bytes.to_vec()),
            ("exact copy", bytes.to_vec()),
            ("half size", encode(&half, ImageFormat::Png)?),
            ("JPEG quality 40", jpeg(&rgb, 40)?),
            ("cropped 4%", encode(&cropped, ImageFormat::Png)?),
            ("WebP", encode(&image, ImageFormat::WebP)?),
            ("colour-graded", jpeg(&graded, 90)?),
        ])
    }

    /// The picture a shipped photo is: examples/tagged holds three of the photos again
    /// with metadata written into them (the same pixels, other bytes: a copy a bucket
    /// really holds).
    pub fn picture(name: &str) -> &str {
        match name {
            "temple.jpg" => "china.jpg",
            "daisy.jpg" => "flower.jpg",
            "launch.jpg" => "rocket.jpg",
            other => other,
        }
    }
}

/// Images/s of `labeler` over `corpus`, every image handed to it at once (it runs as
/// many at a time as it has threads).
pub fn images_per_second(
    runtime: &tokio::runtime::Runtime,
    labeler: &bucketlens_labeler::local::LocalLabeler,
    corpus: &[Vec<u8>],
) -> anyhow::Result<f64> {
    use bucketlens_labeler::Labeler;
    let start = std::time::Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = corpus.iter().map(|bytes| labeler.label(bytes.clone())).collect();
        for t in tasks {
            t.await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        anyhow::Ok(())
    })?;
    Ok(corpus.len() as f64 / start.elapsed().as_secs_f64())
}

/// Images/s of a labeler with a setting off (`base`, the baseline) and on (`with`), in
/// turns, `rounds` rounds, each first every other round so that the machine's drift
/// falls on both: prints each round and the median ratio (one round swings with the
/// machine; the median of several is the figure), and returns that median.
pub fn in_turns(
    rounds: usize,
    setting: &str,
    mut base: impl FnMut() -> anyhow::Result<f64>,
    mut with: impl FnMut() -> anyhow::Result<f64>,
) -> anyhow::Result<f64> {
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (off, on) = if round % 2 == 1 {
            (base()?, with()?)
        } else {
            let on = with()?;
            (base()?, on)
        };
        println!(
            "round {round}: {setting} off (baseline) {off:.1} images/s, on {on:.1} images/s, ratio {:.3}",
            on / off
        );
        ratios.push(on / off);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    if let (Some(low), Some(high)) = (ratios.first(), ratios.last()) {
        println!("ratio over {rounds} rounds: median {median:.3} (lowest {low:.3}, highest {high:.3})");
    }
    Ok(median)
}

/// The medians of a baseline's and a setting's images/s on 2 threads, printed with
/// what each costs an image in core-milliseconds; returns them.
pub fn print_medians(base: &mut [f64], with: &mut [f64]) -> (f64, f64) {
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (base, with) = (median(base), median(with));
    println!(
        "median images/s: {base:.1} without, {with:.1} with; per image {:.1} core-ms without, {:.1} with (+{:.1})",
        2000.0 / base,
        2000.0 / with,
        2000.0 / with - 2000.0 / base
    );
    (base, with)
}

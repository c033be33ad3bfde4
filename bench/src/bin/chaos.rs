//! Chaos on Kafka: "nothing lost, nothing stalls" at scale, with processes killed.
//!
//! On a local tansu broker (4 partitions), the distributed mode as an operator runs
//! it, each role a process with a data dir of its own: `produce listing DIR --watch`,
//! two `label` members of one group, and `sink` into the embedded index.
//!
//! 1. **Baseline**: a back-fill of OBJECTS small JPEGs with nothing killed, timed to
//!    the moment both groups have committed everything.
//! 2. **Chaos back-fill**: the same on a fresh set of topics, groups and data dirs,
//!    while KILLS SIGKILLs hit a random role (the producer, either labeler, the sink)
//!    at random moments, each restarted after 0–2 s.
//! 3. **Chaos with changes**: with the same processes, 10% of the objects are
//!    replaced, 10% deleted and 5% added while KILLS more SIGKILLs land.
//!
//! After 2 and 3 the index is compared with the folder: every object has one
//! document with its current etag (lost, stale and left-over documents are counted
//! and listed), nothing failed; and the label log is read to count the versions
//! labeled more than once (the work the kills cost). Printed: wall times, the ratio
//! chaos / baseline, and those counts.
//!
//! Usage: cargo build --release --workspace && eval "$(scripts/test-servers)" && \
//!   target/release/bucketlens-bench-chaos [OBJECTS=10000] [KILLS=20] [SEED=1]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bucketlens_bench::kafka::{caught_up, command, start_broker, write_config};
use bucketlens_runtime::bucket::etag_of;
use bucketlens_runtime::log::{KafkaConfig, KafkaLog, Log};
use bucketlens_schemas::{AvroRecord, ImageLabeled, LabelKind};

const LABELER_GROUP: &str = "chaos-labeler";
const INDEX_GROUP: &str = "chaos-index";

/// One role: its command line and data dir, and its process while it runs.
struct Role {
    name: &'static str,
    args: Vec<String>,
    data: PathBuf,
    child: Option<Child>,
    kills: u32,
}

struct Run {
    config: PathBuf,
    roles: Vec<Role>,
    env: Vec<(String, String)>,
}

impl Run {
    fn new(root: &Path, bootstrap: &str, prefix: &str, photos: &Path) -> anyhow::Result<Self> {
        let config = root.join(format!("{prefix}toml"));
        write_config(&config, bootstrap, prefix, 4)?;
        let photos = photos.to_str().context("a UTF-8 temp path")?.to_string();
        let role = |name: &'static str, args: &[&str]| Role {
            name,
            args: args.iter().map(|a| a.to_string()).collect(),
            data: root.join(format!("{prefix}{name}")),
            child: None,
            kills: 0,
        };
        let roles = vec![
            role("sink", &["sink"]),
            role("labeler-a", &["label"]),
            role("labeler-b", &["label"]),
            role("producer", &["produce", "listing", &photos, "--watch"]),
        ];
        // The labelers read the folder's bucket (named after the folder) from the folder.
        let bucket = Path::new(&photos).file_name().context("a folder name")?.to_string_lossy().to_uppercase();
        let env = vec![
            (format!("BUCKETLENS_BUCKETS__{bucket}"), photos.clone()),
            ("BUCKETLENS_LABELER__CONCURRENCY".into(), "1".to_string()),
            ("BUCKETLENS_LABELER__GROUP".into(), LABELER_GROUP.to_string()),
            ("BUCKETLENS_INDEX__GROUP".into(), INDEX_GROUP.to_string()),
        ];
        Ok(Self { config, roles, env })
    }

    fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let role = &mut self.roles[i];
        let args: Vec<&str> = role.args.iter().map(String::as_str).collect();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(role.data.with_extension("log"))?;
        let env: Vec<(&str, String)> = self.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let child = command(&self.config, &role.data, &args, &env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", role.name))?;
        role.child = Some(child);
        Ok(())
    }

    fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.roles.len() {
            self.start(i)?;
            // The consumers first, so their groups exist before the records arrive.
            std::thread::sleep(Duration::from_millis(if i + 1 == self.roles.len() { 0 } else { 1500 }));
        }
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        let role = &mut self.roles[i];
        if let Some(mut child) = role.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            role.kills += 1;
        }
    }

    /// SIGTERM to every role, the producer first, and wait for each.
    fn stop_all(&mut self) {
        for role in self.roles.iter_mut().rev() {
            if let Some(mut child) = role.child.take() {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                let _ = child.wait();
            }
        }
    }

    fn sink_data(&self) -> &Path {
        &self.roles[0].data
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for role in &mut self.roles {
            if let Some(mut child) = role.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A few distinct small JPEGs (the example photos at 96 px), to write many times.
fn sources() -> anyhow::Result<Vec<Vec<u8>>> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos");
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&examples)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg")) {
        let image = image::open(&path).with_context(|| path.display().to_string())?;
        for size in [96, 80] {
            let small = image.thumbnail(size, size).to_rgb8();
            let mut jpeg = Vec::new();
            let (w, h) = (small.width() as u16, small.height() as u16);
            jpeg_encoder::Encoder::new(&mut jpeg, 85).encode(small.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)?;
            out.push(jpeg);
        }
    }
    Ok(out)
}

fn write_objects(photos: &Path, range: std::ops::Range<usize>, sources: &[Vec<u8>], salt: usize) -> anyhow::Result<()> {
    for i in range {
        let dir = photos.join(format!("d{:02}", i % 50));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("photo-{i:06}.jpg")), &sources[(i + salt) % sources.len()])?;
    }
    Ok(())
}

/// key → etag of every image in the folder, as the listing sees them.
fn folder(photos: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(photos)? {
        let dir = dir?.path();
        for file in std::fs::read_dir(&dir)? {
            let file = file?;
            let key = format!(
                "{}/{}",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            out.insert(key, etag_of(&file.metadata()?));
        }
    }
    Ok(out)
}

/// key → etag of every document in the sink's index, and the failed ones' count.
fn index(run: &Run) -> anyhow::Result<(BTreeMap<String, String>, u64)> {
    let search = |args: &[&str]| -> anyhow::Result<serde_json::Value> {
        let out = command(&run.config, run.sink_data(), args, &[]).output()?;
        if !out.status.success() {
            bail!("search failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let all = search(&["search", "*", "--limit", "1000000", "--json"])?;
    let mut docs = BTreeMap::new();
    for hit in all["hits"].as_array().context("hits")? {
        let key = hit["key"].as_str().context("key")?;
        docs.insert(key.to_string(), hit["etag"].as_str().unwrap_or_default().to_string());
    }
    let failed = search(&["search", "--failed", "--json", "--limit", "1000000"])?["total"].as_u64().unwrap_or(0);
    Ok((docs, failed))
}

/// Waits until both groups have committed everything and no record has arrived for
/// a few seconds (the watching producer has nothing left to say).
async fn converge(log: &KafkaLog, since: Instant, limit: Duration) -> anyhow::Result<Duration> {
    let mut quiet_since: Option<(Instant, Vec<i64>)> = None;
    loop {
        let ends = [log.watermarks("objects.changed.v1").await?, log.watermarks("images.labeled.v1").await?];
        let ends: Vec<i64> = ends.iter().flat_map(|w| w.iter().map(|w| w.high)).collect();
        let done = caught_up(log, LABELER_GROUP, "objects.changed.v1").await?
            && caught_up(log, INDEX_GROUP, "images.labeled.v1").await?;
        match (&quiet_since, done) {
            (Some((at, seen)), true) if *seen == ends => {
                if at.elapsed() > Duration::from_secs(5) {
                    return Ok(*at - since);
                }
            }
            (_, true) => quiet_since = Some((Instant::now(), ends)),
            (_, false) => quiet_since = None,
        }
        if since.elapsed() > limit {
            bail!("not caught up after {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Kills a random role at KILLS random moments within `window`, restarting each
/// after 0–2 s, while `during` runs alongside (on its own thread).
fn chaos(run: &mut Run, rng: &mut fastrand::Rng, kills: usize, window: Duration) -> anyhow::Result<Vec<String>> {
    let start = Instant::now();
    let mut moments: Vec<Duration> = (0..kills).map(|_| window.mul_f64(rng.f64().mul_add(0.9, 0.05))).collect();
    moments.sort();
    let mut log = Vec::new();
    for at in moments {
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let victim = rng.usize(0..run.roles.len());
        run.kill(victim);
        log.push(format!("{:.1}s {}", start.elapsed().as_secs_f64(), run.roles[victim].name));
        std::thread::sleep(Duration::from_millis(rng.u64(0..2000)));
        run.start(victim)?;
    }
    Ok(log)
}

struct Verdict {
    lost: Vec<String>,
    stale: Vec<String>,
    left_over: Vec<String>,
    failed: u64,
    documents: usize,
}

fn verify(run: &Run, photos: &Path) -> anyhow::Result<Verdict> {
    let want = folder(photos)?;
    let (have, failed) = index(run)?;
    let lost = want.keys().filter(|k| !have.contains_key(*k)).cloned().collect();
    let stale = want
        .iter()
        .filter_map(|(k, etag)| {
            have.get(k).filter(|h| *h != etag).map(|h| format!("{k} (indexed {h}, current {etag})"))
        })
        .collect();
    let left_over = have.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
    Ok(Verdict { lost, stale, left_over, failed, documents: have.len() })
}

fn print_verdict(what: &str, objects: usize, v: &Verdict) -> bool {
    let sample = |keys: &[String]| keys.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    println!(
        "  {what}: {objects} objects, {} documents · lost {} · stale {} · left over {} · failed {}",
        v.documents,
        v.lost.len(),
        v.stale.len(),
        v.left_over.len(),
        v.failed
    );
    for (name, keys) in [("lost", &v.lost), ("stale", &v.stale), ("left over", &v.left_over)] {
        if !keys.is_empty() {
            println!("    {name}: {}", sample(keys));
        }
    }
    v.lost.is_empty() && v.stale.is_empty() && v.left_over.is_empty() && v.failed == 0
}

/// Label records per object version (bucket, key, etag): how many versions were
/// labeled more than once, and the most times one was.
async fn relabeled(bootstrap: &str, prefix: &str) -> anyhow::Result<(usize, usize, usize)> {
    let log = KafkaLog::connect(KafkaConfig {
        brokers: bootstrap.to_string(),
        topic_prefix: prefix.to_string(),
        ..KafkaConfig::default()
    })
    .await?;
    let mut consumer = log.subscribe("chaos-counter", "images.labeled.v1").await?;
    let mut counts: HashMap<(String, Option<String>), usize> = HashMap::new();
    // To the end: until 2 s pass with nothing more.
    let mut empty = 0;
    while empty < 4 {
        let records = consumer.poll(10_000, Duration::from_millis(500)).await?;
        empty = if records.is_empty() { empty + 1 } else { 0 };
        for record in records {
            let labeled = ImageLabeled::from_bytes(&record.value)?;
            if labeled.kind == LabelKind::Labeled {
                *counts.entry((labeled.key, labeled.etag)).or_default() += 1;
            }
        }
    }
    let twice = counts.values().filter(|&&n| n > 1).count();
    Ok((counts.len(), twice, counts.values().copied().max().unwrap_or(0)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let objects = args.first().copied().unwrap_or(10_000) as usize;
    let kills = args.get(1).copied().unwrap_or(20) as usize;
    let mut rng = fastrand::Rng::with_seed(args.get(2).copied().unwrap_or(1));
    let tmp = tempfile::tempdir()?;
    let broker = start_broker(tmp.path())?;
    let sources = sources()?;
    let connect = |prefix: &str| {
        KafkaLog::connect(KafkaConfig {
            brokers: broker.bootstrap.clone(),
            topic_prefix: prefix.to_string(),
            ..KafkaConfig::default()
        })
    };
    println!("chaos on Kafka: {objects} objects, {kills} SIGKILLs a phase, 2 labelers (1 thread each), 4 partitions");

    // 1. The baseline: nothing killed.
    let photos = tmp.path().join("calm");
    write_objects(&photos, 0..objects, &sources, 0)?;
    let mut calm = Run::new(tmp.path(), &broker.bootstrap, "calm.", &photos)?;
    let start = Instant::now();
    calm.start_all()?;
    let log = connect("calm.").await?;
    let calm_wall = converge(&log, start, Duration::from_secs(3600)).await?;
    calm.stop_all();
    let calm_ok = print_verdict("baseline back-fill, nothing killed", objects, &verify(&calm, &photos)?);
    println!("    {:.1} s, {:.1} objects/s", calm_wall.as_secs_f64(), objects as f64 / calm_wall.as_secs_f64());
    drop(calm);

    // 2. The same back-fill under chaos.
    let photos = tmp.path().join("chaos");
    write_objects(&photos, 0..objects, &sources, 0)?;
    let mut run = Run::new(tmp.path(), &broker.bootstrap, "chaos.", &photos)?;
    let start = Instant::now();
    run.start_all()?;
    let log = connect("chaos.").await?;
    let killed = chaos(&mut run, &mut rng, kills, calm_wall)?;
    let chaos_wall = converge(&log, start, Duration::from_secs(3600)).await?;
    let backfill = verify(&run, &photos)?;
    let backfill_ok = print_verdict("back-fill under chaos", objects, &backfill);
    println!(
        "    {:.1} s, {:.1} objects/s; ratio chaos / baseline {:.2}",
        chaos_wall.as_secs_f64(),
        objects as f64 / chaos_wall.as_secs_f64(),
        chaos_wall.as_secs_f64() / calm_wall.as_secs_f64()
    );
    println!("    killed: {}", killed.join(", "));

    // 3. Replaces, deletes and additions while the kills go on.
    let start = Instant::now();
    let changes = std::thread::scope(|scope| -> anyhow::Result<(usize, usize, usize)> {
        let photos = &photos;
        let sources = &sources;
        let changer = scope.spawn(move || -> anyhow::Result<(usize, usize, usize)> {
            let mut rng = fastrand::Rng::with_seed(7);
            let (mut replaced, mut deleted) = (0, 0);
            let added = objects / 20;
            for step in 0..objects / 5 {
                let i = rng.usize(0..objects);
                let path = photos.join(format!("d{:02}/photo-{i:06}.jpg", i % 50));
                if step % 2 == 0 && path.exists() {
                    std::fs::write(&path, &sources[(i + 1 + step) % sources.len()])?;
                    replaced += 1;
                } else if std::fs::remove_file(&path).is_ok() {
                    deleted += 1;
                }
                if step % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            write_objects(photos, objects..objects + added, sources, 3)?;
            Ok((replaced, deleted, added))
        });
        let killed = chaos(&mut run, &mut rng, kills, calm_wall.max(Duration::from_secs(60)) / 2)?;
        println!("    killed while changing: {}", killed.join(", "));
        changer.join().map_err(|_| anyhow::anyhow!("the changer panicked"))?
    })?;
    let changed_wall = converge(&log, start, Duration::from_secs(3600)).await?;
    let now = folder(&photos)?.len();
    let (replaced, deleted, added) = changes;
    let changed = verify(&run, &photos)?;
    let changed_ok = print_verdict(
        &format!("after {replaced} replaces, {deleted} deletes and {added} additions under chaos"),
        now,
        &changed,
    );
    println!("    converged {:.1} s after the changes began", changed_wall.as_secs_f64());
    let kills_per_role: Vec<String> = run.roles.iter().map(|r| format!("{} {}", r.name, r.kills)).collect();
    run.stop_all();
    let (versions, twice, most) = relabeled(&broker.bootstrap, "chaos.").await?;
    println!("  kills per role: {}", kills_per_role.join(", "));
    println!("  label log: {versions} versions labeled, {twice} of them more than once (at most {most} times): the kills' cost");
    if !(calm_ok && backfill_ok && changed_ok) {
        let kept = tmp.keep();
        bail!("the index does not equal the folder (the run is kept in {})", kept.display());
    }
    println!("  the index equals the folder after each phase: 0 lost, 0 stale, 0 left over, 0 failed");
    Ok(())
}

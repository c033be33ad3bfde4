//! Kafka benchmarks on a local tansu broker (started here, like the tests do), each
//! against its baseline in the same run:
//!
//! 1. `bucketlens produce listing DIR` of FILES images: records/s, against a plain
//!    rdkafka producer (idempotent, acks=all) sending the very same records (read
//!    back from the topic) to another topic.
//! 2. The label stage alone: COPIES×12 example photos produced and labeled by one vs
//!    two `bucketlens label` processes (one inference thread each), no sink: images/s
//!    and the ratio two/one (issue 16's 1.8), with the cores each role used meanwhile
//!    and how busy the machine was.
//! 3. The same end to end (produce, label, index), with a sink.
//! 4. Asking a group's committed offsets (what members waiting for their group's end
//!    offsets do every poll) through `KafkaLog::committed`, against the baseline of a
//!    new rdkafka client for each ask (what it did before): asks/s and the broker's
//!    CPU per ask.
//!
//! Usage: cargo build --release --workspace && \
//!   TANSU_BINARY=… target/release/bucketlens-bench-kafka [FILES=20000] [COPIES=10]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bucketlens_bench::kafka::{caught_up, command, start_broker, write_config, Broker};
use bucketlens_bench::{cpu_seconds, machine_cpu_seconds};
use bucketlens_runtime::log::{KafkaConfig, KafkaLog, Log};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn produce_bench(tmp: &Path, broker: &Broker, files: usize) -> anyhow::Result<()> {
    let corpus = tmp.join("listing");
    for i in 0..files {
        let dir = corpus.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(dir.join(format!("image-{i:06}.jpg")), b"not decoded by the producer")?;
    }
    let config = tmp.join("produce.toml");
    write_config(&config, &broker.bootstrap, "p.", 4)?;
    let start = Instant::now();
    let status =
        command(&config, &tmp.join("produce-data"), &["produce", "listing", corpus.to_str().unwrap_or("")], &[])
            .stderr(Stdio::null())
            .status()?;
    let ours = start.elapsed();
    if !status.success() {
        bail!("produce listing failed: {status}");
    }

    // The same records, read back, sent by a plain producer.
    let log = KafkaLog::connect(KafkaConfig {
        brokers: broker.bootstrap.clone(),
        topic_prefix: "p.".into(),
        ..KafkaConfig::default()
    })
    .await?;
    let mut consumer = log.subscribe("bench-reader", "objects.changed.v1").await?;
    let mut records = Vec::with_capacity(files);
    let deadline = Instant::now() + Duration::from_secs(120);
    while records.len() < files && Instant::now() < deadline {
        records.extend(consumer.poll(10_000, Duration::from_millis(500)).await?);
    }
    drop(consumer);
    if records.len() != files {
        bail!("read back {} records of {files}", records.len());
    }
    let bytes: usize = records.iter().map(|r| r.key.len() + r.value.len()).sum();
    log.ensure_topic("baseline.v1", 4, false).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()?;
    let start = Instant::now();
    let mut pending = Vec::with_capacity(records.len());
    for r in &records {
        let record = FutureRecord::to("p.baseline.v1").key(r.key.as_bytes()).payload(&r.value);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err((e, _)) => bail!("baseline producer: {e}"),
        }
    }
    for delivery in pending {
        if let Ok(Err((e, _))) = delivery.await {
            bail!("baseline delivery: {e}");
        }
    }
    let baseline = start.elapsed();
    let rate = |d: Duration| files as f64 / d.as_secs_f64();
    println!("produce listing: {files} records ({:.0} bytes each on average)", bytes as f64 / files as f64);
    println!(
        "  bucketlens produce listing (walk, state, encode, produce): {:.0} records/s ({:.2} s)",
        rate(ours),
        ours.as_secs_f64()
    );
    println!(
        "  baseline: plain rdkafka producer, same records:            {:.0} records/s ({:.2} s)",
        rate(baseline),
        baseline.as_secs_f64()
    );
    println!("  ratio bucketlens / baseline: {:.2}", rate(ours) / rate(baseline));
    Ok(())
}

/// Asks of the committed-offsets benchmark, each way.
const ASKS: usize = 100;

async fn committed_bench(broker: &Broker) -> anyhow::Result<()> {
    let (group, topic) = ("bench-reader", "objects.changed.v1");
    let log = KafkaLog::connect(KafkaConfig {
        brokers: broker.bootstrap.clone(),
        topic_prefix: "p.".into(),
        ..KafkaConfig::default()
    })
    .await?;
    let expected = log.committed(group, topic).await?;
    let broker_cpu = || cpu_seconds(broker.pid()).unwrap_or(0.0);
    let (cpu0, start) = (broker_cpu(), Instant::now());
    for _ in 0..ASKS {
        if log.committed(group, topic).await? != expected {
            bail!("the committed offsets changed while nothing committed");
        }
    }
    let (ours, ours_cpu) = (start.elapsed(), broker_cpu() - cpu0);
    // The baseline: a new client for each ask, as a group client was made before.
    let full = format!("p.{topic}");
    let partitions: Vec<i32> = expected.iter().map(|o| o.partition).collect();
    let (cpu0, start) = (broker_cpu(), Instant::now());
    for _ in 0..ASKS {
        let bootstrap = broker.bootstrap.clone();
        let (full, partitions) = (full.clone(), partitions.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            use rdkafka::consumer::{BaseConsumer, Consumer as _};
            let client: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "bench-reader")
                .set("enable.auto.commit", "false")
                .create()?;
            let mut tpl = rdkafka::TopicPartitionList::new();
            for p in partitions {
                tpl.add_partition(&full, p);
            }
            client.committed_offsets(tpl, Duration::from_secs(10))?;
            Ok(())
        })
        .await??;
    }
    let (baseline, baseline_cpu) = (start.elapsed(), broker_cpu() - cpu0);
    let rate = |d: Duration| ASKS as f64 / d.as_secs_f64();
    println!("committed offsets of a group ({ASKS} asks each way, {} partitions):", partitions.len());
    println!(
        "  KafkaLog::committed (a kept client):       {:.0} asks/s, broker CPU {:.2} ms an ask",
        rate(ours),
        1000.0 * ours_cpu / ASKS as f64
    );
    println!(
        "  baseline: a new rdkafka client each ask:   {:.0} asks/s, broker CPU {:.2} ms an ask",
        rate(baseline),
        1000.0 * baseline_cpu / ASKS as f64
    );
    println!("  ratio kept / new: {:.1}", rate(ours) / rate(baseline));
    Ok(())
}

/// Partitions of each end-to-end run's topics.
const PARTITIONS: u32 = 4;

/// Follows member `i`'s log (its standard error, drained to the end) for the
/// partitions it is assigned: the latest count goes in `assigned[i]`.
fn follow_assignments(role: &mut Child, assigned: Arc<Mutex<Vec<usize>>>, i: usize) -> anyhow::Result<()> {
    let stderr = role.stderr.take().context("the labeler's standard error")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // `partitions assigned … partitions=[0, 1]`: the last bracket is the list.
            if !line.contains("partitions assigned") {
                continue;
            }
            let list = line.rsplit_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(list, _)| list);
            if let (Some(list), Ok(mut assigned)) = (list, assigned.lock()) {
                assigned[i] = list.split(',').filter(|p| !p.trim().is_empty()).count();
            }
        }
    });
    Ok(())
}

/// How often the bench asks the broker whether the groups have caught up: each ask
/// is a new group client (connection, coordinator, offsets), which the broker and
/// this process pay for on the cores being measured.
const CAUGHT_UP_EVERY: Duration = Duration::from_millis(250);

/// One run of COPIES×12 example photos through `labelers` label processes, and a
/// sink when `sink`: images/s.
async fn run(tmp: &Path, broker: &Broker, copies: usize, labelers: usize, sink: bool) -> anyhow::Result<f64> {
    let name = format!("{}{labelers}", if sink { "e" } else { "l" });
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos");
    let corpus = tmp.join(format!("photos-{name}"));
    let mut images = 0;
    for copy in 0..copies {
        let dir = corpus.join(format!("set-{copy}"));
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&examples)? {
            let path = entry?.path();
            if matches!(path.extension().and_then(|e| e.to_str()), Some("jpg" | "png")) {
                std::fs::copy(&path, dir.join(path.file_name().context("name")?))?;
                images += 1;
            }
        }
    }
    let prefix = format!("{name}.");
    let config = tmp.join(format!("run-{name}.toml"));
    write_config(&config, &broker.bootstrap, &prefix, PARTITIONS)?;
    let data = tmp.join(format!("run-data-{name}"));
    let (labeler_group, index_group) = (format!("bench-labeler-{name}"), format!("bench-index-{name}"));
    let env = [
        ("BUCKETLENS_LABELER__CONCURRENCY", "1".to_string()),
        ("BUCKETLENS_LABELER__GROUP", labeler_group.clone()),
        ("BUCKETLENS_INDEX__GROUP", index_group.clone()),
    ];
    // Roles first, so that the group is formed before the records arrive.
    let mut sinks: Vec<Child> = Vec::new();
    if sink {
        sinks.push(command(&config, &data, &["sink"], &env).stderr(Stdio::null()).spawn()?);
    }
    let mut roles: Vec<Child> = Vec::new();
    let assigned = Arc::new(Mutex::new(vec![0; labelers]));
    let started = Instant::now();
    for i in 0..labelers {
        let mut role = command(&config, &data, &["label"], &env)
            .env("BUCKETLENS_LOG", "warn,bucketlens_runtime::log::kafka::consumer=info")
            .stderr(Stdio::piped())
            .spawn()?;
        follow_assignments(&mut role, Arc::clone(&assigned), i)?;
        roles.push(role);
    }
    // Every member with its share of the partitions, so that the run measures
    // labeling, not the group forming.
    loop {
        let now = assigned.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
        if now.iter().all(|&n| n > 0) && now.iter().sum::<usize>() == PARTITIONS as usize {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the labeler group did not form in 2 minutes: partitions per member {now:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "  the labeler group had every partition assigned {:.1} s after its members started",
        started.elapsed().as_secs_f64()
    );
    // Where the cores go while it runs: each role's CPU time and the machine's.
    let cpu = || {
        let role = |r: &Child| cpu_seconds(r.id()).unwrap_or(0.0);
        let labelers: f64 = roles.iter().map(role).sum();
        let sinks: f64 = sinks.iter().map(role).sum();
        let broker = cpu_seconds(broker.pid()).unwrap_or(0.0);
        (labelers, sinks, broker, cpu_seconds(std::process::id()).unwrap_or(0.0), machine_cpu_seconds())
    };
    let before = cpu();
    let start = Instant::now();
    let status = command(&config, &data, &["produce", "listing", corpus.to_str().unwrap_or("")], &env)
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("produce listing failed");
    }
    let log = KafkaLog::connect(KafkaConfig {
        brokers: broker.bootstrap.clone(),
        topic_prefix: prefix,
        ..KafkaConfig::default()
    })
    .await?;
    loop {
        if caught_up(&log, &labeler_group, "objects.changed.v1").await?
            && (!sink || caught_up(&log, &index_group, "images.labeled.v1").await?)
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(900) {
            bail!("not caught up after 15 minutes");
        }
        tokio::time::sleep(CAUGHT_UP_EVERY).await;
    }
    let wall = start.elapsed();
    let after = cpu();
    let marks = log.watermarks("objects.changed.v1").await?;
    // One at a time, so the broker sees members leave cleanly.
    for mut role in roles.into_iter().rev().chain(sinks) {
        let _ = Command::new("kill").args(["-TERM", &role.id().to_string()]).status();
        let _ = role.wait();
    }
    let rate = images as f64 / wall.as_secs_f64();
    println!("  {labelers} labeler process(es): {images} images in {:.1} s, {rate:.1} images/s", wall.as_secs_f64());
    let secs = wall.as_secs_f64();
    let cores = |a: f64, b: f64| (b - a) / secs;
    if let (Some((busy0, all0)), Some((busy1, all1))) = (before.4, after.4) {
        println!(
            "    cores used: labelers {:.2}, sink {:.2}, broker {:.2}, this bench {:.2}; the machine {:.0}% busy (all processes)",
            cores(before.0, after.0),
            cores(before.1, after.1),
            cores(before.2, after.2),
            cores(before.3, after.3),
            100.0 * (busy1 - busy0) / (all1 - all0).max(f64::EPSILON)
        );
        let per_image = |a: f64, b: f64| 1000.0 * (b - a) / images as f64;
        println!("    labelers' CPU per image: {:.1} ms", per_image(before.0, after.0));
    }
    // How the images fell into the partitions the members share out.
    let counts: Vec<String> = marks.iter().map(|m| (m.high - m.low).to_string()).collect();
    println!("    images per partition of objects.changed.v1: {}", counts.join(", "));
    Ok(rate)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let files = args.first().copied().unwrap_or(20_000);
    let copies = args.get(1).copied().unwrap_or(10);
    let tmp = tempfile::tempdir()?;
    let broker = start_broker(tmp.path())?;
    produce_bench(tmp.path(), &broker, files).await?;
    committed_bench(&broker).await?;
    println!("the label stage alone on Kafka (one inference thread per labeler process, no sink):");
    let one = run(tmp.path(), &broker, copies, 1, false).await?;
    let two = run(tmp.path(), &broker, copies, 2, false).await?;
    println!("  ratio two / one: {:.2}", two / one);
    println!("end to end on Kafka (produce, label, index; one inference thread per labeler process):");
    let one = run(tmp.path(), &broker, copies, 1, true).await?;
    let two = run(tmp.path(), &broker, copies, 2, true).await?;
    println!("  ratio two / one: {:.2}", two / one);
    Ok(())
}

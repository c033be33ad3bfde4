//! `bucketlens-bench-serve [DOCS=100000] [IMAGES=8]`: what `bucketlens serve` costs.
//!
//! 1. **Search**: `/api/search?q=cat&limit=60` (with facets) on an index of DOCS
//!    documents, 300 requests one after another over HTTP, against the **baseline**
//!    of the same request as a direct `Index::search` call in this process on the
//!    same index: p50/p99 of both and the ratio (the HTTP layer's cost).
//! 2. **Thumbnails** of IMAGES 12 MP JPEGs (4000×3000): the first request (read,
//!    scaled decode, encode, store) against the second (the disk cache); and, in
//!    process, the scaled decode against the **baseline** of a full decode and
//!    resize of the same files (`image::load_from_memory` + `thumbnail`).
//! 3. **Memory**: peak RSS of `serve` while 32 thumbnail requests of 12 MP JPEGs
//!    (none cached) run at once.
//! 4. **A burst of searches**: 200 `limit=500` searches (with facets) sent at once,
//!    p50/p99 and peak RSS, with `serve.searches-at-once` at its default (two per
//!    core) against the **baseline** of no bound (1,000: every search at once, as
//!    before the bound), each on a fresh `serve`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bucketlens_bench::{bucketlens, peak_rss_mib};
use bucketlens_index::{Expr, Index, SearchRequest, TantivyIndex};
use bucketlens_schemas::{ImageLabeled, Label, LabelKind, ModelInfo};

const NAMES: [&str; 12] =
    ["Cat", "Dog", "Grass", "Sky", "Car", "Tree", "Person", "Boat", "Flower", "Bird", "Sofa", "Cup"];

fn record(bucket: &str, key: String, i: usize, labels: Vec<Label>) -> ImageLabeled {
    ImageLabeled {
        text: None,
        bucket: bucket.into(),
        key,
        version_id: None,
        etag: Some(format!("e{i}")),
        size: Some(1000),
        last_modified: Some(1_700_000_000_000 + i as i64),
        sequencer: None,
        kind: LabelKind::Labeled,
        labels,
        image: None,
        model: ModelInfo { name: "m".into(), version: "1".into() },
        labeled_at: 1,
        error: None,
        labeler: None,
        metadata: None,
        hashes: None,
        storage_class: None,
        embedding: None,
    }
}

fn label(name: &str, confidence: f32) -> Label {
    Label { name: name.into(), confidence, parents: vec![], categories: vec![], aliases: vec![], instances: vec![] }
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, big: &Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
    let mut child = Command::new(bucketlens()?)
        .args(["--data-dir", data.to_str().context("path")?, "serve", "--listen", "127.0.0.1:0"])
        .env("BUCKETLENS_BUCKETS__BIG", big)
        .envs(env.iter().copied())
        .env("BUCKETLENS_SERVE__THUMBNAIL_WORKERS", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("(Ctrl-C") {
        if stderr.read(&mut byte)? == 0 {
            anyhow::bail!("serve exited: {}", String::from_utf8_lossy(&seen));
        }
        seen.push(byte[0]);
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let text = String::from_utf8_lossy(&seen).to_string();
    // The last URL: the start-up line before it may name an OpenSearch one.
    let url = text.rsplit("http://").next().and_then(|r| r.split('/').next()).context("no URL")?.to_string();
    Ok(Server(child, url))
}

/// One GET; the status and body.
fn get(addr: &str, target: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let status = String::from_utf8_lossy(&raw[..12.min(raw.len())]).split_whitespace().nth(1).unwrap_or("0").parse()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |p| p + 4);
    Ok((status, raw[split..].to_vec()))
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

fn big_jpegs(dir: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/photos");
    let sources = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"];
    let mut names = Vec::new();
    for i in 0..n {
        let img = image::open(examples.join(sources[i % sources.len()]))?.to_rgb8();
        let big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Triangle);
        let name = format!("big-{i:02}.jpg");
        jpeg_encoder::Encoder::new_file(dir.join(&name), 90)?.encode(
            big.as_raw(),
            4000,
            3000,
            jpeg_encoder::ColorType::Rgb,
        )?;
        names.push(name);
    }
    Ok(names)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let docs: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let images: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let big = tmp.path().join("big");
    let names = big_jpegs(&big, images)?;
    {
        let index = TantivyIndex::open_writer(&data.join("index"), 100_000_000)?;
        let mut batch = Vec::new();
        for i in 0..docs {
            let labels = (0..1 + i % 3)
                .map(|j| label(NAMES[(i * 7 + j * 5) % NAMES.len()], 50.0 + ((i * 13 + j) % 50) as f32))
                .collect();
            batch.push(record("photos", format!("day-{:03}/img-{i:06}.jpg", i % 365), i, labels));
            if batch.len() == 10_000 {
                index.write(std::mem::take(&mut batch)).await?;
            }
        }
        let big_docs =
            names.iter().enumerate().map(|(i, n)| record("big", n.clone(), i, vec![label("Cat", 90.0)])).collect();
        batch.extend::<Vec<_>>(big_docs);
        index.write(batch).await?;
    }
    let server = serve(&data, &big, &[])?;
    let addr = server.1.clone();

    // 1. Search: HTTP against a direct call.
    let reader = TantivyIndex::open_reader(&data.join("index"))?;
    let request = || {
        let mut r = SearchRequest::new(Expr::parse("cat").expect("query"));
        r.limit = 60;
        r.label_counts = Some(50);
        r.facets = Some(50);
        r
    };
    let rounds = 300;
    let (mut direct, mut http) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        reader.search(request()).await?;
        get(&addr, "/api/search?q=cat&limit=60")?;
    }
    for _ in 0..rounds {
        let start = Instant::now();
        let response = reader.search(request()).await?;
        direct.push(start.elapsed());
        assert!(response.total > 0);
        let start = Instant::now();
        let (status, _) = get(&addr, "/api/search?q=cat&limit=60")?;
        http.push(start.elapsed());
        anyhow::ensure!(status == 200, "search answered {status}");
    }
    let (d50, d99, h50, h99) = (
        percentile(&mut direct, 0.5),
        percentile(&mut direct, 0.99),
        percentile(&mut http, 0.5),
        percentile(&mut http, 0.99),
    );
    println!("search `cat` (limit 60, facets) on {docs} documents, {rounds} requests:");
    println!("  baseline Index::search in process: p50 {d50:.2} ms, p99 {d99:.2} ms");
    println!("  GET /api/search over HTTP:         p50 {h50:.2} ms, p99 {h99:.2} ms");
    println!("  ratio HTTP / direct: p50 {:.2}, p99 {:.2}", h50 / d50, h99 / d99);

    // 2. Thumbnails: first request, cached request; scaled against full decode.
    let (mut first, mut cached) = (Vec::new(), Vec::new());
    for name in &names {
        let target = format!("/api/thumbnails/big/{name}?size=320");
        let start = Instant::now();
        let (status, body) = get(&addr, &target)?;
        first.push(start.elapsed());
        anyhow::ensure!(status == 200, "thumbnail answered {status}: {}", String::from_utf8_lossy(&body));
        let start = Instant::now();
        get(&addr, &target)?;
        cached.push(start.elapsed());
    }
    let (f50, c50) = (percentile(&mut first, 0.5), percentile(&mut cached, 0.5));
    println!("thumbnails (320 px) of {images} 12 MP JPEGs over HTTP:");
    println!("  first request: p50 {f50:.1} ms; cached: p50 {c50:.2} ms; ratio first / cached {:.0}", f50 / c50);
    let (mut scaled, mut full) = (Duration::ZERO, Duration::ZERO);
    for name in &names {
        let bytes = std::fs::read(big.join(name))?;
        let start = Instant::now();
        bucketlens_serve::thumbnails::make(&bytes, 320, 100_000_000).map_err(anyhow::Error::msg)?;
        scaled += start.elapsed();
        let start = Instant::now();
        let image = image::load_from_memory(&bytes)?;
        let _ = image.thumbnail(320, 320);
        full += start.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / images as f64;
    println!("  in process, per image: scaled decode {:.1} ms; baseline full decode + resize {:.1} ms; ratio full / scaled {:.1}", per(scaled), per(full), full.as_secs_f64() / scaled.as_secs_f64());

    // 3. Peak RSS with 32 thumbnails of 12 MP JPEGs at once (sizes no earlier request made).
    let before = peak_rss_mib(server.0.id()).unwrap_or(0.0);
    let mut workers = Vec::new();
    for i in 0..32 {
        let (addr, name) = (addr.clone(), names[i % names.len()].clone());
        let size = 1024 - (i / names.len()) as u32 * 10;
        workers.push(std::thread::spawn(move || get(&addr, &format!("/api/thumbnails/big/{name}?size={size}"))));
    }
    let mut peak = before;
    while workers.iter().any(|w| !w.is_finished()) {
        peak = peak.max(peak_rss_mib(server.0.id()).unwrap_or(0.0));
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in workers {
        let (status, _) = w.join().map_err(|_| anyhow::anyhow!("a request thread panicked"))??;
        anyhow::ensure!(status == 200, "a concurrent thumbnail answered {status}");
    }
    peak = peak.max(peak_rss_mib(server.0.id()).unwrap_or(0.0));
    println!(
        "peak RSS of serve: {before:.0} MiB before, {peak:.0} MiB with 32 concurrent 12 MP thumbnails (4 workers)"
    );
    drop(server);

    // 4. A burst of 200 large searches: bounded (the default) against unbounded.
    let burst = 200;
    let mut results = Vec::new();
    for (what, env) in [("baseline, no bound (1,000 at once)", Some("1000")), ("searches-at-once default", None)] {
        let env: Vec<(&str, &str)> = env.map(|n| ("BUCKETLENS_SERVE__SEARCHES_AT_ONCE", n)).into_iter().collect();
        let server = serve(&data, &big, &env)?;
        get(&server.1, "/api/search?q=*&limit=500")?; // warm: the index's files read once
        let start = Instant::now();
        let workers: Vec<_> = (0..burst)
            .map(|_| {
                let addr = server.1.clone();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    get(&addr, "/api/search?q=*&limit=500").map(|(status, _)| (status, start.elapsed()))
                })
            })
            .collect();
        let mut peak = 0f64;
        while workers.iter().any(|w| !w.is_finished()) {
            peak = peak.max(peak_rss_mib(server.0.id()).unwrap_or(0.0));
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut times = Vec::new();
        for w in workers {
            let (status, took) = w.join().map_err(|_| anyhow::anyhow!("a request thread panicked"))??;
            anyhow::ensure!(status == 200, "a search of the burst answered {status}");
            times.push(took);
        }
        let wall = start.elapsed().as_secs_f64();
        peak = peak.max(peak_rss_mib(server.0.id()).unwrap_or(0.0));
        let (p50, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
        println!("{burst} searches `*` (limit 500, facets) at once, {what}:");
        println!("  p50 {p50:.0} ms, p99 {p99:.0} ms, all done in {wall:.1} s; peak RSS {peak:.0} MiB");
        results.push((p50, p99, peak));
    }
    let ((b50, b99, brss), (a50, a99, arss)) = (results[0], results[1]);
    println!("  ratio bounded / unbounded: p50 {:.2}, p99 {:.2}, peak RSS {:.2}", a50 / b50, a99 / b99, arss / brss);
    Ok(())
}

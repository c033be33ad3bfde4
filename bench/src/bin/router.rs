//! `bucketlens-bench-router [RECORDS=3000] [KEYS=5000]`: what finding the source of
//! an object costs the labeler, per record, for a bucket read from S3 while folders
//! are listed in the same data dir.
//!
//! - **Measured**: the bucket router as the binary builds it (the listing state's
//!   SQLite in a data dir holding KEYS listed keys and 3 folder buckets), asked for
//!   the source of an S3 bucket three times per record (HEAD, GET and "is it in S3?",
//!   as the labeler does), RECORDS records, 4 at a time.
//! - **Baseline**: the same router reloading the folders on every such lookup (reload
//!   interval zero), which is what the labeler did before the router: open the
//!   listing SQLite and canonicalize every folder, up to three times per record.
//! - **Printed**: records/s of both, the ratio, and the folder reloads each made.
//!
//! Nothing here reaches S3: the router's answer for an S3 bucket is the S3 source
//! itself, whose `in_s3` needs no request.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bucketlens_listing::state::State;
use bucketlens_runtime::aws::S3Config;
use bucketlens_runtime::bucket::{BucketRouter, Discover, ObjectSource};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(Ok(3000), |a| a.parse())?;
    let keys: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let listing = tmp.path().join("listing.sqlite");
    seed_listing(tmp.path(), &listing, keys)?;

    let (baseline_rate, baseline_reloads) = lookups(&listing, Duration::ZERO, records).await?;
    let (router_rate, router_reloads) = lookups(&listing, bucketlens_runtime::bucket::RELOAD_EVERY, records).await?;
    println!("bucket lookups for an S3 bucket, {records} records x 3 lookups, listing state of {keys} keys:");
    println!("  baseline (reload the folders per lookup): {baseline_rate:>10.0} records/s, {baseline_reloads} reloads");
    println!("  bucket router:                            {router_rate:>10.0} records/s, {router_reloads} reloads");
    println!("  ratio router / baseline: {:.1}", router_rate / baseline_rate);
    Ok(())
}

/// A listing state as `bucketlens index` leaves it: folders and their keys.
fn seed_listing(dir: &Path, listing: &Path, keys: usize) -> anyhow::Result<()> {
    let state = State::open(Some(listing))?;
    for name in ["photos", "scans", "archive-local"] {
        let root = dir.join(name);
        std::fs::create_dir_all(&root)?;
        state.remember_root(name, &root)?;
    }
    let listed: Vec<(String, String)> = (0..keys).map(|i| (format!("2024/{i:06}.jpg"), format!("{i:x}"))).collect();
    state.mark_seen("photos", &listed, 1)?;
    Ok(())
}

/// Records/s through a router with `reload_every`, and how many reloads it made.
async fn lookups(listing: &Path, reload_every: Duration, records: u64) -> anyhow::Result<(f64, u64)> {
    let reloads = Arc::new(AtomicU64::new(0));
    let discover: Discover = {
        let (listing, reloads) = (listing.to_path_buf(), Arc::clone(&reloads));
        Arc::new(move || {
            reloads.fetch_add(1, Ordering::Relaxed);
            State::open(Some(&listing)).and_then(|s| s.roots()).map_err(|e| e.to_string())
        })
    };
    let offline = S3Config {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        force_path_style: Some(true),
    };
    let router = BucketRouter::new(BTreeMap::new(), Some(discover), offline)?.with_reload_every(reload_every);
    let router = Arc::new(router);
    reloads.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let router = Arc::clone(&router);
        workers.spawn(async move {
            for _ in (worker..records).step_by(4) {
                for _ in 0..3 {
                    assert!(router.in_s3("camera-uploads").await, "an S3 bucket was routed to a folder");
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done?;
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    Ok((rate, reloads.load(Ordering::Relaxed)))
}

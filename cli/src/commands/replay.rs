//! `bucketlens replay --group G --from earliest|end|RFC3339`: move a group back and
//! reprocess up to the end of its topic.
//!
//! - the index group (`bucketlens-index`) rebuilds the index from `images.labeled.v1`
//!   without running the model (delete `<data-dir>/index` first for a clean rebuild);
//! - the labeler group (`bucketlens-labeler`) re-labels from `objects.changed.v1`
//!   (after a model change) and indexes the new labels.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use bucketlens_index::Index;
use bucketlens_listing::state::State;
use bucketlens_runtime::bucket::{Buckets, LocalDir, ObjectSource};
use bucketlens_runtime::log::Position;
use bucketlens_schemas::topics;
use tokio::sync::watch;

use crate::pipeline::{self, Counters};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The consumer group to move: bucketlens-index or bucketlens-labeler (as configured).
    #[arg(long)]
    group: String,
    /// `earliest`, `end`, or a time such as 2026-11-24T10:00:00Z (the first record at or after it).
    #[arg(long)]
    from: String,
}

fn position(from: &str) -> anyhow::Result<Position> {
    match from {
        "earliest" => Ok(Position::Earliest),
        "end" | "latest" => Ok(Position::End),
        time => super::search::parse_time(time)
            .map(Position::Timestamp)
            .map_err(|e| anyhow::anyhow!("--from {time:?}: expected earliest, end or an RFC 3339 time ({e})")),
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let to = position(&args.from)?;
    let relabel = args.group == settings.labeler.group;
    let topic = if relabel {
        topics::OBJECTS_CHANGED
    } else if args.group == settings.index.group {
        topics::IMAGES_LABELED
    } else {
        bail!(
            "unknown group {:?}: the groups are {:?} (labeler) and {:?} (index)",
            args.group,
            settings.labeler.group,
            settings.index.group
        );
    };
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = pipeline::open_log(settings).await?;
    let index = pipeline::open_index_writer(settings)?;
    let moved = log.reset_group(&args.group, topic, to).await?;
    let lag = pipeline::lag(&*log, &args.group, topic).await?;
    eprintln!(
        "group {} on {topic} moved to {:?}: {lag} records to reprocess",
        args.group,
        moved.iter().map(|m| m.committed.unwrap_or(0)).collect::<Vec<_>>()
    );

    let labeling = if relabel {
        let mut buckets = Buckets::default();
        for (bucket, root) in State::open(&settings.listing_path())?.roots()? {
            let source = LocalDir::new(&root)
                .map_err(|e| anyhow::anyhow!("bucket {bucket} was read from {}, which is gone: {e}", root.display()))?;
            buckets.insert(bucket, Arc::new(source) as Arc<dyn ObjectSource>);
        }
        Some((Arc::new(buckets) as Arc<dyn ObjectSource>, pipeline::load_labeler(settings).await?))
    } else {
        None
    };
    let counters = Counters::default();
    let (_done_tx, done_rx) = watch::channel(true);
    let stages =
        pipeline::start(settings, log, index.clone() as Arc<dyn Index>, labeling, &counters, Some(done_rx), &shutdown)?;
    stages.join().await?;
    let l = &counters.labeler;
    println!(
        "replayed {} records into the index ({} applied, {} stale) · labeled {} · failed {} · {:.1} s",
        counters.sink.records_in.get(),
        counters.sink.applied.get(),
        counters.sink.stale.get(),
        l.labeled.get(),
        l.failed.get(),
        started.elapsed().as_secs_f64()
    );
    Ok(if shutdown.is_cancelled() { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

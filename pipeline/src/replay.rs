//! `bucketlens replay --group G [--from earliest|end|RFC3339] [--until-end]`: move a
//! group back, and/or reprocess up to the end offsets seen at start.
//!
//! - the index group (`bucketlens-index`) rebuilds the index from `images.labeled.v1`
//!   without running the model (delete `<data-dir>/index` first for a clean rebuild);
//! - the labeler group (`bucketlens-labeler`) re-labels from `objects.changed.v1`
//!   (after a model change) and indexes the new labels.
//!
//! Embedded log: moves the group and runs the stages to the end, in this process.
//! Kafka: `--from` moves the group (its members must be stopped); `--until-end`
//! joins the group as a temporary member that exits once the group has reached the
//! end offsets it saw at start. Start N of them to share the partitions (an AWS
//! Batch array job, a Kubernetes Job): each exits when the whole group is done.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use bucketlens_runtime::log::{Position, Until};
use bucketlens_schemas::topics;
use tokio::sync::watch;

use crate::settings::{Backend, Settings};
use crate::wiring::{self, Counters, Stages};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The consumer group to move: bucketlens-index or bucketlens-labeler (as configured).
    #[arg(long)]
    group: String,
    /// `earliest`, `end`, or a time such as 2026-11-24T10:00:00Z (the first record at or after it).
    #[arg(long)]
    from: Option<String>,
    /// Process up to the end offsets seen at start, then exit (always so on the embedded log).
    #[arg(long)]
    until_end: bool,
    /// Label every image again, even one this labeler already labeled as it is now
    /// (unchanged objects are otherwise skipped: not read, not labeled).
    #[arg(long)]
    force: bool,
    /// Move the group's offsets even where members of it may be running (they would
    /// commit their own positions over the move: stop them first when you can).
    #[arg(long, requires = "from")]
    ignore_members: bool,
}

pub fn position(from: &str) -> anyhow::Result<Position> {
    match from {
        "earliest" => Ok(Position::Earliest),
        "end" | "latest" => Ok(Position::End),
        time => crate::replay::parse_time(time)
            .map(Position::Timestamp)
            .map_err(|e| anyhow::anyhow!("--from {time:?}: expected earliest, end or an RFC 3339 time ({e})")),
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let embedded = settings.log.backend == Backend::Embedded;
    if args.from.is_none() && !(args.until_end || embedded) {
        bail!("nothing to do: give --from to move the group, --until-end to process up to the end, or both");
    }
    let to = args.from.as_deref().map(position).transpose()?;
    let relabel = args.group == settings.labeler.group;
    let topic = if relabel {
        topics::OBJECTS_CHANGED
    } else if args.group == settings.index.group {
        topics::IMAGES_LABELED
    } else {
        bail!(
            "unknown group {:?}: the groups are {:?} (labeler) and {:?} (index); a new group name is set in the \
             configuration (BUCKETLENS_LABELER__GROUP=...), and a new group starts at the earliest record",
            args.group,
            settings.labeler.group,
            settings.index.group
        );
    };
    if args.force && !relabel {
        bail!("--force relabels: it goes with the labeler group ({:?}), not {:?}", settings.labeler.group, args.group);
    }
    let mut settings = settings.clone();
    settings.labeler.force = args.force;
    let settings = &settings;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = wiring::open_log(settings).await?;
    // Every IO part this replay runs on is opened and checked before any offset
    // moves: a replay that cannot run leaves the group where it was.
    let runs_here = args.until_end || embedded;
    let labeling = match runs_here && relabel {
        true => Some((wiring::object_sources(settings).await?, wiring::load_labeler(settings).await?)),
        false => None,
    };
    let index = match runs_here && (embedded || !relabel) {
        true => Some(wiring::open_index_writer(settings).await?),
        false => None,
    };
    if let Some(to) = to {
        let moved = match args.ignore_members {
            true => log.reset_group_anyway(&args.group, topic, to).await?,
            false => log.reset_group(&args.group, topic, to).await?,
        };
        let lag = wiring::lag(&*log, &args.group, topic).await?;
        bucketlens_runtime::say!(
            "group {} on {topic} moved to {:?}: {lag} offsets to reprocess (a compacted topic holds fewer \
             records there; the summary counts the records read)",
            args.group,
            moved.iter().map(|m| m.committed.unwrap_or(0)).collect::<Vec<_>>()
        );
    }
    if !runs_here {
        bucketlens_runtime::say!(
            "start the group's members (bucketlens label / sink), or run replay --until-end, to reprocess"
        );
        return Ok(ExitCode::SUCCESS);
    }

    let counters = Counters::default();
    let stages = match (labeling, index) {
        (labeling, Some(index)) if embedded => {
            let (_done_tx, done_rx) = watch::channel(true);
            wiring::start(settings, log, index, labeling, &counters, Some(done_rx), &shutdown)
        }
        // Kafka: one stage, the group's own, as a temporary member.
        (Some(parts), _) => {
            let until = Until::EndOffsets(log.watermarks(topic).await?);
            Stages::one(wiring::spawn_labeler(settings, log, parts, Arc::clone(&counters.labeler), until, &shutdown))
        }
        (None, Some(index)) => {
            let until = Until::EndOffsets(log.watermarks(topic).await?);
            Stages::one(wiring::spawn_sink(settings, log, index, Arc::clone(&counters.sink), until, &shutdown))
        }
        (None, None) => bail!("nothing to replay into: no labeler and no index was opened"),
    };
    stages.join().await?;
    println!("{}", summary(&counters, relabel, started.elapsed().as_secs_f64()));
    Ok(if shutdown.is_cancelled() { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// What the replay did: the labeler's work when it relabeled, and the sink's when
/// it ran (on the embedded log a relabel runs both).
fn summary(counters: &Counters, relabel: bool, seconds: f64) -> String {
    let (l, sink) = (&counters.labeler, &counters.sink);
    let mut parts = Vec::new();
    if relabel {
        parts.push(format!(
            "read {} changes: labeled {} · unchanged {} · failed {} · removed {}",
            l.records_in.get(),
            l.labeled.get(),
            l.skipped.get(bucketlens_labeler::stage::UNCHANGED),
            l.failed.get(),
            l.removed.get()
        ));
    }
    if sink.records_in.get() > 0 || !relabel {
        parts.push(format!(
            "indexed {} label records ({} applied, {} older than the index held)",
            sink.records_in.get(),
            sink.applied.get(),
            sink.stale.get()
        ));
    }
    format!("{} · {seconds:.1} s", parts.join(" · "))
}

/// An RFC 3339 time as milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let at = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("expected an RFC 3339 time such as 2024-06-01T00:00:00Z: {e}"))?;
    Ok(at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}

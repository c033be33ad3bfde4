//! `bucketlens relabel --failed [--code CODE]`: label again the objects whose
//! documents say they failed, once what made them fail is fixed outside bucketlens
//! (a permission granted, an object restored, a quota raised). Each becomes an
//! upsert on objects.changed.v1 naming the version that failed; on the embedded log
//! the labeler and the sink then run until it is all done, on Kafka the running
//! members take it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use bucketlens_index::{DocState, Expr, Index, SearchRequest};
use bucketlens_runtime::log::OutRecord;
use bucketlens_schemas::{record_key, topics, AvroRecord, ChangeKind, ChangeSource, ObjectChanged};
use tokio::sync::watch;

use crate::settings::{Backend, Settings};
use crate::wiring::{self, Counters};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Relabel the failed objects (the only selection so far; required).
    #[arg(long)]
    failed: bool,
    /// Only failures with this code (AccessDenied, ReadFailed, …; see `search --failed`).
    #[arg(long, requires = "failed")]
    code: Option<String>,
}

/// The upserts that label the failed documents of `index` again.
async fn failed_changes(index: &dyn Index, code: Option<&str>) -> anyhow::Result<Vec<ObjectChanged>> {
    let mut changes = Vec::new();
    let mut after = None;
    loop {
        let mut request = SearchRequest::new(Expr::All);
        request.state = DocState::Failed;
        request.limit = 500;
        request.after = after;
        let page = index.search(request).await?;
        for hit in page.hits {
            if code.is_some_and(|code| hit.error.as_ref().is_none_or(|e| e.code != code)) {
                continue;
            }
            changes.push(ObjectChanged {
                bucket: hit.bucket,
                key: hit.key,
                version_id: hit.version_id,
                kind: ChangeKind::Upsert,
                size: hit.size,
                etag: hit.etag,
                last_modified: hit.last_modified,
                // The failed version's own: its labels replace the failure.
                sequencer: hit.sequencer,
                source: ChangeSource::Replay,
                observed_at: bucketlens_runtime::now_ms(),
                storage_class: None,
                access_tier: None,
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(changes),
        }
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    if !args.failed {
        bail!("say what to relabel: --failed (optionally with --code CODE)");
    }
    let started = Instant::now();
    let embedded = settings.log.backend == Backend::Embedded;
    let index = match embedded {
        true => wiring::open_index_writer(settings).await?,
        false => wiring::open_existing_index(settings).await?,
    };
    let changes = failed_changes(&*index, args.code.as_deref()).await?;
    let log = wiring::open_log(settings).await?;
    let labeling = match embedded {
        true => Some((wiring::object_sources(settings).await?, wiring::load_labeler(settings).await?)),
        false => None,
    };
    let count = changes.len();
    let mut records = Vec::with_capacity(count);
    for change in &changes {
        records.push(OutRecord::new(record_key(&change.bucket, &change.key), change.to_bytes()?));
    }
    log.produce(topics::OBJECTS_CHANGED, records).await?;
    let objects = if count == 1 { "object" } else { "objects" };
    bucketlens_runtime::say!("{count} failed {objects} sent to the labeler again");
    let Some(labeling) = labeling else {
        bucketlens_runtime::say!("the running labeler group ({}) labels them", settings.labeler.group);
        return Ok(ExitCode::SUCCESS);
    };
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let counters = Counters::default();
    let (_done_tx, done_rx) = watch::channel(true);
    let stages = wiring::start(settings, log, Arc::clone(&index), Some(labeling), &counters, Some(done_rx), &shutdown);
    stages.join().await?;
    let l = &counters.labeler;
    println!(
        "relabeled {count} failed {}: labeled {} · failed {} · removed {} · {:.1} s",
        if count == 1 { "object" } else { "objects" },
        l.labeled.get(),
        l.failed.get(),
        l.removed.get(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

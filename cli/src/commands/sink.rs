//! `bucketlens sink`: the index sink as a group member: applies images.labeled.v1
//! to the index of this data dir (one sink per index).

use std::process::ExitCode;
use std::sync::Arc;

use bucketlens_index::{Index, Metrics};
use bucketlens_runtime::log::Until;
use bucketlens_schemas::topics;

use crate::pipeline;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(settings: &Settings, _args: Args) -> anyhow::Result<ExitCode> {
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = pipeline::open_log(settings).await?;
    let index = pipeline::open_index_writer(settings).await?;
    let metrics = Arc::new(Metrics::default());
    let group = settings.index.group.clone();
    let lag = pipeline::serve_member_metrics(
        settings,
        &log,
        &group,
        topics::IMAGES_LABELED,
        |r| metrics.register(r),
        &shutdown,
    )
    .await?;
    eprintln!("index sink group {group}: indexing {} into {}", topics::IMAGES_LABELED, settings.index_path().display());
    let stage = bucketlens_index::stage::Stage {
        config: settings.index.clone(),
        log,
        index: index as Arc<dyn Index>,
        metrics: Arc::clone(&metrics),
    };
    let result = bucketlens_index::stage::run(stage, Until::Shutdown, shutdown.clone()).await;
    shutdown.cancel();
    let _ = lag.await;
    result?;
    eprintln!("index sink stopped: {} records applied, {} stale", metrics.applied.get(), metrics.stale.get());
    Ok(ExitCode::SUCCESS)
}

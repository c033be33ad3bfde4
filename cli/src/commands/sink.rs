//! `bucketlens sink`: the index sink as a group member: applies images.labeled.v1
//! to the configured index (one sink group per index).

use std::process::ExitCode;
use std::sync::Arc;

use bucketlens_index::Metrics;
use bucketlens_runtime::log::Until;
use bucketlens_schemas::topics;

use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring::{self, Member};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(settings: &Settings, _args: Args) -> anyhow::Result<ExitCode> {
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = wiring::open_log(settings).await?;
    let index = wiring::open_index_writer(settings).await?;
    let metrics = Arc::new(Metrics::default());
    let group = (settings.index.group.as_str(), topics::IMAGES_LABELED);
    let member = Member::start(settings, &log, group, |r| metrics.register(r), &shutdown).await?;
    bucketlens_runtime::say!(
        "index sink group {}: indexing {} into {}",
        group.0,
        group.1,
        wiring::index_location(settings)
    );
    let stage = wiring::spawn_sink(settings, log, index, Arc::clone(&metrics), Until::Shutdown, &shutdown);
    member.finish(stage).await?;
    bucketlens_runtime::say!(
        "index sink stopped: {} records applied, {} stale",
        metrics.applied.get(),
        metrics.stale.get()
    );
    Ok(ExitCode::SUCCESS)
}

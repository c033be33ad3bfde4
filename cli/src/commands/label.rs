//! `bucketlens label`: one member of the labeler group. Run as many as you like, on
//! as many machines: they share the partitions of objects.changed.v1, and a member
//! that stops (or is killed) has its partitions taken over by the others.

use std::process::ExitCode;

use bucketlens_labeler::Metrics;
use bucketlens_runtime::log::Until;
use bucketlens_schemas::topics;
use std::sync::Arc;

use crate::pipeline;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(settings: &Settings, _args: Args) -> anyhow::Result<ExitCode> {
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = pipeline::open_log(settings).await?;
    let labeler = pipeline::load_labeler(settings).await?;
    let source = pipeline::object_sources(settings)?;
    let metrics = Arc::new(Metrics::default());
    let group = settings.labeler.group.clone();
    let lag = pipeline::serve_member_metrics(
        settings,
        &log,
        &group,
        topics::OBJECTS_CHANGED,
        |r| metrics.register(r),
        &shutdown,
    )
    .await?;
    eprintln!("labeler group {group}: labelling records of {} (Ctrl-C to stop)", topics::OBJECTS_CHANGED);
    let stage = bucketlens_labeler::stage::Stage {
        settings: settings.labeler.validate().map_err(anyhow::Error::msg)?,
        log,
        source,
        labeler,
        metrics: Arc::clone(&metrics),
    };
    let result = bucketlens_labeler::run(stage, Until::Shutdown, shutdown.clone()).await;
    shutdown.cancel();
    let _ = lag.await;
    result?;
    eprintln!(
        "labeler stopped: labeled {} · failed {} · removed {}",
        metrics.labeled.get(),
        metrics.failed.get(),
        metrics.removed.get()
    );
    Ok(ExitCode::SUCCESS)
}

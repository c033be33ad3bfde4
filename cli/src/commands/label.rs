//! `bucketlens label`: one member of the labeler group. Run as many as you like, on
//! as many machines: they share the partitions of objects.changed.v1, and a member
//! that stops (or is killed) has its partitions taken over by the others.

use std::process::ExitCode;
use std::sync::Arc;

use bucketlens_labeler::Metrics;
use bucketlens_runtime::log::Until;
use bucketlens_schemas::topics;

use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring::{self, Member};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Label every image again, even one this labeler already labeled as it is now
    /// (unchanged objects are otherwise skipped: not read, not labeled).
    #[arg(long)]
    force: bool,
    /// Label at most N images, then stop (`[labeler] budget`): the rest stay on the
    /// log for another member or a later run. Each member counts its own.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_images: Option<u64>,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let mut settings = settings.clone();
    settings.labeler.force = args.force;
    settings.labeler.budget = args.max_images.or(settings.labeler.budget);
    let settings = &settings;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = wiring::open_log(settings).await?;
    let parts = (wiring::object_sources(settings).await?, wiring::load_labeler(settings).await?);
    let metrics = Arc::new(Metrics::default());
    let group = (settings.labeler.group.as_str(), topics::OBJECTS_CHANGED);
    let member = Member::start(settings, &log, group, |r| metrics.register(r), &shutdown).await?;
    bucketlens_runtime::say!("labeler group {}: labelling records of {} (Ctrl-C to stop)", group.0, group.1);
    let stage = wiring::spawn_labeler(settings, log, parts, Arc::clone(&metrics), Until::Shutdown, &shutdown);
    member.finish(stage).await?;
    let (labeled, failed, removed) = (metrics.labeled.get(), metrics.failed.get(), metrics.removed.get());
    let unchanged = metrics.skipped.get(bucketlens_labeler::stage::UNCHANGED);
    bucketlens_runtime::say!(
        "labeler stopped: labeled {labeled} · unchanged {unchanged} · failed {failed} · removed {removed}"
    );
    if metrics.budget_spent.get() > 0 {
        let budget = settings.labeler.budget.unwrap_or(0);
        bucketlens_runtime::say!("{}", bucketlens_pipeline::index::budget_spent(budget));
    }
    Ok(ExitCode::SUCCESS)
}

/// `bucketlens label-one --model JSON` (hidden): labels the image on stdin with the
/// local model and writes the answer to stdout. The labeler starts it for an object
/// a labeler process died on, so that another death is that object's alone.
#[derive(Debug, clap::Args)]
pub struct OneArgs {
    /// The local model and its knobs, as the parent's settings give them.
    #[arg(long)]
    model: String,
}

pub async fn run_one(args: OneArgs) -> anyhow::Result<ExitCode> {
    let model: bucketlens_labeler::LocalModel = serde_json::from_str(&args.model)?;
    let labeler = model.load().await?;
    bucketlens_labeler::isolate::answer_one(&*labeler).await?;
    Ok(ExitCode::SUCCESS)
}

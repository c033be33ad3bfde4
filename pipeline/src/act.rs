//! `bucketlens act [--from earliest|end|TIME] [--until-end]`: the standing queries of
//! `[[act.rules]]` on the label log, as a member of act's own group (see the act
//! crate for what a rule does). Without --until-end it follows the log until Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use bucketlens_runtime::log::Until;
use bucketlens_schemas::topics;

use crate::settings::Settings;
use crate::wiring::{self, Member};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Move act's group first: `earliest` (a new rule, applied to the whole history;
    /// what the other rules did is not done again), `end`, or an RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Process up to the end offsets seen at start, then exit.
    #[arg(long)]
    until_end: bool,
}

impl Args {
    /// Whether it runs until stopped (a long-running role).
    pub fn follows(&self) -> bool {
        !self.until_end
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    if settings.act.rules.is_empty() {
        bail!(
            "act has no rules: add [[act.rules]] to the configuration (name, query, and s3-tags, webhook or topic; \
             see deploy/bucketlens.example.toml)"
        );
    }
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let log = wiring::open_log(settings).await?;
    let group = settings.act.group.as_str();
    let topic = topics::IMAGES_LABELED;
    if let Some(from) = &args.from {
        let to = crate::replay::position(from)?;
        log.reset_group(group, topic, to).await?;
        let lag = wiring::lag(&*log, group, topic).await?;
        bucketlens_runtime::say!("act group {group} moved to {from}: {lag} records to read");
    }
    let metrics = Arc::new(bucketlens_act::Metrics::default());
    let until = match args.until_end {
        true => Until::EndOffsets(log.watermarks(topic).await?),
        false => Until::Shutdown,
    };
    let rules: Vec<&str> = settings.act.rules.iter().map(|r| r.name.as_str()).collect();
    // The member stops serving metrics by cancelling its token: a child of the
    // signals' one, so that its end is not taken for an interruption.
    let serving = shutdown.child_token();
    let member = Member::start(settings, &log, (group, topic), |r| metrics.register(r), &serving).await?;
    bucketlens_runtime::say!("act group {group}: {} rule(s) on {topic}: {}", rules.len(), rules.join(", "));
    let running = wiring::spawn_act(settings, log, Arc::clone(&metrics), until, &shutdown);
    member.finish(running).await?;
    println!("{}", summary(&metrics, &rules));
    Ok(if shutdown.is_cancelled() && args.until_end { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

/// What act did: per rule, what began and stopped matching; the actions done and
/// dead-lettered.
pub fn summary(metrics: &bucketlens_act::Metrics, rules: &[&str]) -> String {
    let per_rule: Vec<String> = rules
        .iter()
        .map(|r| format!("{r}: {} matched, {} no longer", metrics.matches.get(r), metrics.unmatches.get(r)))
        .collect();
    let actions = ["tags", "untag", "webhook", "topic"];
    let done: Vec<String> = actions.iter().map(|a| format!("{a} {}", metrics.actions.get(a))).collect();
    let failed: u64 = actions.iter().map(|a| metrics.dead_lettered.get(a)).sum();
    format!(
        "act read {} label records · {} · actions: {} · {failed} dead-lettered to {}",
        metrics.records_in.get(),
        per_rule.join(" · "),
        done.join(", "),
        topics::IMAGES_LABELED_DLQ
    )
}

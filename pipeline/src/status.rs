//! `bucketlens status [--json]`: documents in the index; each group's offsets and lag.

use std::process::ExitCode;

use bucketlens_index::{DocState, Expr, Index, SearchRequest};
use bucketlens_runtime::log::Log;
use bucketlens_schemas::topics;
use serde_json::{json, Value};

use crate::settings::{Backend, Settings};
use crate::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
}

async fn count(index: &dyn Index, state: DocState) -> anyhow::Result<u64> {
    let mut request = SearchRequest::new(Expr::All);
    request.state = state;
    request.limit = 0;
    Ok(index.search(request).await?.total)
}

/// What `status --json` prints: documents, dead letters, each group's position.
/// `index` is `None` where it cannot be read here: it does not exist (yet), or it
/// lives with the sink on another machine.
pub async fn report(settings: &Settings, log: &dyn Log, index: Option<&dyn Index>) -> anyhow::Result<Value> {
    let (labeled, failed) = match index {
        Some(index) => (Some(count(index, DocState::Labeled).await?), Some(count(index, DocState::Failed).await?)),
        None => (None, None),
    };
    let documents = labeled.zip(failed).map(|(l, f)| l + f);
    let state = match (index.is_some(), index_here(settings)) {
        (true, _) => "present",
        (false, true) => "missing",
        (false, false) => "elsewhere",
    };
    let mut groups = Vec::new();
    let mut unknown_members = None;
    let mut watched =
        vec![(&settings.labeler.group, topics::OBJECTS_CHANGED), (&settings.index.group, topics::IMAGES_LABELED)];
    let acts = !settings.act.rules.is_empty() || settings.act_ledger_path().exists();
    if acts {
        watched.push((&settings.act.group, topics::IMAGES_LABELED));
    }
    for (group, topic) in watched {
        let marks = log.watermarks(topic).await?;
        let committed = log.committed(group, topic).await?;
        // Who holds each partition (Kafka): a stuck partition shows its owner. Not
        // being allowed to describe the group (an ACL) is said, not fatal.
        let members = log.members(group).await.unwrap_or_else(|e| {
            unknown_members.get_or_insert(e.to_string());
            None
        });
        let mut partitions = Vec::new();
        let mut lag = 0;
        for mark in &marks {
            let at = committed.iter().find(|c| c.partition == mark.partition).and_then(|c| c.committed);
            let behind = mark.lag(&committed);
            lag += behind;
            let owner = members
                .iter()
                .flatten()
                .find(|m| m.partitions.iter().any(|(t, parts)| t == topic && parts.contains(&mark.partition)));
            let owner = owner.map(|m| json!({"member": m.id, "client": m.client_id, "host": m.host}));
            partitions.push(
                json!({"partition": mark.partition, "committed": at, "end": mark.high, "lag": behind, "owner": owner}),
            );
        }
        let member_count = members.as_ref().map(Vec::len);
        groups.push(
            json!({"group": group, "topic": topic, "lag": lag, "members": member_count, "partitions": partitions}),
        );
    }
    if let Some(why) = unknown_members {
        bucketlens_runtime::say!("the groups' members are unknown: {why}");
    }
    let mut dlq = serde_json::Map::new();
    for topic in topics::DEAD_LETTERS {
        let records: i64 = log.watermarks(topic).await?.iter().map(|m| m.high - m.low).sum();
        dlq.insert(topic.to_string(), records.into());
    }
    Ok(json!({
        "index": {"location": wiring::index_location(settings), "state": state},
        "documents": documents, "labeled": labeled, "failed": failed, "dlq": dlq, "groups": groups,
        "ledger": ledger(settings).await?, "act": act(settings).await?
    }))
}

/// act's matches per rule (the objects each rule matches now), from its ledger in
/// this data dir; `null` where act never ran with it.
async fn act(settings: &Settings) -> anyhow::Result<Value> {
    let path = settings.act_ledger_path();
    if !path.exists() {
        return Ok(Value::Null);
    }
    let counts =
        tokio::task::spawn_blocking(move || bucketlens_act::Ledger::open(Some(&path)).and_then(|l| l.counts()))
            .await??;
    let mut matches: serde_json::Map<String, Value> =
        settings.act.rules.iter().map(|r| (r.name.clone(), Value::from(0))).collect();
    for (rule, n) in counts {
        matches.insert(rule, n.into());
    }
    Ok(json!({"location": settings.act_ledger_path().display().to_string(), "matches": matches}))
}

/// What the labelers of this data dir know is labeled, and the upserts they skipped
/// as unchanged; `null` where no labeler ran with this data dir.
async fn ledger(settings: &Settings) -> anyhow::Result<Value> {
    let path = settings.ledger_path();
    if !path.exists() {
        return Ok(Value::Null);
    }
    let totals = tokio::task::spawn_blocking(move || {
        bucketlens_labeler::Ledger::open(Some(&path)).and_then(|ledger| ledger.totals())
    })
    .await??;
    Ok(json!({
        "location": settings.ledger_path().display().to_string(),
        "objects": totals.objects, "labeled": totals.labeled, "skipped_unchanged": totals.skipped,
        "skipped_archived": totals.archived,
        "budget_spent": totals.budget_spent
    }))
}

/// Whether the index can be read from here: OpenSearch always; tantivy when it is in
/// this data dir (with Kafka, it may live with the sink on another machine).
pub fn index_here(settings: &Settings) -> bool {
    settings.index.backend != bucketlens_index::Backend::Tantivy
        || settings.index_path().exists()
        || settings.log.backend == Backend::Embedded
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let readable = index_here(settings) && bucketlens_index::exists(&settings.index, &settings.index_path()).await?;
    let index = if readable { Some(wiring::open_index_reader(settings).await?) } else { None };
    let log = wiring::open_log(settings).await?;
    let out = report(settings, &*log, index.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (labeled, failed) = (out["labeled"].as_u64(), out["failed"].as_u64());
    let groups = out["groups"].as_array().cloned().unwrap_or_default();
    let dlq = &out["dlq"];
    match (labeled, failed) {
        (Some(labeled), Some(failed)) => println!(
            "index {}: {} documents ({labeled} labeled, {failed} failed)",
            wiring::index_location(settings),
            labeled + failed
        ),
        _ if index_here(settings) => {
            println!("index {} does not exist yet: nothing has been indexed there", wiring::index_location(settings))
        }
        _ => println!("no index in {} (the sink runs elsewhere)", settings.data_dir.display()),
    }
    for g in &groups {
        let members = match g["members"].as_u64() {
            Some(n) => format!(" · {n} running member(s)"),
            None => String::new(),
        };
        println!(
            "group {} on {}: lag {}{members}",
            g["group"].as_str().unwrap_or(""),
            g["topic"].as_str().unwrap_or(""),
            g["lag"]
        );
        for p in g["partitions"].as_array().into_iter().flatten() {
            let committed = p["committed"].as_i64().map_or_else(|| "-".to_string(), |c| c.to_string());
            let owner = match (&p["owner"], g["members"].is_null()) {
                (Value::Null, true) => String::new(),
                (Value::Null, false) => " · no owner".to_string(),
                (o, _) => format!(
                    " · held by {} on {} (member {})",
                    o["client"].as_str().unwrap_or("?"),
                    o["host"].as_str().unwrap_or("?"),
                    o["member"].as_str().unwrap_or("?")
                ),
            };
            println!(
                "  partition {}: committed {committed} · end {} · lag {}{owner}",
                p["partition"], p["end"], p["lag"]
            );
        }
    }
    for topic in topics::DEAD_LETTERS {
        println!("dead-letter records on {topic}: {}", dlq[topic]);
    }
    if let Some(matches) = out["act"]["matches"].as_object() {
        let each: Vec<String> = matches.iter().map(|(rule, n)| format!("{rule} {n}")).collect();
        println!("act: objects each rule matches now: {}", each.join(" · "));
    }
    let ledger = &out["ledger"];
    if !ledger.is_null() {
        println!(
            "labeler ledger: {} objects labeled · {} upserts skipped as unchanged (not read, not labeled again) · {} skipped as archived (not restored, not read)",
            ledger["labeled"], ledger["skipped_unchanged"], ledger["skipped_archived"]
        );
        if let Some(budget) = ledger["budget_spent"].as_u64() {
            println!(
                "the last labeler run stopped at its budget of {budget} images: what it left is the labeler \
                 group's lag above"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

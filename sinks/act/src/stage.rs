//! act's consumer loop: read images.labeled.v1 in its own group, decide every rule on
//! every record, do what a decision asks (tags, webhook, topic), note it in the
//! ledger, then commit. Records are handled one at a time in log order, so a
//! record's offset is committed only after all of its actions are done or
//! dead-lettered.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bucketlens_runtime::log::{commit_or_defer, Log, LogError, LogRecord, OffsetTracker, OutRecord, Until};
use bucketlens_runtime::sqlite::StoreError;
use bucketlens_schemas::{
    error_codes, record_key, topics, AvroRecord, ImageLabeled, ImageMatched, MatchKind, MatchedLabel,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ledger::{ActionAt, Ledger, State};
use crate::tags::{self, Tagger};
use crate::webhook::{self, Poster};
use crate::{Metrics, Rule, Settings};

/// Records read per poll.
const POLL_MAX: usize = 200;

/// Whether a bucket is a folder (no S3 tags there).
pub type IsFolder = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What act needs to run.
pub struct Stage {
    pub settings: Settings,
    pub log: Arc<dyn Log>,
    pub ledger: Ledger,
    /// S3 tags; `None` when no rule writes any.
    pub tagger: Option<Tagger>,
    pub is_folder: IsFolder,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("act stopped: {0}")]
    Log(#[from] LogError),
    #[error("act stopped: {0}")]
    Ledger(#[from] StoreError),
    #[error("act cannot make its HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// An action of a decision, by its name in the ledger, metrics and DLQ headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Tag,
    Untag,
    Webhook,
    Topic,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Tag => "tags",
            Self::Untag => "untag",
            Self::Webhook => "webhook",
            Self::Topic => "topic",
        }
    }

    fn named(name: &str) -> Option<Self> {
        [Self::Tag, Self::Untag, Self::Webhook, Self::Topic].into_iter().find(|a| a.name() == name)
    }
}

/// Runs act until `until` or `shutdown`.
pub async fn run(stage: Stage, until: Until, shutdown: CancellationToken) -> Result<(), ActError> {
    let topic = topics::IMAGES_LABELED;
    let group = stage.settings.group.clone();
    let outputs: BTreeSet<&String> = stage.settings.rules.iter().filter_map(|r| r.topic.as_ref()).collect();
    for output in outputs {
        stage.log.ensure_topic(output, stage.settings.partitions, false).await?;
    }
    let poster = Poster::new(&stage.settings)?;
    let mut consumer = stage.log.subscribe(&group, topic).await?;
    let mut tracker = OffsetTracker::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let wait = until.poll_wait(Duration::from_millis(20), Duration::from_millis(200));
        let records = tokio::select! {
            polled = consumer.poll(POLL_MAX, wait) => polled?,
            () = shutdown.cancelled() => Vec::new(),
            () = until.upstream_finished(), if !until.upstream_done() => Vec::new(),
        };
        let idle = records.is_empty();
        for record in records {
            if shutdown.is_cancelled() {
                break;
            }
            tracker.start(record.partition, record.offset);
            stage.metrics.records_in.add(1);
            if handle(&stage, &poster, &record, &shutdown).await? {
                tracker.finish(record.partition, record.offset);
            }
        }
        commit_or_defer(&mut *consumer, &tracker.committable()).await?;
        if let Some(revocation) = consumer.take_revocation() {
            tracker.forget(revocation.partitions());
        }
        if idle && until.reached(&*stage.log, &group, topic).await? {
            break;
        }
    }
    commit_or_defer(&mut *consumer, &tracker.committable()).await?;
    Ok(())
}

/// Decides every rule on one record; `false` if shutdown cut it short (it is read
/// again after a restart, and what was done is not done again).
async fn handle(
    stage: &Stage,
    poster: &Poster,
    record: &LogRecord,
    shutdown: &CancellationToken,
) -> Result<bool, ActError> {
    let labeled = match ImageLabeled::from_bytes(&record.value) {
        Ok(labeled) => labeled,
        Err(e) => {
            warn!(partition = record.partition, offset = record.offset, key = %record.key, error = %e, "undecodable label record skipped (the index sink dead-letters it)");
            stage.metrics.undecodable.add(1);
            return Ok(true);
        }
    };
    let mut states = stage.ledger.run_states(&labeled.bucket, &labeled.key).await?;
    for rule in &stage.settings.rules {
        stage.metrics.evaluations.add(1);
        let state = states.remove(&rule.name);
        if !decide(stage, poster, (rule, state), &labeled, record, shutdown).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The labels a match carries: those at the rule's minimum or above, highest first.
fn matched_labels(rule: &Rule, labeled: &ImageLabeled) -> Vec<MatchedLabel> {
    let mut labels: Vec<MatchedLabel> = labeled
        .labels
        .iter()
        .filter(|l| l.confidence >= rule.min_confidence)
        .map(|l| MatchedLabel { name: l.name.clone(), confidence: l.confidence })
        .collect();
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    labels
}

/// The version a match is of: the S3 version id, else the ETag (a replaced object
/// in an unversioned bucket is a new version), else none.
fn version_of(labeled: &ImageLabeled) -> String {
    labeled.version_id.clone().or_else(|| labeled.etag.clone()).unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One rule on one record, given the rule's state for the object (none: it never
/// matched it). `false`: shutdown came mid-way.
async fn decide(
    stage: &Stage,
    poster: &Poster,
    (rule, state): (&Rule, Option<State>),
    labeled: &ImageLabeled,
    record: &LogRecord,
    shutdown: &CancellationToken,
) -> Result<bool, ActError> {
    let (bucket, key, at) = (labeled.bucket.as_str(), labeled.key.as_str(), labeled.labeled_at);
    let matches = rule.query.matches(labeled, rule.min_confidence);
    // Never matched, and does not now: nothing to do, nothing to note (the ledger
    // holds only objects a rule matched at some time).
    let Some(state) = state.or_else(|| matches.then(State::default)) else {
        return Ok(true);
    };
    if state.seen_at > at {
        return Ok(true); // an older record (a replay): decided on already
    }
    let version = version_of(labeled);
    let redrive = at == state.seen_at && !state.failed.is_empty();
    let (kind, actions): (MatchKind, Vec<Action>) = match (matches, state.version.as_deref()) {
        (true, Some(v)) if v == version => (
            MatchKind::Matched,
            if redrive { state.failed.iter().filter_map(|a| Action::named(a)).collect() } else { Vec::new() },
        ),
        (true, _) => (MatchKind::Matched, match_actions(rule)),
        (false, Some(_)) if redrive => {
            (MatchKind::Unmatched, state.failed.iter().filter_map(|a| Action::named(a)).collect())
        }
        (false, Some(_)) => (MatchKind::Unmatched, unmatch_actions(rule)),
        (false, None) => (MatchKind::Unmatched, Vec::new()),
    };
    let first_time = !actions.is_empty() && !redrive;
    let labels = if matches { matched_labels(rule, labeled) } else { Vec::new() };
    // Untagging is of the version that matched (the record may be its removal).
    let target_version_id =
        if kind == MatchKind::Unmatched { state.version_id.clone() } else { labeled.version_id.clone() };
    let mut failed = Vec::new();
    for action in actions {
        if shutdown.is_cancelled() {
            return Ok(false);
        }
        let done_at = ActionAt {
            rule: rule.name.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            labeled_at: at,
            action: action.name(),
        };
        if stage.ledger.run_done(done_at.clone()).await? {
            continue;
        }
        let outcome = match action {
            Action::Tag | Action::Untag => {
                tag(stage, rule, (bucket, key, target_version_id.as_deref()), &labels, action).await
            }
            Action::Webhook => {
                let Some(url) = &rule.webhook else { continue };
                let body = webhook::Body {
                    rule: &rule.name,
                    bucket,
                    key,
                    version_id: labeled.version_id.as_deref(),
                    labels: &labels,
                    matched_at: rfc3339(now_ms()),
                };
                let delivery = webhook::delivery_id(&rule.name, bucket, key, &version);
                poster.post(url, &body, &delivery, shutdown).await.map_err(|e| e.to_string())
            }
            Action::Topic => {
                publish(stage, rule, labeled, kind, &labels).await?;
                Ok(())
            }
        };
        match outcome {
            Ok(()) => {
                stage.metrics.actions.add(action.name());
                stage.ledger.run_mark_done(done_at).await?;
            }
            Err(reason) if shutdown.is_cancelled() && action == Action::Webhook => {
                info!(rule = %rule.name, key, %reason, "webhook left for after the restart");
                return Ok(false);
            }
            Err(reason) => {
                dead_letter(stage, record, rule, action, &reason).await?;
                failed.push(action.name().to_string());
            }
        }
    }
    if first_time {
        match kind {
            MatchKind::Matched => stage.metrics.matches.add(&rule.name),
            MatchKind::Unmatched => stage.metrics.unmatches.add(&rule.name),
        }
    }
    let decided = State {
        seen_at: at,
        version: matches.then(|| version.clone()),
        version_id: if matches { labeled.version_id.clone() } else { None },
        failed,
    };
    stage.ledger.run_decided((&rule.name, bucket, key), at, decided).await?;
    Ok(true)
}

fn match_actions(rule: &Rule) -> Vec<Action> {
    let mut actions = Vec::new();
    if rule.s3_tags {
        actions.push(Action::Tag);
    }
    if rule.webhook.is_some() {
        actions.push(Action::Webhook);
    }
    if rule.topic.is_some() {
        actions.push(Action::Topic);
    }
    actions
}

/// A match that ends removes the tags and says so on the topic; no webhook is
/// posted (the body is a match's).
fn unmatch_actions(rule: &Rule) -> Vec<Action> {
    match_actions(rule)
        .into_iter()
        .filter_map(|a| match a {
            Action::Tag => Some(Action::Untag),
            Action::Webhook => None,
            other => Some(other),
        })
        .collect()
}

async fn tag(
    stage: &Stage,
    rule: &Rule,
    object: (&str, &str, Option<&str>),
    labels: &[MatchedLabel],
    action: Action,
) -> Result<(), String> {
    if (stage.is_folder)(object.0) {
        stage.metrics.tags_not_s3.add(1);
        return Ok(());
    }
    let Some(tagger) = &stage.tagger else { return Ok(()) };
    let value = (action == Action::Tag).then(|| tags::value(labels));
    match tagger.set(object, &rule.tag_key(), value.as_deref()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

async fn publish(
    stage: &Stage,
    rule: &Rule,
    labeled: &ImageLabeled,
    kind: MatchKind,
    labels: &[MatchedLabel],
) -> Result<(), LogError> {
    let Some(topic) = &rule.topic else { return Ok(()) };
    let matched = ImageMatched {
        rule: rule.name.clone(),
        bucket: labeled.bucket.clone(),
        key: labeled.key.clone(),
        version_id: labeled.version_id.clone(),
        etag: labeled.etag.clone(),
        kind,
        labels: labels.to_vec(),
        matched_at: now_ms(),
    };
    let value = matched.to_bytes().map_err(|e| LogError::Storage { reason: e.to_string() })?;
    stage.log.produce(topic, vec![OutRecord::new(record_key(&labeled.bucket, &labeled.key), value)]).await
}

async fn dead_letter(
    stage: &Stage,
    record: &LogRecord,
    rule: &Rule,
    action: Action,
    reason: &str,
) -> Result<(), LogError> {
    let code = match action {
        Action::Webhook => error_codes::WEBHOOK_FAILED,
        _ => error_codes::TAGGING_FAILED,
    };
    warn!(rule = %rule.name, key = %record.key, action = action.name(), %reason, "an action failed for good; the record goes to the DLQ");
    stage.metrics.dead_lettered.add(action.name());
    let mut dlq = record.dead_letter(code, reason);
    dlq.headers.push(("act.rule".into(), rule.name.clone()));
    dlq.headers.push(("act.action".into(), action.name().into()));
    stage.log.produce(topics::IMAGES_LABELED_DLQ, vec![dlq]).await
}

/// `ms` as RFC 3339 in UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

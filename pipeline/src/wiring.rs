//! Wiring: builds the IO parts (log, object sources, labeler, index) from the
//! settings, once per command, and starts the stages on them. No stage logic here:
//! each stage crate owns its run loop; this file only decides which run where.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bucketlens_index::Index;
use bucketlens_labeler::Labeler;
use bucketlens_listing::state::State;
use bucketlens_runtime::bucket::{BucketRouter, Discover, ObjectSource};
use bucketlens_runtime::log::{EmbeddedLog, KafkaLog, Log, Until};
use bucketlens_runtime::metrics::Registry;
use bucketlens_schemas::topics;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::settings::{Backend, Settings};

/// The configured log (embedded or Kafka) with bucketlens' topics, created if
/// missing: the two state topics compacted, the dead-letter topics not.
/// With a schema registry, the state topics' schemas are registered (and the Kafka
/// log writes them in Confluent's framing).
pub async fn open_log(settings: &Settings) -> anyhow::Result<Arc<dyn Log>> {
    let ensure = |log: Arc<dyn Log>| async move {
        for (topic, compacted) in topics::ALL {
            ensure_topic(&*log, topic, compacted, settings).await?;
        }
        anyhow::Ok(log)
    };
    match settings.log.backend {
        Backend::Embedded => ensure(Arc::new(EmbeddedLog::open(&settings.log_path())?)).await,
        Backend::Kafka => {
            let kafka = Arc::new(KafkaLog::connect(settings.log.kafka.clone()).await?);
            let log = ensure(Arc::clone(&kafka) as Arc<dyn Log>).await?;
            for (topic, schema) in [
                (topics::OBJECTS_CHANGED, bucketlens_schemas::OBJECTS_CHANGED_SCHEMA),
                (topics::IMAGES_LABELED, bucketlens_schemas::IMAGES_LABELED_SCHEMA),
            ] {
                kafka
                    .register_schema(topic, schema)
                    .await
                    .with_context(|| format!("registering the schema of {topic}"))?;
            }
            Ok(log)
        }
    }
}

/// Where the labeler reads objects: the `[buckets]` of the configuration, and the
/// folders recorded by listings in this data dir (looked for again when an unknown
/// bucket shows up, so a labeler started before the first listing finds it). Any
/// other bucket is read from S3 (`[s3]`).
pub async fn object_sources(settings: &Settings) -> anyhow::Result<Arc<dyn ObjectSource>> {
    let listing = settings.listing_path();
    let discover: Discover = Arc::new(move || {
        if !listing.exists() {
            return Ok(Vec::new());
        }
        State::open(Some(&listing)).and_then(|state| state.roots()).map_err(|e| e.to_string())
    });
    let (configured, s3) = (settings.buckets.clone(), settings.s3.clone());
    let router = tokio::task::spawn_blocking(move || BucketRouter::new(configured, Some(discover), s3)).await??;
    Ok(Arc::new(router))
}

/// The labeler the settings choose.
/// Says which model and engine label, on stderr (the engine's choice is automatic).
pub async fn load_labeler(settings: &Settings) -> anyhow::Result<Arc<dyn Labeler>> {
    let labeler = bucketlens_labeler::load(&settings.labeler).await?;
    let model = &labeler.model().name;
    match labeler.runs_on() {
        Some(engine) => bucketlens_runtime::say!("labeling with {model} on {engine}"),
        None => bucketlens_runtime::say!("labeling with {model}"),
    }
    Ok(labeler)
}

/// How often a role waiting for a topic looks again, and says again that it waits.
const TOPIC_POLL: std::time::Duration = std::time::Duration::from_secs(5);
const TOPIC_REMINDER: std::time::Duration = std::time::Duration::from_secs(60);

/// Makes `topic` exist; one that bucketlens may not create (MSK with IAM) is waited
/// for, up to `[log] topic-wait`, saying what is missing and how to create it.
async fn ensure_topic(log: &dyn Log, topic: &str, compacted: bool, settings: &Settings) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut said: Option<std::time::Instant> = None;
    loop {
        match log.ensure_topic(topic, settings.log.partitions, compacted).await {
            Ok(()) => {
                if said.is_some() {
                    bucketlens_runtime::say!("topic {topic} exists now: going on");
                }
                return Ok(());
            }
            Err(e @ bucketlens_runtime::log::LogError::MissingTopic { .. }) => {
                if settings.log.topic_wait.is_some_and(|wait| started.elapsed() >= wait) {
                    return Err(e).context(format!("topic {topic}"));
                }
                if said.is_none_or(|at| at.elapsed() >= TOPIC_REMINDER) {
                    bucketlens_runtime::say!("waiting for the topics: {e}");
                    said = Some(std::time::Instant::now());
                }
                tokio::time::sleep(TOPIC_POLL).await;
            }
            Err(e) => return Err(e).context(format!("creating topic {topic}")),
        }
    }
}

/// The index the sink writes: tantivy in the data dir, or OpenSearch.
pub async fn open_index_writer(settings: &Settings) -> anyhow::Result<Arc<dyn Index>> {
    Ok(bucketlens_index::open_writer(&settings.index, &settings.index_path()).await?)
}

/// The index searches read (no writer lock on tantivy).
pub async fn open_index_reader(settings: &Settings) -> anyhow::Result<Arc<dyn Index>> {
    Ok(bucketlens_index::open_reader(&settings.index, &settings.index_path()).await?)
}

/// The index searches read, which must exist: searching a name that was never
/// indexed (a typo, another data dir) is an error naming it, not an empty result.
pub async fn open_existing_index(settings: &Settings) -> anyhow::Result<Arc<dyn Index>> {
    if !bucketlens_index::exists(&settings.index, &settings.index_path()).await? {
        anyhow::bail!(
            "the index {} does not exist: nothing has been indexed there. Run `bucketlens index DIR` (or a \
             `bucketlens sink`) first, or check --data-dir and the [index] settings",
            index_location(settings)
        );
    }
    open_index_reader(settings).await
}

/// Where the index is, for messages.
pub fn index_location(settings: &Settings) -> String {
    bucketlens_index::describe(&settings.index, &settings.index_path())
}

/// Shared counters of the running stages.
#[derive(Default)]
pub struct Counters {
    pub labeler: Arc<bucketlens_labeler::Metrics>,
    pub sink: Arc<bucketlens_index::Metrics>,
    pub act: Arc<bucketlens_act::Metrics>,
}

/// A stage running on its own task.
pub type Running = JoinHandle<anyhow::Result<()>>;

/// Starts the labeler on `log`, reading objects from `source`.
pub fn spawn_labeler(
    settings: &Settings,
    log: Arc<dyn Log>,
    (source, labeler): (Arc<dyn ObjectSource>, Arc<dyn Labeler>),
    metrics: Arc<bucketlens_labeler::Metrics>,
    until: Until,
    shutdown: &CancellationToken,
) -> Running {
    let (settings, ledger_path) = (settings.labeler.clone(), settings.ledger_path());
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let ledger = tokio::task::spawn_blocking(move || bucketlens_labeler::Ledger::open(Some(&ledger_path)))
            .await
            .context("opening the labeler ledger")??;
        let isolation = isolation(&settings);
        let stage = bucketlens_labeler::Stage { settings, log, source, labeler, metrics, ledger, isolation };
        bucketlens_labeler::run(stage, until, shutdown).await.context("labeler")
    })
}

/// How long a separate labeler process may take over one image (loading the model
/// included) before it is taken for hung, killed, and counted as a death.
const ISOLATED_TIMEOUT: Duration = Duration::from_secs(120);

/// Child processes of this binary (`label-one`) for objects a labeler died on; the
/// local model only (Rekognition decodes nothing here).
fn isolation(settings: &bucketlens_labeler::Settings) -> Option<bucketlens_labeler::Isolation> {
    if settings.backend != bucketlens_labeler::Backend::Local {
        return None;
    }
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => {
            tracing::warn!(error = %e, "this program's path is unknown: an object a labeler died on is labeled alone in this process");
            return None;
        }
    };
    let mut model = bucketlens_labeler::LocalModel::of(settings);
    model.options.threads = 1;
    let model = serde_json::to_string(&model).ok()?;
    let args = vec!["label-one".into(), "--model".into(), model.into()];
    Some(bucketlens_labeler::Isolation::new(program, args, settings.concurrency.get(), ISOLATED_TIMEOUT))
}

/// Starts the index sink on `log`, writing `index`.
pub fn spawn_sink(
    settings: &Settings,
    log: Arc<dyn Log>,
    index: Arc<dyn Index>,
    metrics: Arc<bucketlens_index::Metrics>,
    until: Until,
    shutdown: &CancellationToken,
) -> Running {
    let stage = bucketlens_index::Stage { config: settings.index.clone(), log, index, metrics };
    let shutdown = shutdown.clone();
    tokio::spawn(async move { bucketlens_index::run(stage, until, shutdown).await.context("index sink") })
}

/// `act` on `log`, with its ledger in the data dir and S3 tags through `[s3]` (for
/// buckets that are not folders).
pub async fn act_stage(
    settings: &Settings,
    log: Arc<dyn Log>,
    metrics: Arc<bucketlens_act::Metrics>,
) -> anyhow::Result<bucketlens_act::Stage> {
    let mut act = settings.act.validate().map_err(|problems| {
        let said: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.key, p.problem)).collect();
        anyhow::anyhow!("[act] is wrong: {}", said.join("; "))
    })?;
    act.partitions = settings.log.partitions;
    let path = settings.act_ledger_path();
    let ledger = tokio::task::spawn_blocking(move || bucketlens_act::Ledger::open(Some(&path)))
        .await
        .context("opening the act ledger")??;
    let tagger = match act.rules.iter().any(|r| r.s3_tags) {
        true => Some(bucketlens_act::Tagger::new(bucketlens_runtime::aws::s3_client(&settings.s3).await)),
        false => None,
    };
    Ok(bucketlens_act::Stage { settings: act, log, ledger, tagger, is_folder: folders(settings), metrics })
}

/// Whether a bucket is a folder: configured in `[buckets]`, or listed from one in
/// this data dir (looked up once per bucket).
fn folders(settings: &Settings) -> bucketlens_act::IsFolder {
    let configured = settings.buckets.clone();
    let listing = settings.listing_path();
    let known = std::sync::Mutex::new(std::collections::HashMap::<String, bool>::new());
    Arc::new(move |bucket: &str| {
        if configured.contains_key(bucket) {
            return true;
        }
        let mut known = known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *known.entry(bucket.to_string()).or_insert_with(|| {
            listing.exists() && State::open(Some(&listing)).ok().and_then(|s| s.root(bucket).ok().flatten()).is_some()
        })
    })
}

/// Starts `act` on `log`.
pub fn spawn_act(
    settings: &Settings,
    log: Arc<dyn Log>,
    metrics: Arc<bucketlens_act::Metrics>,
    until: Until,
    shutdown: &CancellationToken,
) -> Running {
    let settings = settings.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let stage = act_stage(&settings, log, metrics).await?;
        bucketlens_act::run(stage, until, shutdown).await.context("act")
    })
}

/// The labeler and the index sink, running.
pub struct Stages {
    /// Upstream first: the labeler (if any), then the sink.
    running: Vec<Running>,
}

/// Starts the labeler (if `labeling`) and the sink in one process. With
/// `until_upstream`, each stage returns once its upstream is done and it has caught
/// up; without, on shutdown. A stage that fails stops the other (which commits what
/// it finished first).
pub fn start(
    settings: &Settings,
    log: Arc<dyn Log>,
    index: Arc<dyn Index>,
    labeling: Option<(Arc<dyn ObjectSource>, Arc<dyn Labeler>)>,
    counters: &Counters,
    until_upstream: Option<watch::Receiver<bool>>,
    shutdown: &CancellationToken,
) -> Stages {
    let (labeled_tx, labeled_rx) = watch::channel(labeling.is_none());
    let labeler = labeling.map(|parts| {
        let until = until_upstream.clone().map_or(Until::Shutdown, Until::CaughtUp);
        let metrics = Arc::clone(&counters.labeler);
        let running = spawn_labeler(settings, Arc::clone(&log), parts, metrics, until, shutdown);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let result = running.await.context("labeler task").and_then(|r| r);
            if result.is_err() {
                shutdown.cancel();
            }
            let _ = labeled_tx.send(true);
            result
        })
    });
    let sink_until = if until_upstream.is_some() { Until::CaughtUp(labeled_rx) } else { Until::Shutdown };
    // With rules, act runs beside the sink, on the same records.
    let act = (!settings.act.rules.is_empty()).then(|| {
        let running = spawn_act(settings, Arc::clone(&log), Arc::clone(&counters.act), sink_until.clone(), shutdown);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let result = running.await.context("act task").and_then(|r| r);
            if result.is_err() {
                stop.cancel();
            }
            result
        })
    });
    let running = spawn_sink(settings, log, index, Arc::clone(&counters.sink), sink_until, shutdown);
    let stop = shutdown.clone();
    let sink = tokio::spawn(async move {
        let result = running.await.context("index sink task").and_then(|r| r);
        if result.is_err() {
            stop.cancel();
        }
        result
    });
    Stages { running: labeler.into_iter().chain([sink]).chain(act).collect() }
}

impl Stages {
    /// One stage alone.
    pub fn one(running: Running) -> Self {
        Self { running: vec![running] }
    }

    /// Waits for the stages; the first error wins.
    pub async fn join(self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for running in self.running {
            let finished = running.await.context("stage task").and_then(|r| r);
            result = result.and(finished);
        }
        result
    }
}

/// Records waiting for `group` on `topic` (end offset − committed offset, summed).
pub async fn lag(log: &dyn Log, group: &str, topic: &str) -> anyhow::Result<u64> {
    let marks = log.watermarks(topic).await?;
    let committed = log.committed(group, topic).await?;
    Ok(marks.iter().map(|m| m.lag(&committed) as u64).sum())
}

/// Serves `registry` on the configured address and says where on stderr.
pub async fn serve_metrics(
    settings: &Settings,
    registry: Registry,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let addr = bucketlens_runtime::metrics::serve(settings.metrics.listen, registry, shutdown.clone())
        .await
        .with_context(|| format!("serving metrics on {}", settings.metrics.listen))?;
    bucketlens_runtime::say!("metrics on http://{addr}/metrics");
    Ok(())
}

/// A long-running group member (`label`, `sink`): its `/metrics` (its stage's
/// counters and its group's lag), served until it stops.
pub struct Member {
    lag: JoinHandle<()>,
    shutdown: CancellationToken,
}

impl Member {
    /// Serves the member's metrics: `register` adds the stage's counters.
    pub async fn start(
        settings: &Settings,
        log: &Arc<dyn Log>,
        (group, topic): (&str, &'static str),
        register: impl FnOnce(&mut Registry),
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut registry = registry();
        register(&mut registry);
        let lag = bucketlens_runtime::metrics::track_lag(
            &mut registry,
            Arc::clone(log),
            vec![(group.to_string(), topic)],
            std::time::Duration::from_secs(5),
            shutdown.clone(),
        );
        serve_metrics(settings, registry, shutdown).await?;
        Ok(Self { lag, shutdown: shutdown.clone() })
    }

    /// Waits for the member's stage, then stops serving its metrics.
    pub async fn finish(self, stage: Running) -> anyhow::Result<()> {
        let result = stage.await.context("stage task").and_then(|r| r);
        self.shutdown.cancel();
        let _ = self.lag.await;
        result
    }
}

/// A registry whose names all start with `bucketlens_`.
pub fn registry() -> Registry {
    Registry::with_prefix("bucketlens")
}

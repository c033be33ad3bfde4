//! Wiring: opens the embedded parts from the settings and runs the stages.

use std::sync::Arc;

use anyhow::Context;
use bucketlens_index::{Backend as IndexBackend, Index, OpenSearchIndex, TantivyIndex};
use bucketlens_labeler::onnx::{OnnxLabeler, OnnxOptions};
use bucketlens_labeler::rekognition::RekognitionLabeler;
use bucketlens_labeler::{Backend as LabelerBackend, Labeler};
use bucketlens_listing::state::State;
use bucketlens_runtime::aws::S3Config;
use bucketlens_runtime::bucket::{Buckets, LocalDir, ObjectMeta, ObjectRef, ObjectSource, S3Bucket, SourceError};
use bucketlens_runtime::log::{EmbeddedLog, KafkaLog, Log, Until};
use bucketlens_schemas::topics;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::settings::{Backend, Settings};

/// The configured log (embedded or Kafka) with bucketlens' topics, created if
/// missing: the two state topics compacted, the dead-letter topic not.
/// With a schema registry, the state topics' schemas are registered (and the Kafka
/// log writes them in Confluent's framing).
pub async fn open_log(settings: &Settings) -> anyhow::Result<Arc<dyn Log>> {
    let topics =
        [(topics::OBJECTS_CHANGED, true), (topics::IMAGES_LABELED, true), (topics::OBJECTS_CHANGED_DLQ, false)];
    let ensure = |log: Arc<dyn Log>| async move {
        for (topic, compacted) in topics {
            log.ensure_topic(topic, settings.log.partitions, compacted)
                .await
                .with_context(|| format!("creating topic {topic}"))?;
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
/// folders recorded by listings in this data dir — read again when an unknown
/// bucket shows up, so a labeler started before the first listing finds it. Any
/// other bucket is read from S3 (`[s3]`).
pub fn object_sources(settings: &Settings) -> anyhow::Result<Arc<dyn ObjectSource>> {
    let sources = DataDirBuckets {
        configured: settings.buckets.clone(),
        listing: settings.listing_path(),
        current: std::sync::RwLock::new(Buckets::default()),
        s3_config: settings.s3.clone(),
        s3: tokio::sync::OnceCell::new(),
    };
    sources.reload()?;
    Ok(Arc::new(sources))
}

struct DataDirBuckets {
    configured: std::collections::BTreeMap<String, std::path::PathBuf>,
    listing: std::path::PathBuf,
    current: std::sync::RwLock<Buckets>,
    s3_config: S3Config,
    /// Made on first use: loading the AWS configuration may probe the network.
    s3: tokio::sync::OnceCell<Arc<dyn ObjectSource>>,
}

impl DataDirBuckets {
    fn reload(&self) -> anyhow::Result<()> {
        let mut buckets = Buckets::default();
        let mut roots: Vec<(String, std::path::PathBuf)> = Vec::new();
        if self.listing.exists() {
            roots = State::open(&self.listing)?.roots()?;
        }
        roots.extend(self.configured.iter().map(|(b, p)| (b.clone(), p.clone())));
        for (bucket, root) in roots {
            let source = LocalDir::new(&root).map_err(|e| {
                anyhow::anyhow!("bucket {bucket} is read from {}, which cannot be opened: {e}", root.display())
            })?;
            buckets.insert(bucket, Arc::new(source) as Arc<dyn ObjectSource>);
        }
        *self.current.write().map_err(|_| anyhow::anyhow!("bucket map poisoned"))? = buckets;
        Ok(())
    }

    fn local(&self, bucket: &str) -> Option<Arc<dyn ObjectSource>> {
        self.current.read().ok().and_then(|b| b.source(bucket).cloned())
    }

    /// The folder serving `bucket`, else S3.
    async fn source_of(&self, bucket: &str) -> Arc<dyn ObjectSource> {
        if let Some(source) = self.local(bucket) {
            return source;
        }
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e, "cannot reload the bucket folders");
        }
        if let Some(source) = self.local(bucket) {
            return source;
        }
        let s3 = self.s3.get_or_init(|| async {
            let client = bucketlens_runtime::aws::s3_client(&self.s3_config).await;
            Arc::new(S3Bucket::new(client)) as Arc<dyn ObjectSource>
        });
        Arc::clone(s3.await)
    }
}

#[async_trait::async_trait]
impl ObjectSource for DataDirBuckets {
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Vec<u8>>, SourceError> {
        self.source_of(object.bucket).await.get(object, max_bytes).await
    }

    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError> {
        self.source_of(object.bucket).await.head(object).await
    }

    async fn in_s3(&self, bucket: &str) -> bool {
        self.source_of(bucket).await.in_s3(bucket).await
    }
}

/// The labeler: the local model (loaded once, off the async threads) or Rekognition.
pub async fn load_labeler(settings: &Settings) -> anyhow::Result<Arc<dyn Labeler>> {
    let s = settings.labeler.validate().map_err(anyhow::Error::msg)?;
    if s.backend == LabelerBackend::Rekognition {
        let labeler = RekognitionLabeler::new(&s.rekognition, s.min_confidence, s.max_labels.get()).await;
        return Ok(Arc::new(labeler));
    }
    let options = OnnxOptions {
        threads: s.concurrency.get(),
        min_confidence: s.min_confidence,
        max_labels: s.max_labels.get(),
        max_pixels: s.max_pixels,
        detector: s.detector.clone(),
    };
    let custom = s.model.clone();
    let labeler = tokio::task::spawn_blocking(move || {
        OnnxLabeler::load(custom.as_ref().map(|(m, l)| (m.as_path(), l.as_path())), &options)
    })
    .await??;
    Ok(Arc::new(labeler))
}

/// The index the sink writes: tantivy in the data dir, or OpenSearch.
pub async fn open_index_writer(settings: &Settings) -> anyhow::Result<Arc<dyn Index>> {
    Ok(match settings.index.backend {
        IndexBackend::Tantivy => {
            Arc::new(TantivyIndex::open_writer(&settings.index_path(), settings.index.writer_memory)?)
        }
        IndexBackend::OpenSearch => Arc::new(OpenSearchIndex::open(&settings.index.opensearch).await?),
    })
}

/// The index searches read (no writer lock on tantivy).
pub async fn open_index_reader(settings: &Settings) -> anyhow::Result<Arc<dyn Index>> {
    Ok(match settings.index.backend {
        IndexBackend::Tantivy => Arc::new(TantivyIndex::open_reader(&settings.index_path())?),
        IndexBackend::OpenSearch => Arc::new(OpenSearchIndex::open_for_search(&settings.index.opensearch).await?),
    })
}

/// Shared counters of the running stages.
#[derive(Default)]
pub struct Counters {
    pub labeler: Arc<bucketlens_labeler::Metrics>,
    pub sink: Arc<bucketlens_index::Metrics>,
}

/// The labeler and the index sink, running.
pub struct Stages {
    labeler: Option<JoinHandle<anyhow::Result<()>>>,
    sink: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts one stage: the labeler when `labeling` is given, else the sink on `index`.
pub fn start_one(
    settings: &Settings,
    log: Arc<dyn Log>,
    index: Option<Arc<dyn Index>>,
    labeling: Option<(Arc<dyn ObjectSource>, Arc<dyn Labeler>)>,
    counters: &Counters,
    until: Until,
    shutdown: &CancellationToken,
) -> anyhow::Result<Stages> {
    let shutdown = shutdown.clone();
    if let Some((source, labeler)) = labeling {
        let stage = bucketlens_labeler::stage::Stage {
            settings: settings.labeler.validate().map_err(anyhow::Error::msg)?,
            log,
            source,
            labeler,
            metrics: Arc::clone(&counters.labeler),
        };
        let handle =
            tokio::spawn(async move { bucketlens_labeler::run(stage, until, shutdown).await.context("labeler") });
        return Ok(Stages { labeler: Some(handle), sink: None });
    }
    let index = index.context("the index sink needs an index")?;
    let stage = bucketlens_index::stage::Stage {
        config: settings.index.clone(),
        log,
        index,
        metrics: Arc::clone(&counters.sink),
    };
    let handle =
        tokio::spawn(async move { bucketlens_index::stage::run(stage, until, shutdown).await.context("index sink") });
    Ok(Stages { labeler: None, sink: Some(handle) })
}

/// Starts the labeler (if `labeling`) and the sink. With `until_upstream`, each stage
/// returns once its upstream is done and it has caught up; without, on shutdown.
pub fn start(
    settings: &Settings,
    log: Arc<dyn Log>,
    index: Arc<dyn Index>,
    labeling: Option<(Arc<dyn ObjectSource>, Arc<dyn Labeler>)>,
    counters: &Counters,
    until_upstream: Option<watch::Receiver<bool>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Stages> {
    let labeler_settings = settings.labeler.validate().map_err(anyhow::Error::msg)?;
    let (labeled_tx, labeled_rx) = watch::channel(labeling.is_none());
    let until = |rx: Option<watch::Receiver<bool>>| rx.map_or(Until::Shutdown, Until::CaughtUp);

    let labeler = labeling.map(|(source, labeler)| {
        let stage = bucketlens_labeler::stage::Stage {
            settings: labeler_settings,
            log: Arc::clone(&log),
            source,
            labeler,
            metrics: Arc::clone(&counters.labeler),
        };
        let until = until(until_upstream.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let result = bucketlens_labeler::run(stage, until, shutdown.clone()).await;
            if result.is_err() {
                shutdown.cancel(); // the sink stops too, after committing what it wrote
            }
            let _ = labeled_tx.send(true);
            result.context("labeler")
        })
    });
    let sink_until = if until_upstream.is_some() { Until::CaughtUp(labeled_rx) } else { Until::Shutdown };
    let stage = bucketlens_index::stage::Stage {
        config: settings.index.clone(),
        log,
        index,
        metrics: Arc::clone(&counters.sink),
    };
    let shutdown = shutdown.clone();
    let sink = tokio::spawn(async move {
        let result = bucketlens_index::stage::run(stage, sink_until, shutdown.clone()).await;
        if result.is_err() {
            shutdown.cancel();
        }
        result.context("index sink")
    });
    Ok(Stages { labeler, sink: Some(sink) })
}

impl Stages {
    /// Waits for both stages; the first error wins.
    pub async fn join(self) -> anyhow::Result<()> {
        let labeler = match self.labeler {
            Some(handle) => handle.await.context("labeler task")?,
            None => Ok(()),
        };
        let sink = match self.sink {
            Some(handle) => handle.await.context("index sink task")?,
            None => Ok(()),
        };
        labeler.and(sink)
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
    registry: bucketlens_runtime::metrics::Registry,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let addr = bucketlens_runtime::metrics::serve(settings.metrics.listen, registry, shutdown.clone())
        .await
        .with_context(|| format!("serving metrics on {}", settings.metrics.listen))?;
    eprintln!("metrics on http://{addr}/metrics");
    Ok(())
}

/// The `/metrics` of a group member: its stage's counters (`register`) and its
/// group's lag, kept current until `shutdown` by the returned task.
pub async fn serve_member_metrics(
    settings: &Settings,
    log: &Arc<dyn Log>,
    group: &str,
    topic: &'static str,
    register: impl FnOnce(&mut bucketlens_runtime::metrics::Registry),
    shutdown: &CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
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
    Ok(lag)
}

/// A registry whose names all start with `bucketlens_`.
pub fn registry() -> bucketlens_runtime::metrics::Registry {
    bucketlens_runtime::metrics::Registry::with_prefix("bucketlens")
}

//! Wiring: opens the embedded parts from the settings and runs the stages.

use std::sync::Arc;

use anyhow::Context;
use bucketlens_index::{Index, TantivyIndex};
use bucketlens_labeler::onnx::{OnnxLabeler, OnnxOptions};
use bucketlens_runtime::bucket::ObjectSource;
use bucketlens_runtime::log::{EmbeddedLog, Log, Until};
use bucketlens_schemas::topics;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::settings::Settings;

/// The embedded log with bucketlens' topics.
pub async fn open_log(settings: &Settings) -> anyhow::Result<Arc<dyn Log>> {
    let log = EmbeddedLog::open(&settings.log_path())?;
    for topic in [topics::OBJECTS_CHANGED, topics::IMAGES_LABELED, topics::OBJECTS_CHANGED_DLQ] {
        log.ensure_topic(topic, settings.log.partitions).await?;
    }
    Ok(Arc::new(log))
}

/// The local model, loaded once, off the async threads.
pub async fn load_labeler(settings: &Settings) -> anyhow::Result<Arc<OnnxLabeler>> {
    let s = settings.labeler.validate().map_err(anyhow::Error::msg)?;
    let options = OnnxOptions {
        threads: s.concurrency.get(),
        min_confidence: s.min_confidence,
        max_labels: s.max_labels.get(),
        max_pixels: s.max_pixels,
    };
    let custom = s.model.clone();
    let labeler = tokio::task::spawn_blocking(move || {
        OnnxLabeler::load(custom.as_ref().map(|(m, l)| (m.as_path(), l.as_path())), &options)
    })
    .await??;
    Ok(Arc::new(labeler))
}

pub fn open_index_writer(settings: &Settings) -> anyhow::Result<Arc<TantivyIndex>> {
    Ok(Arc::new(TantivyIndex::open_writer(&settings.index_path(), settings.index.writer_memory)?))
}

pub fn open_index_reader(settings: &Settings) -> anyhow::Result<Arc<TantivyIndex>> {
    Ok(Arc::new(TantivyIndex::open_reader(&settings.index_path())?))
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
    sink: JoinHandle<anyhow::Result<()>>,
}

/// Starts the labeler (if `labeling`) and the sink. With `until_upstream`, each stage
/// returns once its upstream is done and it has caught up; without, on shutdown.
pub fn start(
    settings: &Settings,
    log: Arc<dyn Log>,
    index: Arc<dyn Index>,
    labeling: Option<(Arc<dyn ObjectSource>, Arc<OnnxLabeler>)>,
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
    Ok(Stages { labeler, sink })
}

impl Stages {
    /// Waits for both stages; the first error wins.
    pub async fn join(self) -> anyhow::Result<()> {
        let labeler = match self.labeler {
            Some(handle) => handle.await.context("labeler task")?,
            None => Ok(()),
        };
        let sink = self.sink.await.context("index sink task")?;
        labeler.and(sink)
    }
}

/// Records waiting for `group` on `topic` (end offset − committed offset, summed).
pub async fn lag(log: &dyn Log, group: &str, topic: &str) -> anyhow::Result<u64> {
    let marks = log.watermarks(topic).await?;
    let committed = log.committed(group, topic).await?;
    let mut lag = 0;
    for mark in marks {
        let at = committed
            .iter()
            .find(|c| c.partition == mark.partition)
            .and_then(|c| c.committed)
            .unwrap_or(mark.low)
            .max(mark.low);
        lag += (mark.high - at).max(0) as u64;
    }
    Ok(lag)
}

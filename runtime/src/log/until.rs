//! When a consumer stage returns by itself: never (a group member, `--watch`), or
//! once its upstream has finished and the stage has committed everything on its
//! topic (the one-shot `bucketlens index`, a `replay --until-end`).

use std::time::Duration;

use tokio::sync::watch;

use super::{Log, LogError, Watermarks};

#[derive(Debug, Clone)]
pub enum Until {
    /// Only on shutdown.
    Shutdown,
    /// Once the receiver reads `true` and the group's committed offsets have reached
    /// the topic's end offsets.
    CaughtUp(watch::Receiver<bool>),
    /// Once the group's committed offsets reach these end offsets (taken at start:
    /// records appended later are left to the running members). With several such
    /// members sharing the partitions, each returns when the whole group is there.
    EndOffsets(Vec<Watermarks>),
}

impl Until {
    /// Whether a stage whose finished work is all committed may return now.
    pub async fn reached(&self, log: &dyn Log, group: &str, topic: &str) -> Result<bool, LogError> {
        let marks = match self {
            Self::Shutdown => return Ok(false),
            Self::CaughtUp(upstream_done) => {
                if !*upstream_done.borrow() {
                    return Ok(false);
                }
                log.watermarks(topic).await?
            }
            Self::EndOffsets(marks) => marks.clone(),
        };
        let committed = log.committed(group, topic).await?;
        Ok(marks.iter().all(|m| committed.iter().any(|c| c.partition == m.partition) && m.lag(&committed) == 0))
    }

    /// Whether the upstream has finished (records it left may still be unread).
    pub fn upstream_done(&self) -> bool {
        match self {
            Self::Shutdown => false,
            Self::CaughtUp(upstream_done) => *upstream_done.borrow(),
            Self::EndOffsets(_) => true,
        }
    }

    /// Resolves once the upstream has finished: at once if it has, never for
    /// `Shutdown` or an upstream gone without finishing. A stage waiting for records
    /// selects on it too, so it checks [`Self::reached`] when the upstream ends
    /// instead of when its poll times out.
    pub async fn upstream_finished(&self) {
        match self {
            Self::CaughtUp(upstream_done) => {
                let mut upstream_done = upstream_done.clone();
                if upstream_done.wait_for(|done| *done).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            Self::EndOffsets(_) => {}
            Self::Shutdown => std::future::pending().await,
        }
    }

    /// How long a stage's poll waits for records when none are coming: `idle` once a
    /// `CaughtUp` upstream (one process's pipeline) has finished, so the stage returns
    /// as soon as it has caught up; `otherwise` before, and for the other kinds
    /// (`EndOffsets` members wait for each other, and need not ask the log so often).
    pub fn poll_wait(&self, idle: Duration, otherwise: Duration) -> Duration {
        match self {
            Self::CaughtUp(upstream_done) if *upstream_done.borrow() => idle,
            _ => otherwise,
        }
    }

    /// An `Until` that is already satisfied upstream: drain what is there, then return.
    pub fn drain() -> Self {
        let (_tx, rx) = watch::channel(true);
        Self::CaughtUp(rx)
    }
}

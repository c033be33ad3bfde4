//! When a consumer stage returns by itself: never (a group member, `--watch`), or
//! once its upstream has finished and the stage has committed everything on its
//! topic (the one-shot `bucketlens index`, a `replay --until-end`).

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

    /// An `Until` that is already satisfied upstream: drain what is there, then return.
    pub fn drain() -> Self {
        let (_tx, rx) = watch::channel(true);
        Self::CaughtUp(rx)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(10);
    const OTHERWISE: Duration = Duration::from_millis(200);

    /// Whether `upstream_finished` resolves within a generous grace (it either has at
    /// once or never will, in these cases).
    async fn finishes(until: &Until) -> bool {
        tokio::time::timeout(Duration::from_millis(200), until.upstream_finished()).await.is_ok()
    }

    #[tokio::test]
    async fn a_caught_up_stage_waits_long_until_its_upstream_finishes_then_briefly() {
        let (tx, rx) = watch::channel(false);
        let until = Until::CaughtUp(rx);
        assert!(!until.upstream_done());
        assert_eq!(until.poll_wait(IDLE, OTHERWISE), OTHERWISE, "the upstream may still send");
        assert!(!finishes(&until).await);
        // A poll waiting when the upstream finishes wakes then, not at its timeout.
        let waiter = tokio::spawn({
            let until = until.clone();
            async move { until.upstream_finished().await }
        });
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(until.upstream_done());
        assert_eq!(until.poll_wait(IDLE, OTHERWISE), IDLE);
        assert!(finishes(&until).await, "at once, once finished");
    }

    #[tokio::test]
    async fn an_upstream_gone_without_finishing_never_counts_as_finished() {
        let (tx, rx) = watch::channel(false);
        let until = Until::CaughtUp(rx);
        drop(tx);
        assert!(!until.upstream_done());
        assert!(!finishes(&until).await, "a crashed upstream is not a finished one");
        assert_eq!(until.poll_wait(IDLE, OTHERWISE), OTHERWISE);
    }

    #[tokio::test]
    async fn group_members_and_watchers_keep_the_long_poll() {
        let end = Until::EndOffsets(Vec::new());
        assert!(end.upstream_done() && finishes(&end).await, "its end is fixed at start");
        assert_eq!(end.poll_wait(IDLE, OTHERWISE), OTHERWISE, "members wait for each other");
        let shutdown = Until::Shutdown;
        assert!(!shutdown.upstream_done() && !finishes(&shutdown).await);
        assert_eq!(shutdown.poll_wait(IDLE, OTHERWISE), OTHERWISE);
        let drain = Until::drain();
        assert!(drain.upstream_done() && finishes(&drain).await);
        assert_eq!(drain.poll_wait(IDLE, OTHERWISE), IDLE);
    }
}

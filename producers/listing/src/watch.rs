//! `--watch`: filesystem notifications become targeted syncs. Events are gathered
//! for up to `debounce`, reduced to the topmost changed paths, and each is synced (a
//! file → one upsert or delete; a folder → its subtree). If the OS reports lost
//! events, the whole directory is synced again.
//!
//! A path whose last event says it is complete (its writer closed it, it was renamed
//! into place, or removed) needs no debounce: once every changed path is complete and
//! [`SETTLED_GAP`] passes with no new event, the sync starts. A file still being
//! written (created or modified, not yet closed) holds the sync for the whole
//! `debounce`, so a half-written file is not read.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use bucketlens_runtime::produce::{ProduceError, ProduceStats};

use crate::dir::DirProducer;

/// Why the folder cannot be watched, with the usual fix.
fn cannot_watch(root: &std::path::Path, e: notify::Error) -> ProduceError {
    ProduceError::reading(
        format!("cannot watch {}", root.display()),
        format!("{e} (on Linux, raise fs.inotify.max_user_watches for large trees)"),
    )
}

enum Change {
    /// Changed paths, and whether the event says they are complete.
    Paths(Vec<PathBuf>, bool),
    Rescan,
}

/// Once every changed path is complete, the sync waits only this long for more events.
pub const SETTLED_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// The changes gathered for one sync.
#[derive(Default)]
struct Gathered {
    rescan: bool,
    paths: BTreeSet<PathBuf>,
    /// Changed paths whose last event did not say they are complete.
    unsettled: BTreeSet<PathBuf>,
}

impl Gathered {
    fn absorb(&mut self, change: Change) {
        match change {
            Change::Rescan => self.rescan = true,
            Change::Paths(paths, complete) => {
                for path in paths {
                    if complete {
                        self.unsettled.remove(&path);
                    } else {
                        self.unsettled.insert(path.clone());
                    }
                    self.paths.insert(path);
                }
            }
        }
    }

    fn settled(&self) -> bool {
        self.unsettled.is_empty()
    }
}

/// Follows the directory until `shutdown`; `on_sync` sees each sync's counts.
pub async fn run(
    producer: Arc<DirProducer>,
    debounce: std::time::Duration,
    shutdown: CancellationToken,
    mut on_sync: impl FnMut(ProduceStats) + Send,
) -> Result<(), ProduceError> {
    let root = producer.source().root().to_path_buf();
    let (tx, mut rx) = mpsc::channel::<Change>(1024);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let change = match event {
            Ok(e) if e.need_rescan() => Change::Rescan,
            // Reading a file or listing a folder changes nothing (closing a file
            // written to does).
            Ok(notify::Event { kind: EventKind::Access(access), .. })
                if access != AccessKind::Close(AccessMode::Write) =>
            {
                return;
            }
            Ok(e) => {
                let complete = matches!(
                    e.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                        | EventKind::Remove(_)
                        | EventKind::Modify(ModifyKind::Name(_))
                );
                Change::Paths(e.paths, complete)
            }
            Err(_) => Change::Rescan,
        };
        let _ = tx.blocking_send(change);
    })
    .map_err(|e| cannot_watch(&root, e))?;
    watcher.watch(&root, RecursiveMode::Recursive).map_err(|e| cannot_watch(&root, e))?;
    info!(path = %root.display(), "watching for changes");
    // Changes between the initial sync and the watch start would be missed: sync once more.
    on_sync(producer.sync_all().await?);

    loop {
        let first = tokio::select! {
            change = rx.recv() => change,
            () = shutdown.cancelled() => return Ok(()),
        };
        let Some(first) = first else { return Ok(()) };
        let mut gathered = Gathered::default();
        gathered.absorb(first);
        let deadline = tokio::time::Instant::now() + debounce;
        loop {
            let until =
                if gathered.settled() { deadline.min(tokio::time::Instant::now() + SETTLED_GAP) } else { deadline };
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(change)) => gathered.absorb(change),
                _ => break,
            }
        }
        if gathered.rescan {
            warn!("the OS dropped filesystem events; syncing the whole folder");
            on_sync(producer.sync_all().await?);
            continue;
        }
        for path in topmost(gathered.paths) {
            tracing::debug!(path = %path.display(), "syncing a changed path");
            on_sync(producer.sync(Some(path)).await?);
        }
    }
}

/// Drops paths that sit under another path of the set (their sync covers them).
fn topmost(paths: BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        if out.iter().any(|kept| path.starts_with(kept)) {
            continue;
        }
        out.push(path);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_settled_once_each_path_was_closed_renamed_or_removed() {
        let mut gathered = Gathered::default();
        gathered.absorb(Change::Paths(vec!["/r/a.jpg".into()], false)); // created
        gathered.absorb(Change::Paths(vec!["/r/b.jpg".into()], true)); // removed
        assert!(!gathered.settled(), "a.jpg is still being written");
        gathered.absorb(Change::Paths(vec!["/r/a.jpg".into()], true)); // closed
        assert!(gathered.settled());
        gathered.absorb(Change::Paths(vec!["/r/a.jpg".into()], false)); // written again
        assert!(!gathered.settled(), "a.jpg was opened again after its close");
        assert_eq!(gathered.paths.len(), 2);
    }

    #[test]
    fn keeps_only_topmost_paths() {
        let set: BTreeSet<PathBuf> =
            ["/r/a", "/r/a/b.jpg", "/r/ab.jpg", "/r/c/d.png"].iter().map(PathBuf::from).collect();
        assert_eq!(topmost(set), vec![PathBuf::from("/r/a"), PathBuf::from("/r/ab.jpg"), PathBuf::from("/r/c/d.png")]);
    }
}

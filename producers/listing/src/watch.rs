//! `--watch`: filesystem notifications become targeted syncs. Events are gathered
//! for `debounce`, reduced to the topmost changed paths, and each is synced (a file
//! → one upsert or delete; a folder → its subtree). If the OS reports lost events,
//! the whole directory is synced again.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode};
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
    Paths(Vec<PathBuf>),
    Rescan,
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
            Ok(e) => Change::Paths(e.paths),
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
        let mut rescan = false;
        let mut paths = BTreeSet::new();
        let mut absorb = |change: Change| match change {
            Change::Rescan => rescan = true,
            Change::Paths(p) => paths.extend(p),
        };
        absorb(first);
        let deadline = tokio::time::Instant::now() + debounce;
        while let Ok(Some(change)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            absorb(change);
        }
        if rescan {
            warn!("the OS dropped filesystem events; syncing the whole folder");
            on_sync(producer.sync_all().await?);
            continue;
        }
        for path in topmost(paths) {
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
    fn keeps_only_topmost_paths() {
        let set: BTreeSet<PathBuf> =
            ["/r/a", "/r/a/b.jpg", "/r/ab.jpg", "/r/c/d.png"].iter().map(PathBuf::from).collect();
        assert_eq!(topmost(set), vec![PathBuf::from("/r/a"), PathBuf::from("/r/ab.jpg"), PathBuf::from("/r/c/d.png")]);
    }
}

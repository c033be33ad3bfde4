//! `--watch`: filesystem notifications become targeted syncs. Each changed path is
//! synced once it is complete (a file → one upsert or delete; a folder → its
//! subtree). If the OS reports lost events, the whole directory is synced again.
//!
//! A path whose last event says it is complete (its writer closed it, it was renamed
//! into place, or removed) is synced [`SETTLED_GAP`] after that event. A file still
//! being written (created or modified, not closed since) is not read until it is
//! closed, or until it has seen no change for `quiet` (`[listing] debounce`): a
//! slow copy is never read half-way. A folder waits while a file in it is written.
//!
//! The folder itself is watched too: renamed away, deleted, or on a drive that is
//! unmounted (its identity, device and inode, changes), its documents are kept, and
//! the watch waits for it to come back, then syncs it whole.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use bucketlens_runtime::produce::{ProduceError, ProduceStats};

use crate::dir::{DirProducer, Root};

/// Why the folder cannot be watched, with the usual fix.
fn cannot_watch(root: &Path, e: notify::Error) -> ProduceError {
    ProduceError::reading(
        format!("cannot watch {}", root.display()),
        format!("{e} (on Linux, raise fs.inotify.max_user_watches for large trees)"),
    )
}

/// What an event says about the paths it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// Closed after writing, renamed, removed, or a new folder: ready to read.
    Done,
    /// Created or written, not closed yet.
    Open,
    /// Says nothing about writing (attributes changed): a file being written stays so.
    Neither,
}

enum Change {
    Paths(Vec<PathBuf>, Writing),
    Rescan,
}

/// Once a changed path is complete, the sync waits only this long for more events.
pub const SETTLED_GAP: Duration = Duration::from_millis(5);

/// How often the folder's own identity is checked (an unmount sends no event).
const ROOT_CHECK: Duration = Duration::from_secs(1);

/// A changed path waiting to be synced.
#[derive(Debug, Clone, Copy)]
struct Pending {
    open: bool,
    last: Instant,
}

/// The changed paths not synced yet.
#[derive(Default)]
struct Gathered {
    rescan: bool,
    paths: BTreeMap<PathBuf, Pending>,
}

impl Gathered {
    fn absorb(&mut self, change: Change, now: Instant) {
        match change {
            Change::Rescan => self.rescan = true,
            Change::Paths(paths, writing) => {
                for path in paths {
                    let pending = self.paths.entry(path).or_insert(Pending { open: false, last: now });
                    pending.last = now;
                    match writing {
                        Writing::Done => pending.open = false,
                        Writing::Open => pending.open = true,
                        Writing::Neither => {}
                    }
                }
            }
        }
    }

    fn due(pending: &Pending, quiet: Duration) -> Instant {
        pending.last + if pending.open { quiet } else { SETTLED_GAP }
    }

    /// When the next path is due, if any is waiting.
    fn next_due(&self, quiet: Duration) -> Option<Instant> {
        self.paths.values().map(|p| Self::due(p, quiet)).min()
    }

    /// Takes the paths due at `now` (a folder only once nothing under it is still
    /// waiting), topmost only.
    fn take_due(&mut self, now: Instant, quiet: Duration) -> Vec<PathBuf> {
        let waiting: Vec<PathBuf> =
            self.paths.iter().filter(|(_, p)| Self::due(p, quiet) > now).map(|(path, _)| path.clone()).collect();
        let due: Vec<PathBuf> = self
            .paths
            .iter()
            .filter(|(path, p)| Self::due(p, quiet) <= now && !waiting.iter().any(|w| w.starts_with(path)))
            .map(|(path, _)| path.clone())
            .collect();
        for path in &due {
            self.paths.remove(path);
        }
        topmost(due.into_iter().collect())
    }
}

/// How a watch of the folder ended.
enum Ended {
    Shutdown,
    /// The folder is gone or emptied: the reason.
    RootLost(String),
}

/// Follows the directory until `shutdown`; `on_sync` sees each sync's counts. The
/// folder going away pauses the watch until it is back.
pub async fn run(
    producer: Arc<DirProducer>,
    quiet: Duration,
    shutdown: CancellationToken,
    mut on_sync: impl FnMut(ProduceStats) + Send,
) -> Result<(), ProduceError> {
    let root = producer.source().root().to_path_buf();
    loop {
        match follow(&producer, quiet, &shutdown, &mut on_sync).await? {
            Ended::Shutdown => return Ok(()),
            Ended::RootLost(why) => {
                warn!(path = %root.display(), "{why}; watching for it to come back");
            }
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(ROOT_CHECK) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            if producer.root()? == Root::Present {
                bucketlens_runtime::say!("{} is back: syncing it", root.display());
                break;
            }
        }
    }
}

/// The folder's identity: another folder (or a drive mounted on it) is another one.
fn identity(root: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(root).ok().filter(std::fs::Metadata::is_dir).map(|m| (m.dev(), m.ino()))
}

/// Why the folder, once `watched`, cannot be watched on, if so.
fn lost(producer: &DirProducer, watched: Option<(u64, u64)>) -> Result<Option<String>, ProduceError> {
    let root = producer.source().root();
    if identity(root) != watched {
        return Ok(Some(match producer.root()? {
            Root::Missing => crate::dir::GONE.to_string(),
            _ => "the folder was replaced (a drive unmounted from it, or mounted on it): its documents are kept"
                .to_string(),
        }));
    }
    Ok(match producer.root()? {
        Root::Emptied(known) => Some(crate::dir::emptied(known)),
        Root::Missing => Some(crate::dir::GONE.to_string()),
        Root::Present => None,
    })
}

/// Watches the folder as it is now, until shutdown or until it is lost.
async fn follow(
    producer: &Arc<DirProducer>,
    quiet: Duration,
    shutdown: &CancellationToken,
    on_sync: &mut (impl FnMut(ProduceStats) + Send),
) -> Result<Ended, ProduceError> {
    let root = producer.source().root().to_path_buf();
    let watched = identity(&root);
    if let Some(why) = lost(producer, watched)? {
        return Ok(Ended::RootLost(why));
    }
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
                let writing = match e.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Remove(_)
                    | EventKind::Modify(ModifyKind::Name(_))
                    | EventKind::Create(CreateKind::Folder) => Writing::Done,
                    EventKind::Modify(ModifyKind::Metadata(_)) => Writing::Neither,
                    _ => Writing::Open,
                };
                Change::Paths(e.paths, writing)
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

    let mut gathered = Gathered::default();
    let mut check = tokio::time::interval(ROOT_CHECK);
    loop {
        let wake = gathered.next_due(quiet).unwrap_or_else(|| Instant::now() + ROOT_CHECK);
        tokio::select! {
            change = rx.recv() => match change {
                Some(change) => gathered.absorb(change, Instant::now()),
                None => return Ok(Ended::Shutdown),
            },
            () = tokio::time::sleep_until(wake) => {}
            _ = check.tick() => {
                if let Some(why) = lost(producer, watched)? {
                    return Ok(Ended::RootLost(why));
                }
            }
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
        }
        let rescan = std::mem::take(&mut gathered.rescan);
        let due = gathered.take_due(Instant::now(), quiet);
        if !rescan && due.is_empty() {
            continue;
        }
        // The folder's own rename or removal comes as an event of the root: nothing
        // under it is synced (or deleted) once it is not the folder watched.
        if let Some(why) = lost(producer, watched)? {
            return Ok(Ended::RootLost(why));
        }
        if rescan {
            warn!("the OS dropped filesystem events; syncing the whole folder");
            on_sync(producer.sync_all().await?);
            continue;
        }
        for path in due {
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
    fn a_file_is_due_once_closed_or_quiet_and_a_folder_waits_for_the_files_in_it() {
        let quiet = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut gathered = Gathered::default();
        gathered.absorb(Change::Paths(vec!["/r/new".into()], Writing::Done), t0); // mkdir
        gathered.absorb(Change::Paths(vec!["/r/new/a.jpg".into()], Writing::Open), t0); // created
        gathered.absorb(Change::Paths(vec!["/r/b.jpg".into()], Writing::Done), t0); // removed
        let soon = t0 + Duration::from_millis(50);
        assert_eq!(gathered.take_due(soon, quiet), vec![PathBuf::from("/r/b.jpg")], "new/ waits for a.jpg");
        // Written on for a while: still not due, however long it takes.
        let later = t0 + Duration::from_secs(10);
        gathered.absorb(Change::Paths(vec!["/r/new/a.jpg".into()], Writing::Neither), later - Duration::from_secs(1));
        gathered.absorb(Change::Paths(vec!["/r/new/a.jpg".into()], Writing::Open), later - Duration::from_secs(1));
        assert!(gathered.take_due(later, quiet).is_empty());
        gathered.absorb(Change::Paths(vec!["/r/new/a.jpg".into()], Writing::Done), later); // closed
        assert_eq!(gathered.take_due(later + SETTLED_GAP, quiet), vec![PathBuf::from("/r/new")]);
        assert!(gathered.paths.is_empty());
        // Never closed (a hard link): read once quiet.
        gathered.absorb(Change::Paths(vec!["/r/c.jpg".into()], Writing::Open), later);
        assert!(gathered.take_due(later + Duration::from_secs(1), quiet).is_empty());
        assert_eq!(gathered.take_due(later + quiet, quiet), vec![PathBuf::from("/r/c.jpg")]);
    }

    #[test]
    fn keeps_only_topmost_paths() {
        let set: BTreeSet<PathBuf> =
            ["/r/a", "/r/a/b.jpg", "/r/ab.jpg", "/r/c/d.png"].iter().map(PathBuf::from).collect();
        assert_eq!(topmost(set), vec![PathBuf::from("/r/a"), PathBuf::from("/r/ab.jpg"), PathBuf::from("/r/c/d.png")]);
    }
}

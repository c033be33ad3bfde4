//! Syncing a local directory (or part of it) into `objects.changed.v1`.

use std::fs::Metadata;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bucketlens_runtime::bucket::{etag_of, LocalDir};
use bucketlens_runtime::log::{OutRecord, Output};
use bucketlens_runtime::now_ms;
use bucketlens_runtime::produce::{ProduceError, ProduceStats};
use bucketlens_runtime::sqlite::StoreError;
use bucketlens_schemas::{topics, ChangeKind, ChangeSource, ImageFormat, ObjectChanged};
use tracing::{debug, warn};

use crate::config::Skip;
use crate::state::{Keys, Scope, State};
use crate::{encode, produce_deletes, Config};

/// What the folder being synced looks like from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// There, with something in it (or empty, with nothing indexed from it).
    Present,
    /// Not there (renamed, deleted, on a drive not mounted), or not a folder.
    Missing,
    /// There but empty, though this many images were indexed from it: an unmounted
    /// drive's mount point looks like this.
    Emptied(u64),
}

/// Produces the changes of one local directory.
pub struct DirProducer {
    source: LocalDir,
    output: Output,
    state: State,
    config: Config,
    skip: Skip,
    /// Paths never visited (the data dir, when it sits inside the folder).
    exclude: Vec<PathBuf>,
    /// Whether a sync of the whole folder may find it empty and delete every
    /// document that came from it.
    allow_empty: bool,
    generation: AtomicI64,
    last_sequencer: AtomicU64,
}

impl DirProducer {
    pub fn new(
        source: LocalDir,
        output: Output,
        state: State,
        config: Config,
        exclude: Vec<PathBuf>,
    ) -> Result<Self, StoreError> {
        let generation = AtomicI64::new(state.last_generation()?);
        state.remember_root(source.bucket(), source.root())?;
        let exclude = exclude.into_iter().map(|p| p.canonicalize().unwrap_or(p)).collect();
        let skip = config.skip();
        Ok(Self {
            source,
            output,
            state,
            config,
            skip,
            exclude,
            allow_empty: false,
            generation,
            last_sequencer: AtomicU64::new(0),
        })
    }

    /// Lets a sync of the whole folder find it empty and delete what came from it
    /// (otherwise it stops with an error that says so, and keeps the documents).
    #[must_use]
    pub fn allowing_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// Whether the folder is there, and not emptied.
    pub fn root(&self) -> Result<Root, StoreError> {
        let root = self.source.root();
        let Ok(mut entries) = std::fs::read_dir(root) else { return Ok(Root::Missing) };
        if entries.next().is_some() || self.allow_empty {
            return Ok(Root::Present);
        }
        match self.state.known(self.source.bucket())? {
            0 => Ok(Root::Present),
            known => Ok(Root::Emptied(known)),
        }
    }

    pub fn source(&self) -> &LocalDir {
        &self.source
    }

    /// Syncs the whole directory.
    pub async fn sync_all(self: &Arc<Self>) -> Result<ProduceStats, ProduceError> {
        self.run_sync(None, false).await
    }

    /// Syncs the whole directory, producing an upsert for every image, changed or
    /// not (`index --force`, or a labeler with other settings: the labeler decides).
    pub async fn sync_every(self: &Arc<Self>) -> Result<ProduceStats, ProduceError> {
        self.run_sync(None, true).await
    }

    /// Syncs `path` (a file or folder under the root; it may no longer exist), or
    /// everything when `None`. Runs on the blocking pool.
    pub async fn sync(self: &Arc<Self>, path: Option<PathBuf>) -> Result<ProduceStats, ProduceError> {
        self.run_sync(path, false).await
    }

    async fn run_sync(self: &Arc<Self>, path: Option<PathBuf>, every: bool) -> Result<ProduceStats, ProduceError> {
        let this = Arc::clone(self);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || this.sync_blocking(path.as_deref(), every, &handle)).await.map_err(|e| {
            ProduceError::reading(self.source.root().display().to_string(), format!("sync task failed: {e}"))
        })?
    }

    /// Syncs `path` (`None`: the whole folder; the root itself counts as the whole
    /// folder, so that a change of the root, as inotify names it, does not hide the
    /// changes under it).
    fn sync_blocking(
        &self,
        path: Option<&Path>,
        every: bool,
        rt: &tokio::runtime::Handle,
    ) -> Result<ProduceStats, ProduceError> {
        // A folder that is gone, or emptied, is not a folder whose photos were all
        // deleted: nothing is deleted for it.
        let root = self.source.root();
        let path = path.filter(|p| *p != root);
        match self.root()? {
            Root::Missing => return Err(ProduceError::reading(root.display().to_string(), GONE)),
            Root::Emptied(known) if path.is_none() => {
                return Err(ProduceError::reading(root.display().to_string(), emptied(known)))
            }
            Root::Present | Root::Emptied(_) => {}
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let bucket = self.source.bucket().to_string();
        let mut stats = ProduceStats::default();
        let keys = match path {
            Some(p) => match self.source.key_of(p) {
                // Hidden or excluded (an rsync temporary, a NAS thumbnail): passed
                // over, as the whole-folder sync passes it over.
                Some(k) if self.skip.key(&k) => return Ok(stats),
                Some(k) => Keys::Path(k),
                None => {
                    if p.strip_prefix(root).is_ok() && p.to_str().is_none() && p.exists() {
                        warn!(path = %p.to_string_lossy(), "the name is not valid UTF-8, so it cannot be an object key; skipped");
                        stats.invalid_names += 1;
                    }
                    return Ok(stats); // outside the root
                }
            },
            None => Keys::All,
        };
        let start = path.map_or_else(|| root.to_path_buf(), Path::to_path_buf);
        let mut batch = Batch::default();
        let mut stack = vec![start];
        // What could not be read: unknown, not gone. Its known keys are kept.
        let mut unknown: Vec<PathBuf> = Vec::new();
        while let Some(dir_or_file) = stack.pop() {
            let meta = match std::fs::symlink_metadata(&dir_or_file) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warn!(path = %dir_or_file.display(), error = %e, "cannot read; its documents are kept");
                    stats.unreadable += 1;
                    unknown.push(dir_or_file);
                    continue;
                }
            };
            if meta.is_dir() {
                if !self.push_children(&dir_or_file, &mut stack, &mut stats) {
                    unknown.push(dir_or_file);
                }
                continue;
            }
            if meta.file_type().is_symlink() {
                // Never followed (a link in a bucket folder never exposes what it
                // points at; the object source refuses it too), but said: a folder
                // of linked photos would otherwise look empty.
                if let Some(target) = self.skipped_link(&dir_or_file) {
                    warn!(path = %dir_or_file.display(), target = %target, "a symbolic link: not followed, skipped");
                    stats.links += 1;
                }
                continue;
            }
            if !meta.is_file() {
                continue; // sockets, devices, pipes
            }
            let Some(key) = self.source.key_of(&dir_or_file) else {
                if dir_or_file.strip_prefix(self.source.root()).is_ok() && dir_or_file.to_str().is_none() {
                    warn!(path = %dir_or_file.to_string_lossy(), "the name is not valid UTF-8, so it cannot be an object key; skipped");
                    stats.invalid_names += 1;
                }
                continue;
            };
            if !is_image(&dir_or_file, &key) {
                continue;
            }
            stats.images += 1;
            let etag = etag_of(&meta);
            if !every && self.state.etag(&bucket, &key)?.as_deref() == Some(etag.as_str()) {
                batch.seen.push((key, etag));
            } else {
                let change = self.change(&key, ChangeKind::Upsert, Some(&meta), Some(etag.clone()));
                batch.push_upsert(key, etag, change)?;
                stats.upserts += 1;
            }
            if batch.len() >= self.config.batch_size {
                self.flush(&mut batch, generation, rt)?;
            }
        }
        self.flush(&mut batch, generation, rt)?;
        for path in &unknown {
            // The root itself (no key) leaves the whole bucket as it was.
            let key = self.source.key_of(path).unwrap_or_default();
            self.state.keep(&bucket, &key, generation)?;
        }
        let scope = Scope { bucket, keys };
        let delete = |key: &str| self.delete(key);
        let deleting = produce_deletes(&self.state, &self.output, &scope, generation, self.config.batch_size, delete);
        stats.deletes = rt.block_on(deleting)?;
        debug!(?stats, "sync done");
        Ok(stats)
    }

    /// What the symbolic link at `path` points at, if it is one a user would miss: to
    /// a folder, or named (or, through it, made) like an image. A dangling one too.
    fn skipped_link(&self, path: &Path) -> Option<String> {
        let target = std::fs::read_link(path).ok()?.display().to_string();
        let image_name = self.source.key_of(path).is_some_and(|key| is_image(path, &key));
        let to_folder = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
        (image_name || to_folder).then_some(target)
    }

    /// Pushes a folder's entries; `false` if it cannot be listed.
    fn push_children(&self, dir: &Path, stack: &mut Vec<PathBuf>, stats: &mut ProduceStats) -> bool {
        if self.exclude.iter().any(|x| x == dir) {
            return true;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                warn!(path = %dir.display(), error = %e, "cannot list folder; its documents are kept");
                stats.unreadable += 1;
                return false;
            }
        };
        for entry in entries.flatten() {
            if self.skip.name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            if !self.skip.keys_empty() && self.source.key_of(&path).is_some_and(|key| self.skip.key(&key)) {
                continue;
            }
            stack.push(path);
        }
        true
    }

    fn change(&self, key: &str, kind: ChangeKind, meta: Option<&Metadata>, etag: Option<String>) -> ObjectChanged {
        let modified_ms = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64);
        ObjectChanged {
            bucket: self.source.bucket().to_string(),
            key: key.to_string(),
            version_id: None,
            kind,
            size: meta.map(|m| m.len() as i64),
            etag,
            last_modified: modified_ms,
            sequencer: Some(self.next_sequencer()),
            source: ChangeSource::Listing,
            observed_at: now_ms(),
            storage_class: None,
            access_tier: None,
        }
    }

    /// A sequencer that grows with every change this producer emits, across runs:
    /// nanoseconds since the epoch, fixed-width hex (compares like S3's).
    fn next_sequencer(&self) -> String {
        let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut last = self.last_sequencer.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self.last_sequencer.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return format!("{next:016X}"),
                Err(actual) => last = actual,
            }
        }
    }

    /// The delete of a key the sync did not see. A file still there was passed over
    /// (excluded, hidden): the delete names the version there, so that the labeler,
    /// which checks every delete against the store, removes it anyway.
    fn delete(&self, key: &str) -> ObjectChanged {
        let there = self.source.path_of(key).ok().and_then(|path| std::fs::symlink_metadata(path).ok());
        match there.filter(Metadata::is_file) {
            Some(meta) => self.change(key, ChangeKind::Delete, None, Some(etag_of(&meta))),
            None => self.change(key, ChangeKind::Delete, None, None),
        }
    }

    /// Produces the batch's upserts, then records them (and the unchanged keys) as seen.
    fn flush(&self, batch: &mut Batch, generation: i64, rt: &tokio::runtime::Handle) -> Result<(), ProduceError> {
        if !batch.records.is_empty() {
            rt.block_on(self.output.send(topics::OBJECTS_CHANGED, std::mem::take(&mut batch.records)))?;
        }
        let bucket = self.source.bucket();
        self.state.mark_seen(bucket, &batch.changed, generation)?;
        self.state.mark_seen(bucket, &batch.seen, generation)?;
        batch.changed.clear();
        batch.seen.clear();
        Ok(())
    }
}

/// Why a sync of a folder that is not there stopped.
pub(crate) const GONE: &str =
    "the folder is not there (renamed, deleted, or on a drive that is not mounted): its documents are kept";

/// Why a sync of a folder found empty stopped.
pub(crate) fn emptied(known: u64) -> String {
    let s = if known == 1 { "" } else { "s" };
    format!(
        "the folder is empty, though {known} image{s} were indexed from it: its documents are kept, in case it \
         is a drive that is not mounted. If its photos were deleted, run `bucketlens index` on it again with \
         --allow-empty"
    )
}

#[derive(Default)]
struct Batch {
    records: Vec<(OutRecord, ObjectChanged)>,
    changed: Vec<(String, String)>,
    seen: Vec<(String, String)>,
}

impl Batch {
    fn push_upsert(&mut self, key: String, etag: String, change: ObjectChanged) -> Result<(), ProduceError> {
        self.records.push(encode(change)?);
        self.changed.push((key, etag));
        Ok(())
    }

    fn len(&self) -> usize {
        self.changed.len() + self.seen.len()
    }
}

/// An image by its extension, or (for other names) by its first bytes. A file named
/// like an image is produced even if its content is broken: the labeler then
/// records why it failed, instead of the file silently never showing up.
fn is_image(path: &Path, key: &str) -> bool {
    if ImageFormat::from_extension(key).is_some() {
        return true;
    }
    let mut head = [0u8; 8];
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let n = file.read(&mut head).unwrap_or(0);
    ImageFormat::sniff(&head[..n]).is_some()
}

#[cfg(test)]
mod tests;

//! A local directory as a bucket: bucket = the directory's name (or the name it was
//! given), keys = paths relative to it with `/` separators.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use tokio::io::AsyncReadExt;

use super::{Chunks, Object, ObjectMeta, ObjectRef, ObjectSource, SourceError};

/// Serves the files under one directory.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
    bucket: String,
}

impl LocalDir {
    /// `root` must exist; the bucket name is its final component.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        let bucket = Self::default_name(&root);
        Ok(Self { root, bucket })
    }

    /// `root` (which must exist) served as the bucket `bucket`.
    pub fn named(root: &Path, bucket: &str) -> std::io::Result<Self> {
        Ok(Self { root: root.canonicalize()?, bucket: bucket.to_string() })
    }

    /// The bucket name a folder gets when none is given: its final component.
    pub fn default_name(root: &Path) -> String {
        root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".to_string())
    }

    fn checked_path(&self, object: &ObjectRef<'_>) -> Result<PathBuf, SourceError> {
        let name = object.to_string();
        if object.bucket != self.bucket {
            return Err(SourceError::WrongBucket {
                object: name,
                bucket: object.bucket.into(),
                serves: self.bucket.clone(),
            });
        }
        self.path_of(object.key).map_err(|reason| SourceError::InvalidKey { object: name, reason })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key of `path` (under the root), with `/` separators.
    pub fn key_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_str()?.to_string()),
                _ => return None,
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some(parts.join("/"))
    }

    /// The path of `key`, refusing keys that would leave the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, String> {
        let mut path = self.root.clone();
        for part in key.split('/') {
            if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
                return Err(format!("the key has an empty, '.' or '..' segment: {key:?}"));
            }
            path.push(part);
        }
        Ok(path)
    }
}

#[async_trait]
impl ObjectSource for LocalDir {
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Object>, SourceError> {
        let name = object.to_string();
        let path = self.checked_path(&object)?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            inside(&root, &path, &name)?;
            read_capped(&path, &name, max_bytes)
        })
        .await
        .map_err(|e| SourceError::Io {
            object: object.to_string(),
            reason: e.to_string(),
            retryable: true,
        })?
    }

    async fn stream(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Chunks>, SourceError> {
        let name = object.to_string();
        let path = self.checked_path(&object)?;
        let root = self.root.clone();
        let check = (path.clone(), name.clone());
        tokio::task::spawn_blocking(move || inside(&root, &check.0, &check.1))
            .await
            .map_err(|e| SourceError::Io { object: name.clone(), reason: e.to_string(), retryable: true })??;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&name, &path, e)),
        };
        let meta = file.metadata().await.map_err(|e| io_error(&name, &path, e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        if meta.len() > max_bytes {
            return Err(SourceError::TooLarge { object: name, size: meta.len(), limit: max_bytes });
        }
        // 64 KiB at a time, never past the cap (the file may grow while it is read);
        // the stream ends after an error.
        let start = Some((file.take(max_bytes + 1), 0u64));
        let chunks = futures_util::stream::unfold(start, move |state| async move {
            let (mut file, read) = state?;
            let mut chunk = vec![0; 64 * 1024];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) if read + n as u64 > max_bytes => {
                    Some((Err(std::io::Error::other("the file grew past the size limit while it was read")), None))
                }
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(chunk), Some((file, read + n as u64))))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(Some(Box::pin(chunks)))
    }

    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError> {
        let path = self.checked_path(&object)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&object.to_string(), &path, e)),
        };
        Ok(Some(meta_of(&meta)))
    }
}

/// What a HEAD of a local file says: its size, etag and modification time.
fn meta_of(meta: &std::fs::Metadata) -> ObjectMeta {
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    ObjectMeta {
        size: Some(meta.len() as i64),
        etag: Some(etag_of(meta)),
        last_modified: modified.map(|d| d.as_millis() as i64),
        version_id: None,
    }
}

/// A local file's etag: size and modification time, in hex. It changes whenever
/// the content is replaced.
pub fn etag_of(meta: &std::fs::Metadata) -> String {
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!("{:x}-{:x}", meta.len(), modified.map_or(0, |d| d.as_nanos()))
}

fn io_error(object: &str, path: &Path, e: std::io::Error) -> SourceError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return SourceError::PermissionDenied {
            object: object.to_string(),
            reason: format!(
                "{}: {e}; make it readable by the user bucketlens runs as, then run `bucketlens relabel --failed` \
                 (a rerun of `index` skips it: the file did not change)",
                path.display()
            ),
        };
    }
    SourceError::Io { object: object.to_string(), reason: format!("{}: {e}", path.display()), retryable: false }
}

/// Refuses a path that leaves the root through a symbolic link (the key's own file
/// or a folder on the way): a link in a bucket folder never exposes what it points at.
fn inside(root: &Path, path: &Path, object: &str) -> Result<(), SourceError> {
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) && real == path => Ok(()),
        Ok(real) => Err(SourceError::InvalidKey {
            object: object.to_string(),
            reason: format!(
                "{} is a symbolic link (to {}); bucketlens reads only files in the folder",
                path.display(),
                real.display()
            ),
        }),
        // Gone (reported as such by the read) or unreadable (named by the read).
        Err(_) => Ok(()),
    }
}

/// Reads the file whole (at most `max_bytes`), with what its open handle said of it
/// before the read: a file replaced meanwhile is another inode, not mixed metadata.
fn read_capped(path: &Path, object: &str, max_bytes: u64) -> Result<Option<Object>, SourceError> {
    let io = |e: std::io::Error| io_error(object, path, e);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.len() > max_bytes {
        return Err(SourceError::TooLarge { object: object.to_string(), size: meta.len(), limit: max_bytes });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between stat and read: never read past the cap.
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(SourceError::TooLarge { object: object.to_string(), size: bytes.len() as u64, limit: max_bytes });
    }
    Ok(Some(Object { bytes, meta: meta_of(&meta) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_files_by_key_and_reports_gone_ones_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("a b")).unwrap();
        std::fs::write(root.join("a b/c%2F.jpg"), b"xyz").unwrap();
        let src = LocalDir::new(&root).unwrap();
        assert_eq!(src.bucket(), "photos");
        let obj = |key| ObjectRef { bucket: "photos", key, version_id: None };
        let read = src.get(obj("a b/c%2F.jpg"), 10).await.unwrap().unwrap();
        assert_eq!(read.bytes, b"xyz");
        assert_eq!(Some(read.meta), src.head(obj("a b/c%2F.jpg")).await.unwrap(), "the read says what a HEAD says");
        assert_eq!(src.get(obj("missing.jpg"), 10).await.unwrap(), None);
        let err = src.get(obj("a b/c%2F.jpg"), 2).await.unwrap_err();
        assert!(err.to_string().contains("photos/a b/c%2F.jpg is 3 bytes, above the limit of 2"), "{err}");
    }

    #[tokio::test]
    async fn refuses_keys_that_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(&root).unwrap();
        let src = LocalDir::new(&root).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link.jpg")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        for key in ["../secret", "a/../../secret", "/etc/passwd", "a//b", "link.jpg", "up/secret"] {
            let err = src.get(ObjectRef { bucket: "photos", key, version_id: None }, 10).await.unwrap_err();
            assert!(matches!(err, SourceError::InvalidKey { .. }), "{key}: {err}");
        }
    }
}

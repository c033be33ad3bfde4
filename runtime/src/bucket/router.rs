//! One object source for every bucket: each bucket mapped to a folder is read from
//! that folder, any other from S3.
//!
//! Folders come from two places: the configuration (`[buckets]`), and a `discover`
//! function the wiring passes in (the folders that listings recorded in the data
//! dir), so a labeler started before the first listing still finds the folder once
//! it is listed. Finding out costs IO (a SQLite read, canonicalized paths), so it is
//! never done per record:
//! - a bucket already known to be a folder is a map lookup;
//! - a bucket seen for the first time makes one reload, on the blocking pool, shared
//!   by every record waiting on it;
//! - a bucket a reload found not to be a folder is read from S3, and looked for again
//!   at most once per `reload_every`.
//!
//! The S3 client is made on first use: loading the AWS configuration may probe the
//! network, which a folder-only run never needs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Chunks, LocalDir, Object, ObjectMeta, ObjectRef, ObjectSource, S3Bucket, SourceError};
use crate::aws::S3Config;

/// Finds the folders recorded for buckets: `(bucket, folder)` pairs, or why not.
pub type Discover = Arc<dyn Fn() -> Result<Vec<(String, PathBuf)>, String> + Send + Sync>;

/// How often a bucket read from S3 is looked for again among the folders.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

pub struct BucketRouter {
    configured: BTreeMap<String, PathBuf>,
    discover: Option<Discover>,
    reload_every: Duration,
    known: RwLock<Known>,
    /// One reload at a time; records waiting on it share its result.
    reloading: tokio::sync::Mutex<()>,
    s3_config: S3Config,
    s3: tokio::sync::OnceCell<Arc<dyn ObjectSource>>,
}

#[derive(Default)]
struct Known {
    folders: HashMap<String, Arc<dyn ObjectSource>>,
    /// Buckets the last reload did not find among the folders.
    not_folders: HashSet<String>,
    /// Buckets whose folder cannot be opened, and why.
    broken: HashMap<String, String>,
    reloaded: Option<Instant>,
}

impl BucketRouter {
    /// Opens the configured folders and what `discover` finds (blocking IO: call it
    /// at start-up, or from the blocking pool).
    pub fn new(
        configured: BTreeMap<String, PathBuf>,
        discover: Option<Discover>,
        s3_config: S3Config,
    ) -> Result<Self, SourceError> {
        let router = Self {
            configured,
            discover,
            reload_every: RELOAD_EVERY,
            known: RwLock::new(Known::default()),
            reloading: tokio::sync::Mutex::new(()),
            s3_config,
            s3: tokio::sync::OnceCell::new(),
        };
        let (folders, unopenable) = open_folders(&router.configured, router.discover.as_ref())?;
        if let Some((bucket, reason)) = unopenable.into_iter().next() {
            return Err(broken(&bucket, reason));
        }
        router.set_folders(folders, HashMap::new(), None);
        Ok(router)
    }

    /// Looks for buckets read from S3 among the folders at most this often (the
    /// benchmark's baseline sets zero: every lookup of such a bucket reloads).
    pub fn with_reload_every(mut self, every: Duration) -> Self {
        self.reload_every = every;
        self
    }

    /// The source that serves `bucket`.
    pub async fn source_for(&self, bucket: &str) -> Result<Arc<dyn ObjectSource>, SourceError> {
        match self.lookup(bucket) {
            Lookup::Folder(source) => return Ok(source),
            Lookup::S3 => return Ok(self.s3().await),
            Lookup::Broken(reason) => return Err(broken(bucket, reason)),
            Lookup::Unknown => {}
        }
        let _one_at_a_time = self.reloading.lock().await;
        // Another record's reload may have answered while this one waited.
        match self.lookup(bucket) {
            Lookup::Folder(source) => return Ok(source),
            Lookup::S3 => return Ok(self.s3().await),
            Lookup::Broken(reason) => return Err(broken(bucket, reason)),
            Lookup::Unknown => {}
        }
        let configured = self.configured.clone();
        let discover = self.discover.clone();
        let (opened, unopenable) = tokio::task::spawn_blocking(move || open_folders(&configured, discover.as_ref()))
            .await
            .map_err(|e| io_error(format!("the folder lookup failed: {e}")))??;
        self.set_folders(opened, unopenable, Some(bucket));
        match self.lookup(bucket) {
            Lookup::Folder(source) => Ok(source),
            Lookup::Broken(reason) => Err(broken(bucket, reason)),
            Lookup::S3 | Lookup::Unknown => Ok(self.s3().await),
        }
    }

    fn lookup(&self, bucket: &str) -> Lookup {
        let Ok(known) = self.known.read() else { return Lookup::Unknown };
        if let Some(source) = known.folders.get(bucket) {
            return Lookup::Folder(Arc::clone(source));
        }
        // Until the next reload is due, what the last one found stands.
        if known.reloaded.is_none_or(|at| at.elapsed() >= self.reload_every) {
            return Lookup::Unknown;
        }
        if let Some(reason) = known.broken.get(bucket) {
            return Lookup::Broken(reason.clone());
        }
        if known.not_folders.contains(bucket) {
            return Lookup::S3;
        }
        Lookup::Unknown
    }

    /// Replaces the folders with `opened`; `looked_for`, if not among them, is
    /// remembered as read from S3 until the next reload is due.
    fn set_folders(
        &self,
        opened: Vec<(String, LocalDir)>,
        unopenable: HashMap<String, String>,
        looked_for: Option<&str>,
    ) {
        let Ok(mut known) = self.known.write() else { return };
        known.broken = unopenable;
        known.folders = opened.into_iter().map(|(b, dir)| (b, Arc::new(dir) as Arc<dyn ObjectSource>)).collect();
        if let Some(bucket) = looked_for {
            known.not_folders.insert(bucket.to_string());
        }
        let Known { folders, not_folders, broken, .. } = &mut *known;
        not_folders.retain(|b| !folders.contains_key(b) && !broken.contains_key(b));
        known.reloaded = Some(Instant::now());
    }

    async fn s3(&self) -> Arc<dyn ObjectSource> {
        let source = self.s3.get_or_init(|| async {
            let client = crate::aws::s3_client(&self.s3_config).await;
            Arc::new(S3Bucket::new(client)) as Arc<dyn ObjectSource>
        });
        Arc::clone(source.await)
    }
}

enum Lookup {
    Folder(Arc<dyn ObjectSource>),
    /// A bucket whose folder cannot be opened: the reason.
    Broken(String),
    S3,
    Unknown,
}

/// The folders opened, configured and discovered (configured ones win), and those
/// that cannot be opened with the reason.
type Opened = (Vec<(String, LocalDir)>, HashMap<String, String>);

fn open_folders(configured: &BTreeMap<String, PathBuf>, discover: Option<&Discover>) -> Result<Opened, SourceError> {
    let mut roots: BTreeMap<String, PathBuf> = BTreeMap::new();
    if let Some(discover) = discover {
        roots.extend(discover().map_err(|reason| io_error(format!("cannot read the bucket folders: {reason}")))?);
    }
    roots.extend(configured.iter().map(|(b, p)| (b.clone(), p.clone())));
    let mut opened = Vec::with_capacity(roots.len());
    let mut unopenable = HashMap::new();
    for (bucket, root) in roots {
        match LocalDir::named(&root, &bucket) {
            Ok(dir) => opened.push((bucket, dir)),
            Err(e) => {
                let reason = format!("bucket {bucket} is read from {}, which cannot be opened: {e}", root.display());
                unopenable.insert(bucket, reason);
            }
        }
    }
    Ok((opened, unopenable))
}

/// A bucket whose folder cannot be opened: retrying the object does not help.
fn broken(bucket: &str, reason: String) -> SourceError {
    SourceError::Io { object: format!("{bucket}/"), reason, retryable: false }
}

fn io_error(reason: String) -> SourceError {
    SourceError::Io { object: String::new(), reason, retryable: true }
}

#[async_trait]
impl ObjectSource for BucketRouter {
    async fn get(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Object>, SourceError> {
        self.source_for(object.bucket).await?.get(object, max_bytes).await
    }

    async fn head(&self, object: ObjectRef<'_>) -> Result<Option<ObjectMeta>, SourceError> {
        self.source_for(object.bucket).await?.head(object).await
    }

    async fn stream(&self, object: ObjectRef<'_>, max_bytes: u64) -> Result<Option<Chunks>, SourceError> {
        self.source_for(object.bucket).await?.stream(object, max_bytes).await
    }

    async fn first_bytes(&self, object: ObjectRef<'_>, n: u64) -> Result<Option<Vec<u8>>, SourceError> {
        self.source_for(object.bucket).await?.first_bytes(object, n).await
    }

    async fn readable_now(&self, object: ObjectRef<'_>) -> Result<bool, SourceError> {
        self.source_for(object.bucket).await?.readable_now(object).await
    }

    async fn in_s3(&self, bucket: &str) -> bool {
        match self.source_for(bucket).await {
            Ok(source) => source.in_s3(bucket).await,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// An S3 configuration that never reaches a network.
    fn offline_s3() -> S3Config {
        S3Config {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            force_path_style: Some(true),
        }
    }

    /// A `discover` that returns what `listed` holds now, counting its calls.
    fn discovering(listed: Arc<Mutex<Vec<(String, PathBuf)>>>, calls: Arc<AtomicUsize>) -> Discover {
        Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(listed.lock().map_err(|e| e.to_string())?.clone())
        })
    }

    #[tokio::test]
    async fn a_folder_listed_after_start_is_found_and_s3_buckets_cost_no_reload_per_record() {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        std::fs::write(photos.join("cat.jpg"), b"\xFF\xD8\xFFcat").unwrap();
        let listed = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let router = BucketRouter::new(
            BTreeMap::new(),
            Some(discovering(Arc::clone(&listed), Arc::clone(&calls))),
            offline_s3(),
        )
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Listed after the router started: its first record finds the folder.
        listed.lock().unwrap().push(("photos".into(), photos.clone()));
        let cat = ObjectRef { bucket: "photos", key: "cat.jpg", version_id: None };
        assert_eq!(router.get(cat, 1024).await.unwrap().map(|o| o.bytes).as_deref(), Some(&b"\xFF\xD8\xFFcat"[..]));
        assert!(!router.in_s3("photos").await);
        let after_listing = calls.load(Ordering::SeqCst);

        // A bucket in S3: looked for once, then read from S3 with no reload per record.
        for _ in 0..100 {
            assert!(router.in_s3("archive").await);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            after_listing + 1,
            "one reload for the new bucket, not one per record"
        );
        // The folder is still a map lookup.
        assert!(router.get(cat, 1024).await.unwrap().is_some());
        assert_eq!(calls.load(Ordering::SeqCst), after_listing + 1);
    }

    #[tokio::test]
    async fn a_bucket_read_from_s3_is_looked_for_again_once_the_interval_passed() {
        let calls = Arc::new(AtomicUsize::new(0));
        let listed = Arc::new(Mutex::new(Vec::new()));
        let router = BucketRouter::new(
            BTreeMap::new(),
            Some(discovering(Arc::clone(&listed), Arc::clone(&calls))),
            offline_s3(),
        )
        .unwrap()
        .with_reload_every(Duration::ZERO);
        for _ in 0..3 {
            assert!(router.in_s3("archive").await);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1 + 3, "with no interval, every lookup reloads");
    }

    #[tokio::test]
    async fn a_folder_that_cannot_be_opened_names_the_bucket_and_the_folder() {
        let gone = std::path::Path::new("/nonexistent/bucketlens/photos").to_path_buf();
        let configured = BTreeMap::from([("photos".to_string(), gone)]);
        let Err(e) = BucketRouter::new(configured, None, offline_s3()) else { panic!("opened a missing folder") };
        let message = e.to_string();
        assert!(message.contains("bucket photos is read from /nonexistent/bucketlens/photos"), "{message}");

        // Recorded by a listing after start, and gone since: its records fail naming
        // it; other buckets go on.
        let tmp = tempfile::tempdir().unwrap();
        let listed = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let router =
            BucketRouter::new(BTreeMap::new(), Some(discovering(Arc::clone(&listed), calls)), offline_s3()).unwrap();
        listed.lock().unwrap().push(("vanished".to_string(), tmp.path().join("vanished")));
        let object = ObjectRef { bucket: "other", key: "a.jpg", version_id: None };
        assert!(router.in_s3(object.bucket).await);
        let gone = ObjectRef { bucket: "vanished", key: "a.jpg", version_id: None };
        let e = router.head(gone).await.unwrap_err();
        assert!(e.to_string().contains("bucket vanished is read from"), "{e}");
        assert!(!e.retryable());
    }
}

//! AWS credentials for SigV4 signing, cached.
//!
//! opensearch 2.4 asks its provider for credentials on every request, and
//! aws-config's default chain does not cache (the SDK clients cache in their own
//! runtime): with instance or SSO credentials that would be a call per request. This
//! provider keeps the credentials until five minutes before they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tokio::sync::Mutex;

const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Cached {
    inner: SharedCredentialsProvider,
    current: Mutex<Option<Credentials>>,
}

impl Cached {
    async fn get(&self) -> provider::Result {
        let mut current = self.current.lock().await;
        if let Some(credentials) = current.as_ref() {
            let fresh = credentials.expiry().is_none_or(|at| SystemTime::now() + REFRESH_BEFORE_EXPIRY < at);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let credentials = self.inner.provide_credentials().await?;
        *current = Some(credentials.clone());
        Ok(credentials)
    }
}

#[derive(Debug, Clone)]
struct CachedProvider(Arc<Cached>);

impl ProvideCredentials for CachedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.get())
    }
}

/// The default credential chain behind a cache, and the region (`region`, else
/// aws-config's own resolution).
pub async fn cached_provider(region: Option<&str>) -> Result<(SharedCredentialsProvider, aws_config::Region), String> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let config = loader.load().await;
    let inner = config.credentials_provider().ok_or("no AWS credentials provider is configured")?;
    let region = config.region().cloned().ok_or("no AWS region: set index.opensearch.region or AWS_REGION")?;
    let cached = CachedProvider(Arc::new(Cached { inner, current: Mutex::new(None) }));
    Ok((SharedCredentialsProvider::new(cached), region))
}

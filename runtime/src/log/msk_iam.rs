//! Amazon MSK's IAM access control for the Kafka log.
//!
//! MSK clusters with IAM authentication (port 9098) take SASL/OAUTHBEARER with a
//! token that is a SigV4-presigned request for `kafka-cluster:Connect`, the URL
//! `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-…`
//! (expiring after 900 s, with a `User-Agent` parameter added after signing)
//! encoded as base64url without padding. This is the token AWS's own signer
//! libraries make; the broker checks the signature against IAM.
//!
//! Credentials come from aws-config's default chain (environment, profile, SSO,
//! web identity, ECS or EC2 roles). They are loaded before any client connects and
//! then refreshed in the background ahead of their expiry, so that signing a token,
//! which librdkafka asks for from its own threads, never waits on the network.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use tracing::{debug, warn};

use super::LogError;

/// How long a token is valid (what AWS's signers use).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// After a failed refresh, the next try comes this much later.
const RETRY_AFTER: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("bucketlens/", env!("CARGO_PKG_VERSION"));

/// Signs MSK IAM tokens with the current credentials.
#[derive(Debug)]
pub struct MskIam {
    region: String,
    provider: SharedCredentialsProvider,
    current: RwLock<Current>,
}

#[derive(Debug, Default)]
struct Current {
    credentials: Option<Credentials>,
    /// Why the last refresh failed, for the error a token request then gets.
    error: Option<String>,
}

impl MskIam {
    /// Loads the default credential chain and the region: `region` when given, else
    /// the one in the brokers' names (`b-1.x.kafka.eu-west-1.amazonaws.com`), else
    /// aws-config's (`AWS_REGION`, the profile). Fails when no credentials can be had.
    /// Needs a tokio runtime, which then keeps the credentials fresh.
    pub async fn load(region: Option<&str>, brokers: &str) -> Result<Arc<Self>, LogError> {
        let region = region.map(str::to_string).or_else(|| region_of_brokers(brokers));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let config = loader.load().await;
        let fail = |reason: String| LogError::Open { location: brokers.to_string(), reason };
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
            fail("MSK IAM needs the cluster's region: set log.kafka.msk-iam-region or AWS_REGION".into())
        })?;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| fail("MSK IAM needs AWS credentials, and no credential provider is configured".into()))?;
        Self::start(region, provider).await.map_err(fail)
    }

    /// Gets the first credentials from `provider` and keeps them fresh.
    async fn start(region: String, provider: SharedCredentialsProvider) -> Result<Arc<Self>, String> {
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("MSK IAM: no AWS credentials: {}", aws_error(&e)))?;
        debug!(%region, access_key = credentials.access_key_id(), "MSK IAM credentials loaded");
        let expiry = credentials.expiry();
        let msk = Arc::new(Self {
            region,
            provider,
            current: RwLock::new(Current { credentials: Some(credentials), error: None }),
        });
        if let Some(expiry) = expiry {
            tokio::spawn(refresh(Arc::downgrade(&msk), expiry));
        }
        Ok(msk)
    }

    /// Signs with fixed credentials (tests).
    #[cfg(test)]
    fn with_credentials(region: &str, credentials: Credentials) -> Self {
        Self {
            region: region.to_string(),
            provider: SharedCredentialsProvider::new(credentials.clone()),
            current: RwLock::new(Current { credentials: Some(credentials), error: None }),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// A token signed now, and when it expires (ms since the epoch): after 900 s, or
    /// when the credentials that signed it expire, if sooner (librdkafka asks for
    /// the next one before then).
    pub fn token(&self) -> Result<(String, i64), String> {
        let now = SystemTime::now();
        let current = self.current.read().map_err(|_| "the MSK IAM credentials lock is poisoned".to_string())?;
        let Some(credentials) = current.credentials.as_ref().filter(|c| c.expiry().is_none_or(|at| now < at)) else {
            let why = current.error.as_deref().unwrap_or("they expired");
            return Err(format!("no valid AWS credentials for MSK IAM: {why}"));
        };
        let url = presign(credentials, &self.region, now)?;
        let expires = credentials.expiry().map_or(now + TOKEN_LIFETIME, |at| at.min(now + TOKEN_LIFETIME));
        let expires_ms = expires.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        Ok((encode(&url), expires_ms))
    }
}

/// Keeps `msk`'s credentials fresh until it is dropped.
async fn refresh(msk: Weak<MskIam>, mut expiry: SystemTime) {
    loop {
        let due = expiry.checked_sub(REFRESH_BEFORE_EXPIRY).unwrap_or(expiry);
        // Never more often than RETRY_AFTER, even for credentials that come with
        // less than REFRESH_BEFORE_EXPIRY left.
        let wait = due.duration_since(SystemTime::now()).unwrap_or_default().max(RETRY_AFTER);
        tokio::time::sleep(wait).await;
        let Some(this) = msk.upgrade() else { return };
        let result = this.provider.provide_credentials().await;
        let Ok(mut current) = this.current.write() else { return };
        match result {
            Ok(credentials) => {
                debug!("MSK IAM credentials refreshed");
                let Some(next) = credentials.expiry() else {
                    current.credentials = Some(credentials);
                    current.error = None;
                    return;
                };
                expiry = next;
                current.credentials = Some(credentials);
                current.error = None;
            }
            Err(e) => {
                let why = aws_error(&e);
                warn!(error = %why, "refreshing the MSK IAM credentials failed; trying again");
                current.error = Some(why);
                expiry = SystemTime::now() + REFRESH_BEFORE_EXPIRY + RETRY_AFTER;
            }
        }
    }
}

/// The error and its causes on one line.
fn aws_error(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The presigned `kafka-cluster:Connect` URL, signed at `at`, with the user agent.
pub fn presign(credentials: &Credentials, region: &str, at: SystemTime) -> Result<String, String> {
    let url = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing the MSK IAM token: {e}"))?
        .into();
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("signing the MSK IAM token: {e}"))?;
    let (instructions, _) = sign(request, &params).map_err(|e| format!("signing the MSK IAM token: {e}"))?.into_parts();
    let mut out = url;
    for (name, value) in instructions.params() {
        out.push('&');
        out.push_str(name);
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(value, QUERY_VALUE));
    }
    out.push_str("&User-Agent=");
    out.extend(percent_encoding::utf8_percent_encode(USER_AGENT, QUERY_VALUE));
    Ok(out)
}

/// SigV4's query encoding: everything but unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// base64url without padding, as MSK reads the token.
pub fn encode(url: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
}

/// The region in MSK broker names: `b-1.name.abc123.c2.kafka.eu-west-1.amazonaws.com:9098`
/// (also the serverless `boot-….kafka-serverless.<region>.amazonaws.com`).
fn region_of_brokers(brokers: &str) -> Option<String> {
    brokers.split(',').find_map(|broker| {
        let host = broker.trim().rsplit_once(':').map_or(broker.trim(), |(h, _)| h);
        let rest = host.strip_suffix(".amazonaws.com")?;
        let (before, region) = rest.rsplit_once('.')?;
        (before.ends_with(".kafka") || before.ends_with(".kafka-serverless") || before == "kafka")
            .then(|| region.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(String::from),
            None,
            "t",
        )
    }

    fn query(url: &str) -> Vec<(String, String)> {
        let (_, q) = url.split_once('?').unwrap();
        q.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), percent_encoding::percent_decode_str(v).decode_utf8().unwrap().into_owned())
            })
            .collect()
    }

    #[test]
    fn the_token_is_a_presigned_connect_url_in_base64url() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let url = presign(&credentials(Some("SESSION/TOKEN+=")), "eu-west-1", at).unwrap();
        assert!(url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"), "{url}");
        let q = query(&url);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Action"), Some("kafka-cluster:Connect"));
        assert_eq!(get("X-Amz-Algorithm"), Some("AWS4-HMAC-SHA256"));
        assert_eq!(get("X-Amz-Credential"), Some("AKIDEXAMPLE/20231114/eu-west-1/kafka-cluster/aws4_request"));
        assert_eq!(get("X-Amz-Date"), Some("20231114T221320Z"));
        assert_eq!(get("X-Amz-Expires"), Some("900"));
        assert_eq!(get("X-Amz-SignedHeaders"), Some("host"));
        assert_eq!(get("X-Amz-Security-Token"), Some("SESSION/TOKEN+="));
        assert_eq!(get("X-Amz-Signature").map(str::len), Some(64));
        assert_eq!(q.last().map(|(k, _)| k.as_str()), Some("User-Agent"));
        // Signed at another time, the signature differs.
        let later = presign(&credentials(Some("SESSION/TOKEN+=")), "eu-west-1", at + Duration::from_secs(1)).unwrap();
        let signature_later = query(&later).into_iter().find(|(k, _)| k == "X-Amz-Signature").map(|(_, v)| v);
        assert_ne!(signature_later.as_deref(), get("X-Amz-Signature"));

        let token = encode(&url);
        assert!(!token.contains(['=', '+', '/']), "{token}");
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(decoded, url.as_bytes());
    }

    #[test]
    fn a_token_expires_after_900_seconds_and_needs_unexpired_credentials() {
        let msk = MskIam::with_credentials("us-east-1", credentials(None));
        let (token, expires_ms) = msk.token().unwrap();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((expires_ms - now_ms - 900_000).abs() < 5_000, "{expires_ms} vs {now_ms}");
        assert!(!token.is_empty());

        // Credentials expiring sooner than 900 s bound the token's lifetime.
        let short = Credentials::new("AKID", "secret", None, Some(SystemTime::now() + Duration::from_secs(60)), "t");
        let (_, expires_ms) = MskIam::with_credentials("us-east-1", short).token().unwrap();
        assert!((expires_ms - now_ms - 60_000).abs() < 5_000, "{expires_ms} vs {now_ms}");

        let expired = Credentials::new("AKID", "secret", None, Some(SystemTime::now() - Duration::from_secs(1)), "t");
        let msk = MskIam::with_credentials("us-east-1", expired);
        let err = msk.token().unwrap_err();
        assert!(err.contains("no valid AWS credentials"), "{err}");
    }

    /// Hands out `AKID1`, `AKID2`, … expiring `lasting` from each call, failing on
    /// the calls listed in `fail_on`.
    #[derive(Debug)]
    struct Rotating {
        calls: std::sync::atomic::AtomicUsize,
        lasting: Duration,
        fail_on: Vec<usize>,
    }

    impl ProvideCredentials for Rotating {
        fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let result = if self.fail_on.contains(&n) {
                Err(aws_credential_types::provider::error::CredentialsError::provider_error("the role is gone"))
            } else {
                Ok(Credentials::new(format!("AKID{n}"), "secret", None, Some(SystemTime::now() + self.lasting), "t"))
            };
            aws_credential_types::provider::future::ProvideCredentials::ready(result)
        }
    }

    fn access_key_of(token: &str) -> String {
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
        let credential = query(&url).into_iter().find(|(k, _)| k == "X-Amz-Credential").unwrap().1;
        credential.split('/').next().unwrap().to_string()
    }

    #[tokio::test]
    async fn expiring_credentials_are_refreshed_before_they_expire_and_a_failed_refresh_is_retried() {
        // Each set is due for a refresh at once, but refreshes come RETRY_AFTER
        // apart at the most.
        let lasting = REFRESH_BEFORE_EXPIRY;
        let provider =
            SharedCredentialsProvider::new(Rotating { calls: Default::default(), lasting, fail_on: vec![2] });
        let msk = MskIam::start("eu-west-1".into(), provider).await.unwrap();
        assert_eq!(access_key_of(&msk.token().unwrap().0), "AKID1");
        let error = |msk: &MskIam| msk.current.read().unwrap().error.clone();
        // The second call (RETRY_AFTER later) fails: the first credentials, still
        // valid, stay in use.
        let started = std::time::Instant::now();
        while error(&msk).is_none() {
            assert!(started.elapsed() < RETRY_AFTER * 3, "no refresh was tried");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= RETRY_AFTER - Duration::from_millis(500), "refreshed too soon");
        assert!(error(&msk).unwrap().contains("the role is gone"));
        assert_eq!(access_key_of(&msk.token().unwrap().0), "AKID1");
        // It is tried again RETRY_AFTER later, and succeeds.
        let failed_at = std::time::Instant::now();
        loop {
            let key = access_key_of(&msk.token().unwrap().0);
            if key != "AKID1" {
                assert_eq!(key, "AKID3");
                break;
            }
            assert!(failed_at.elapsed() < RETRY_AFTER * 3, "the failed refresh was not retried");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(failed_at.elapsed() >= RETRY_AFTER - Duration::from_millis(500), "retried too soon");
        assert!(error(&msk).is_none());
    }

    #[test]
    fn the_region_is_read_from_msk_broker_names() {
        let cases = [
            ("b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098", Some("eu-west-1")),
            ("boot-abc.c1.kafka-serverless.us-east-2.amazonaws.com:9098", Some("us-east-2")),
            ("localhost:9092", None),
            ("broker.example.com:9098", None),
            ("s3.us-east-1.amazonaws.com:443", None),
        ];
        for (brokers, region) in cases {
            assert_eq!(region_of_brokers(brokers).as_deref(), region, "{brokers}");
        }
    }
}

//! AWS SDK clients from aws-config's default chain (environment, profiles, SSO,
//! web identity, container and instance credentials), with the `[s3]` settings on
//! top for S3-compatible stores (MinIO, RustFS, garage): a custom endpoint and
//! path-style addressing. Owns no state beyond the clients it builds.

use serde::{Deserialize, Serialize};

/// `[s3]`: how to reach the object store. Every field is optional: with none set,
/// bucketlens talks to Amazon S3 in the region of the AWS configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct S3Config {
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`). Unset: Amazon S3, or
    /// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` when set.
    pub endpoint_url: Option<String>,
    /// The region. Unset: from the AWS configuration (`AWS_REGION`, profile), else
    /// `us-east-1`, which S3-compatible stores accept.
    pub region: Option<String>,
    /// Path-style requests (`http://host/bucket/key`). Unset: on when a custom
    /// endpoint is set (self-hosted stores rarely have per-bucket host names).
    pub force_path_style: Option<bool>,
}

/// The shared AWS configuration: credentials, region and endpoint from the default
/// chain, the region overridden by `region` when given.
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_some() {
        return config;
    }
    tracing::debug!("no AWS region configured; using us-east-1");
    config.into_builder().region(aws_config::Region::from_static("us-east-1")).build()
}

/// An S3 client for `config`.
pub async fn s3_client(config: &S3Config) -> aws_sdk_s3::Client {
    let shared = sdk_config(config.region.as_deref()).await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(url) = &config.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    let custom_endpoint = config.endpoint_url.is_some()
        || shared.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let path_style = config.force_path_style.unwrap_or(custom_endpoint);
    aws_sdk_s3::Client::from_conf(builder.force_path_style(path_style).build())
}

/// What an AWS call's error says, for messages that name the cause
/// (`AccessDenied (HTTP 403): Access Denied`) and for deciding to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// The service's error code (`NoSuchKey`, `AccessDenied`, `SlowDown`).
    pub code: Option<String>,
    pub message: String,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// A timeout, a connection failure, throttling or a 5xx: the same call may work later.
    pub retryable: bool,
}

impl AwsFailure {
    pub fn of<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        match err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().map(str::to_string);
                let message = ctx.err().message().map_or_else(|| ctx.err().to_string(), str::to_string);
                let throttled = matches!(
                    code.as_deref(),
                    Some(
                        "SlowDown"
                            | "Throttling"
                            | "ThrottlingException"
                            | "ProvisionedThroughputExceededException"
                            | "RequestTimeout"
                    )
                );
                Self { code, message, status: Some(status), retryable: status >= 500 || status == 429 || throttled }
            }
            SdkError::ResponseError(ctx) => Self {
                code: None,
                message: format!("unreadable response (HTTP {})", ctx.raw().status().as_u16()),
                status: Some(ctx.raw().status().as_u16()),
                retryable: true,
            },
            SdkError::ConstructionFailure(_) => Self {
                code: None,
                message: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
                status: None,
                retryable: false,
            },
            // Timeouts and dispatch failures (connection refused, DNS, TLS).
            _ => Self {
                code: None,
                message: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
                status: None,
                retryable: true,
            },
        }
    }
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, self.status) {
            (Some(code), Some(status)) => write!(f, "{code} (HTTP {status}): {}", self.message),
            (None, Some(status)) => write!(f, "HTTP {status}: {}", self.message),
            (Some(code), None) => write!(f, "{code}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// Decodes a key as S3 event notifications and inventory reports encode it: form
/// URL encoding, where `+` is a space and `%2B` a plus.
pub fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("key {raw:?} does not decode to UTF-8: {e}"))
}

/// Milliseconds since the epoch of an ISO-8601 UTC time as S3 writes them
/// (`2021-11-12T00:00:00.000Z`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).map_err(|e| e.to_string())?;
    let since = time.duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    Ok(since.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_plus_as_space_and_percent_escapes() {
        assert_eq!(decode_key("a+b%2Bc%2Fd%25e").unwrap(), "a b+c/d%e");
        assert_eq!(decode_key("caf%C3%A9%2C+%22q%22.jpg").unwrap(), "café, \"q\".jpg");
        let long = "k".repeat(1020) + ".jpg";
        assert_eq!(decode_key(&long).unwrap(), long);
        assert!(decode_key("%FF.jpg").is_err());
    }

    #[test]
    fn s3_times_parse_with_and_without_fractions() {
        assert_eq!(parse_time("1970-01-01T00:00:01.500Z"), Ok(1500));
        assert_eq!(parse_time("2021-11-12T00:00:00Z"), Ok(1_636_675_200_000));
        assert!(parse_time("yesterday").is_err());
    }
}

//! A rule's webhook: one POST per match, a JSON body signed with HMAC-SHA256, retried
//! with backoff within a budget. What still fails is the caller's to dead-letter.
//!
//! Headers: `X-Bucketlens-Signature: sha256=<hex HMAC of the body>` (with
//! `[act] webhook-secret`), `X-Bucketlens-Rule`, and `X-Bucketlens-Delivery`: the
//! same for every post of one match (rule, object, version), so a receiver can drop
//! a post it has had (act posts at least once: a crash between a post and its note
//! in the ledger posts again).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::Settings;

/// The JSON body of a post.
#[derive(Debug, Clone, Serialize)]
pub struct Body<'a> {
    pub rule: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    pub labels: &'a [bucketlens_schemas::MatchedLabel],
    /// RFC 3339, UTC, milliseconds.
    pub matched_at: String,
}

/// The hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The id every post of one match carries.
pub fn delivery_id(rule: &str, bucket: &str, key: &str, version: &str) -> String {
    let digest = Sha256::digest([rule, bucket, key, version].join("\0").as_bytes());
    hex(&digest[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Posts for one rule set.
#[derive(Clone)]
pub struct Poster {
    http: reqwest::Client,
    secret: String,
    attempts: u32,
    backoff: Duration,
}

/// Why a post failed for good.
#[derive(Debug, thiserror::Error)]
#[error("webhook {url}: {reason}")]
pub struct PostError {
    pub url: String,
    pub reason: String,
}

impl Poster {
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .user_agent(concat!("bucketlens/", env!("CARGO_PKG_VERSION")))
            // A redirected POST would become a GET elsewhere: a 3xx is an answer
            // (not retried, dead-lettered), and the rule's URL is to be fixed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            secret: settings.webhook_secret.clone(),
            attempts: settings.webhook_attempts,
            backoff: settings.webhook_backoff,
        })
    }

    /// Posts `body` to `url`, retrying a timeout, a refused connection, 408, 429 and
    /// 5xx with backoff; another answer (a 4xx) fails at once. Shutdown stops the
    /// retries: the record is not committed, so it is posted again after a restart.
    pub async fn post(
        &self,
        url: &reqwest::Url,
        body: &Body<'_>,
        delivery: &str,
        shutdown: &CancellationToken,
    ) -> Result<(), PostError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.fail(url, e.to_string()))?;
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .post(url.clone())
                .header("content-type", "application/json")
                .header("x-bucketlens-rule", body.rule)
                .header("x-bucketlens-delivery", delivery)
                .body(bytes.clone());
            if !self.secret.is_empty() {
                request =
                    request.header("x-bucketlens-signature", format!("sha256={}", signature(&self.secret, &bytes)));
            }
            let (retryable, reason) = match request.send().await {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => {
                    let status = answer.status();
                    let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
                    (retry, format!("answered {status}"))
                }
                Err(e) => (true, format!("{e}")),
            };
            if !retryable || attempt >= self.attempts || shutdown.is_cancelled() {
                let tries = if attempt == 1 { "1 attempt".to_string() } else { format!("{attempt} attempts") };
                return Err(self.fail(url, format!("{reason} (after {tries})")));
            }
            tracing::warn!(%url, rule = body.rule, key = body.key, attempt, %reason, "webhook failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
            attempt += 1;
        }
    }

    fn fail(&self, url: &reqwest::Url, reason: String) -> PostError {
        PostError { url: url.to_string(), reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(delivery_id("r", "b", "k", "v"), delivery_id("r", "b", "k", "v"));
        assert_ne!(delivery_id("r", "b", "k", "v1"), delivery_id("r", "b", "k", "v2"));
    }
}

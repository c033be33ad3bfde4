//! Every Kafka client's context: MSK IAM tokens when librdkafka asks for one,
//! librdkafka's log routed to tracing, and a refused sign-in remembered so that the
//! errors after it say why.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use super::super::msk_iam::MskIam;
use super::super::LogError;

/// Every client's context: gives librdkafka MSK IAM tokens when it asks for one.
///
/// Token refreshes are always routed here: librdkafka asks the application only
/// for `sasl.mechanism=OAUTHBEARER` without `sasl.oauthbearer.method=oidc` (its
/// OIDC refresh runs inside librdkafka and never reaches this context).
#[derive(Clone, Default)]
pub(super) struct Auth {
    pub(super) msk: Option<Arc<MskIam>>,
    /// The last time a broker refused to sign a client in, and why.
    pub(super) refused: Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

/// How long a refused sign-in explains the errors that follow it.
const REFUSAL_EXPLAINS: Duration = Duration::from_secs(120);

impl Auth {
    /// `error`, with the reason the brokers refused to sign in when they just did
    /// (librdkafka reports the refusal on its own, and the call then only times out
    /// or finds no broker).
    pub(super) fn explain(&self, error: LogError) -> LogError {
        let refused = self.refused.lock().ok().and_then(|r| r.clone());
        match (error, refused) {
            (LogError::Unavailable { reason }, Some((at, why))) if at.elapsed() < REFUSAL_EXPLAINS => {
                LogError::Unavailable { reason: format!("{reason}; the brokers refused to sign bucketlens in: {why}") }
            }
            (error, _) => error,
        }
    }
}

impl ClientContext for Auth {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// librdkafka's log, less its warning that a consumer property given to the
    /// producer (or the other way round) is ignored: one property map feeds every
    /// client, so that is expected.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let ignored = fac == "CONFWARN" && message.contains("will be ignored by this");
        match level {
            _ if ignored => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}");
            }
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {error}: {reason}");
        if error.rdkafka_error_code() == Some(Code::Authentication) {
            if let Ok(mut refused) = self.refused.lock() {
                *refused = Some((std::time::Instant::now(), reason.to_string()));
            }
        }
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let Some(msk) = &self.msk else {
            return Err(
                "sasl.mechanism=OAUTHBEARER needs sasl.oauthbearer.method=oidc or log.kafka.msk-iam = true".into()
            );
        };
        let (token, lifetime_ms) = msk.token()?;
        debug!(region = msk.region(), "MSK IAM token signed");
        Ok(OAuthToken { token, principal_name: "bucketlens".into(), lifetime_ms })
    }
}

impl ConsumerContext for Auth {}

/// Polls a client nobody else polls (the metadata client), so that librdkafka's
/// token refreshes for it are served.
pub(super) struct TokenPump {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenPump {
    pub(super) fn start(client: Arc<BaseConsumer<Auth>>) -> Result<Self, LogError> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("kafka-tokens".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = client.poll(Duration::from_millis(200));
                    }
                })
                .map_err(|e| LogError::Storage { reason: format!("cannot start the token thread: {e}") })?
        };
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for TokenPump {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

//! Where a producer's records go: the log, or stdout as JSON lines (`--print`,
//! for looking at what an input holds without producing it).

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use super::{Log, LogError, OutRecord};

#[derive(Clone)]
pub enum Output {
    Log(Arc<dyn Log>),
    /// One JSON line per record on stdout.
    Print,
}

impl Output {
    /// Produces the records to `topic` (returning once the log has them), or prints
    /// each one's readable form.
    pub async fn send<T: Serialize>(&self, topic: &str, records: Vec<(OutRecord, T)>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        match self {
            Self::Log(log) => log.produce(topic, records.into_iter().map(|(record, _)| record).collect()).await,
            Self::Print => {
                let stdout_error = |e: std::io::Error| LogError::Storage { reason: format!("writing to stdout: {e}") };
                let mut out = std::io::stdout().lock();
                for (_, readable) in records {
                    let line =
                        serde_json::to_string(&readable).map_err(|e| LogError::Storage { reason: e.to_string() })?;
                    writeln!(out, "{line}").map_err(stdout_error)?;
                }
                out.flush().map_err(stdout_error)
            }
        }
    }
}

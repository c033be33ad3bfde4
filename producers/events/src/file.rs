//! `--from-file F`: notifications saved to a file, one JSON document after another
//! (a pretty-printed body, JSON lines, or both). Each document is produced before the
//! next is read, so a malformed one stops the run after everything before it.

use std::path::Path;

use bucketlens_runtime::log::Output;

use crate::{produce, EventsError, Metrics};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}, line {line}: {reason}")]
    Malformed { path: String, line: usize, reason: String },
    #[error(transparent)]
    Produce(#[from] EventsError),
}

/// Produces every notification in `path`; returns how many documents it held.
pub async fn run(path: &Path, output: &Output, metrics: &Metrics) -> Result<usize, FileError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| FileError::Read { path: name.clone(), reason: e.to_string() })?;
    let mut documents = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let mut count = 0;
    loop {
        let start = documents.byte_offset();
        let value = match documents.next() {
            None => return Ok(count),
            Some(Ok(value)) => value,
            Some(Err(e)) => return Err(FileError::Malformed { path: name, line: e.line(), reason: e.to_string() }),
        };
        let line = text[..start].matches('\n').count() + 1 + leading_newlines(&text[start..]);
        let parsed = crate::notification::parse_value(value).map_err(|e| FileError::Malformed {
            path: name.clone(),
            line,
            reason: e.to_string(),
        })?;
        produce(output, metrics, parsed).await?;
        count += 1;
    }
}

fn leading_newlines(rest: &str) -> usize {
    let skipped = rest.len() - rest.trim_start().len();
    rest[..skipped].matches('\n').count()
}

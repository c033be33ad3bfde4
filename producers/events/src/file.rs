//! `--from-file F`: notifications saved to a file, one JSON document after another
//! (a pretty-printed body, JSON lines, or both). Each document is produced before the
//! next is read, so a malformed one stops the run after everything before it (and is
//! counted as malformed). A document with some unreadable records produces the
//! others and goes to notifications.dlq.v1, naming its line and those records.

use std::path::Path;

use bucketlens_runtime::log::{dead_letter, Output};
use bucketlens_runtime::produce::ProduceError;
use bucketlens_schemas::{error_codes, topics};

use crate::{produce, Metrics};

fn malformed(path: &str, line: usize, reason: impl std::fmt::Display) -> ProduceError {
    ProduceError::reading(format!("{path}, line {line}"), reason)
}

/// Produces every notification in `path`; returns how many documents it held.
pub async fn run(path: &Path, output: &Output, metrics: &Metrics) -> Result<usize, ProduceError> {
    let name = path.display().to_string();
    let text =
        tokio::fs::read_to_string(path).await.map_err(|e| ProduceError::reading(format!("cannot read {name}"), e))?;
    let mut documents = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let mut count = 0;
    loop {
        let start = documents.byte_offset();
        let value = match documents.next() {
            None => return Ok(count),
            Some(Ok(value)) => value,
            Some(Err(e)) => {
                metrics.malformed.add(1);
                return Err(malformed(&name, e.line(), e));
            }
        };
        let line = text[..start].matches('\n').count() + 1 + leading_newlines(&text[start..]);
        let raw = value.to_string();
        let parsed = crate::notification::parse_value(value).map_err(|e| {
            metrics.malformed.add(1);
            malformed(&name, line, e)
        })?;
        let bad = parsed.bad.join("; ");
        produce(output, metrics, parsed).await?;
        if !bad.is_empty() {
            metrics.malformed.add(1);
            let fate = match output {
                Output::Print => "its other records were printed, and the document as the dead letter it would be (without --print it goes to the DLQ)",
                Output::Log(_) => "its other records were produced, this document is on the DLQ",
            };
            bucketlens_runtime::say!("{name}, line {line}: {bad}; {fate}");
            let origin = vec![("source.file".into(), name.clone()), ("source.line".into(), line.to_string())];
            let dlq = dead_letter(format!("file/{line}"), raw.into_bytes(), error_codes::MALFORMED_EVENT, &bad, origin);
            let readable = serde_json::json!({ "malformed": format!("{name}, line {line}"), "reason": bad });
            output.send(topics::NOTIFICATIONS_DLQ, vec![(dlq, readable)]).await?;
        }
        count += 1;
    }
}

fn leading_newlines(rest: &str) -> usize {
    let skipped = rest.len() - rest.trim_start().len();
    rest[..skipped].matches('\n').count()
}

//! Dead-letter records: what failed, kept as it was, with the reason in headers.
//!
//! Every dead-letter record carries `error.code` and `error.message`, then where it
//! came from: `source.topic`, `source.partition`, `source.offset` for a record read
//! from the log, or whatever names the origin of an outside message (an SQS queue and
//! message id). This module only builds records; which topic they go to is the
//! stage's business.

use super::{LogRecord, OutRecord};

/// A dead-letter record for `value` (kept byte for byte) under `key`.
pub fn dead_letter(
    key: impl Into<String>,
    value: Vec<u8>,
    code: &str,
    message: &str,
    origin: Vec<(String, String)>,
) -> OutRecord {
    let mut record = OutRecord::new(key, value);
    record.headers = vec![("error.code".into(), code.to_string()), ("error.message".into(), message.to_string())];
    record.headers.extend(origin);
    record
}

impl LogRecord {
    /// The headers that name this record's place on the log.
    pub fn origin(&self) -> Vec<(String, String)> {
        vec![
            ("source.topic".into(), self.topic.clone()),
            ("source.partition".into(), self.partition.to_string()),
            ("source.offset".into(), self.offset.to_string()),
        ]
    }

    /// This record, as it was, on its way to a dead-letter topic.
    pub fn dead_letter(&self, code: &str, message: &str) -> OutRecord {
        dead_letter(self.key.clone(), self.value.clone(), code, message, self.origin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_keeps_the_value_and_names_the_reason_and_the_origin() {
        let record = LogRecord {
            topic: "images.labeled.v1".into(),
            partition: 2,
            offset: 41,
            key: "photos/cat.jpg".into(),
            value: vec![0xC3, 0x01, 7],
            headers: Vec::new(),
            timestamp_ms: 0,
        };
        let dead = record.dead_letter("UndecodableRecord", "bad magic");
        assert_eq!(dead.key, "photos/cat.jpg");
        assert_eq!(dead.value, vec![0xC3, 0x01, 7]);
        let header = |name: &str| dead.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(header("error.code").as_deref(), Some("UndecodableRecord"));
        assert_eq!(header("error.message").as_deref(), Some("bad magic"));
        assert_eq!(header("source.topic").as_deref(), Some("images.labeled.v1"));
        assert_eq!(header("source.partition").as_deref(), Some("2"));
        assert_eq!(header("source.offset").as_deref(), Some("41"));
    }
}

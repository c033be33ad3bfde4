//! Avro single-object encoding with schema resolution.
//!
//! A payload names its writer schema by fingerprint. The codec knows the current
//! schema and every earlier version of it (kept forever: records written with them
//! may still sit on a log), and resolves the writer's data into the current schema,
//! so a consumer reads records written before a field was added.

// `from_avro_datum`/`to_avro_datum` are deprecated in 0.22 in favour of a builder API
// that is still settling; these two calls are the whole use.
#![allow(deprecated)]

use std::collections::HashMap;

use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{from_avro_datum, from_value, rabin::Rabin, to_avro_datum, Schema};

const MAGIC: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// Why a payload could not be decoded. Never retryable: the bytes will not change.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{record} payload is {len} bytes, shorter than the 10-byte single-object header")]
    TooShort { record: &'static str, len: usize },
    #[error("{record} payload does not start with the Avro single-object marker C3 01 (found {found:02X?})")]
    NotSingleObject { record: &'static str, found: [u8; 2] },
    #[error("{record} payload is in Confluent Schema Registry framing (schema id {id}), and no configured registry names that schema: set log.kafka.schema-registry-url to the registry the producer used")]
    ConfluentFramed { record: &'static str, id: u32 },
    #[error("{record} payload was written with an unknown schema (fingerprint {fingerprint}); upgrade bucketlens or add that schema to schemas/avro/history")]
    UnknownSchema { record: &'static str, fingerprint: String },
    #[error("{record} payload body is corrupt or truncated: {source}")]
    Body { record: &'static str, source: apache_avro::Error },
    #[error("{record} payload is truncated: the body has {have} bytes, the record needs {need}")]
    Truncated { record: &'static str, have: usize, need: usize },
    #[error("{record} payload has {count} unexpected bytes after the record: corrupt")]
    TrailingBytes { record: &'static str, count: usize },
    #[error("{record} payload does not match the record type: {source}")]
    Shape { record: &'static str, source: apache_avro::Error },
}

/// A record that does not fit its schema: a bug in bucketlens, not in the input.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {record}: {source}")]
pub struct EncodeError {
    record: &'static str,
    source: apache_avro::Error,
}

/// Encoder and decoder for one record type.
pub struct Codec {
    record: &'static str,
    current: &'static Schema,
    /// Serializes records straight against the current schema, its names resolved
    /// once (resolving them per record was most of the cost of encoding).
    writer: GenericDatumWriter<'static>,
    header: [u8; HEADER_LEN],
    writers: HashMap<[u8; 8], Schema>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec").field("record", &self.record).field("current", self.current).finish_non_exhaustive()
    }
}

/// The 8-byte CRC-64-AVRO (Rabin) fingerprint that single-object encoding names a
/// schema by: of the schema's Parsing Canonical Form as the Avro specification
/// defines it, so that other Avro libraries (fastavro, Java's SchemaNormalization)
/// find the schema of a record bucketlens wrote.
pub fn fingerprint(schema: &Schema) -> [u8; 8] {
    // The specification's form has no logical types left, so apache-avro's canonical
    // form of it is itself: its Rabin fingerprint is the specification's.
    match Schema::parse_str(&canonical_form(schema)) {
        Ok(plain) => apache_avro_fingerprint(&plain),
        Err(_) => apache_avro_fingerprint(schema),
    }
}

/// The schema's Parsing Canonical Form. apache-avro's own keeps a logical type's
/// primitive as `{"type":"long"}`, where the specification strips `logicalType` and
/// writes the primitive by name, `"long"`; in a canonical form (no spaces, no other
/// attributes) such an object means nothing else.
pub fn canonical_form(schema: &Schema) -> String {
    let mut form = schema.canonical_form();
    for primitive in ["null", "boolean", "int", "long", "float", "double", "bytes", "string"] {
        form = form.replace(&format!("{{\"type\":\"{primitive}\"}}"), &format!("\"{primitive}\""));
    }
    form
}

/// The fingerprint bucketlens wrote before it followed the specification (of
/// apache-avro's canonical form): records on a log may carry it, and are still read.
fn apache_avro_fingerprint(schema: &Schema) -> [u8; 8] {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

impl Codec {
    /// Builds a codec from the current schema and the earlier ones it must still read.
    ///
    /// # Panics
    /// If a shipped schema does not parse: the schemas are compiled in, so this is a
    /// build defect caught by the unit tests, not a runtime condition.
    #[allow(clippy::expect_used)]
    pub fn from_schemas(record: &'static str, current: &str, history: &[&str]) -> Self {
        let current = Schema::parse_str(current).expect("shipped schema parses");
        let mut codec = Self::new(record, current);
        for old in history {
            codec.add_writer_schema(Schema::parse_str(old).expect("shipped schema parses"));
        }
        codec
    }

    /// A codec lives as long as the process (each record type has one, in a static), so
    /// its current schema is leaked once to let the writer borrow it.
    #[allow(clippy::expect_used)]
    fn new(record: &'static str, current: Schema) -> Self {
        let current: &'static Schema = Box::leak(Box::new(current));
        let writer = GenericDatumWriter::builder(current).build().expect("shipped schema resolves");
        let fp = fingerprint(current);
        let mut header = [0u8; HEADER_LEN];
        header[..2].copy_from_slice(&MAGIC);
        header[2..].copy_from_slice(&fp);
        let mut writers = HashMap::new();
        writers.insert(apache_avro_fingerprint(current), current.clone());
        writers.insert(fp, current.clone());
        Self { record, current, writer, header, writers }
    }

    /// Lets this codec read payloads written with `schema` (an earlier version), under
    /// either fingerprint bucketlens has written.
    pub fn add_writer_schema(&mut self, schema: Schema) {
        self.writers.insert(apache_avro_fingerprint(&schema), schema.clone());
        self.writers.insert(fingerprint(&schema), schema);
    }

    /// The schema records are written with.
    pub fn schema(&self) -> &Schema {
        self.current
    }

    /// Encodes `record` as a single object with the current schema.
    pub fn encode<T: serde::Serialize>(&self, record: &T) -> Result<Vec<u8>, EncodeError> {
        let wrap = |source| EncodeError { record: self.record, source };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.header);
        self.writer.write_ser(&mut out, record).map_err(wrap)?;
        Ok(out)
    }

    /// Decodes a single-object payload written with any schema this codec knows.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, payload: &[u8]) -> Result<T, DecodeError> {
        let record = self.record;
        if payload.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { record, len: payload.len() });
        }
        if payload[0] == 0 {
            let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
            return Err(DecodeError::ConfluentFramed { record, id });
        }
        if payload[..2] != MAGIC {
            return Err(DecodeError::NotSingleObject { record, found: [payload[0], payload[1]] });
        }
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&payload[2..HEADER_LEN]);
        let Some(writer) = self.writers.get(&fp) else {
            let fingerprint = fp.iter().map(|b| format!("{b:02x}")).collect();
            return Err(DecodeError::UnknownSchema { record, fingerprint });
        };
        let body = &payload[HEADER_LEN..];
        let mut rest = body;
        let written =
            from_avro_datum(writer, &mut rest, None).map_err(|source| DecodeError::Body { record, source })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { record, count: rest.len() });
        }
        // apache-avro reads end-of-input where a union index should be as `null`, so a
        // payload cut just before a trailing union would decode "successfully" with
        // that field lost. Re-encoding must give back exactly the bytes we were given.
        let reencoded =
            to_avro_datum(writer, written.clone()).map_err(|source| DecodeError::Body { record, source })?;
        if reencoded.len() != body.len() {
            return Err(DecodeError::Truncated { record, have: body.len(), need: reencoded.len() });
        }
        let value = written.resolve(self.current).map_err(|source| DecodeError::Shape { record, source })?;
        from_value(&value).map_err(|source| DecodeError::Shape { record, source })
    }
}

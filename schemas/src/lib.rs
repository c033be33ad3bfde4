//! The records that flow between bucketlens stages, their topics and their codec.
//!
//! The `.avsc` files in `schemas/avro/` are the single source of truth; the structs
//! here mirror them field for field and a test checks that they agree. Records are
//! written with Avro single-object encoding (magic `C3 01`, the 8-byte CRC-64-AVRO
//! fingerprint of the writer schema, then the Avro binary body), so any reader that
//! knows the schema can decode them without a registry.
//!
//! It also names what the records describe: which objects count as images
//! ([`ImageFormat`]) and the failure codes records carry ([`error_codes`]).
//!
//! A record's key is made here ([`record_key`]: `bucket/key`); every stage produces
//! under it unchanged, and the index turns it into the document id ([`document_id`]).
//! A finding of a new analyzer joins `images.labeled.v1` here, as an optional field
//! with a default, so that older records stay readable.
//!
//! This crate owns the wire format and nothing else: no IO, no logging.

mod codec;
pub mod error_codes;
mod identity;
mod image_format;
mod records;
pub mod taken;

pub use codec::{canonical_form, fingerprint, Codec, DecodeError, EncodeError};
pub use identity::{compare_sequencers, document_id, record_key};
pub use image_format::ImageFormat;
pub use records::{
    cosine, BoundingBox, Camera, ChangeKind, ChangeSource, Exposure, Gps, ImageEmbedding, ImageHashes, ImageLabeled,
    ImageMatched, ImageProperties, ImageText, Instance, Label, LabelError, LabelKind, MatchKind, MatchedLabel,
    ModelInfo, ObjectChanged, PhotoMetadata, Place, TextLine, ARCHIVED_ACCESS_TIERS, ARCHIVED_STORAGE_CLASSES,
};
pub use taken::Taken;

/// Topic names. A deployment may put a prefix in front of them (see the runtime config).
pub mod topics {
    /// Every change to a bucket: [`crate::ObjectChanged`].
    pub const OBJECTS_CHANGED: &str = "objects.changed.v1";
    /// Labels derived from those changes: [`crate::ImageLabeled`].
    pub const IMAGES_LABELED: &str = "images.labeled.v1";
    /// Records of `objects.changed.v1` the labeler could not turn into labels, as
    /// they were (so [`crate::ObjectChanged`], or the bytes that failed to decode as
    /// one), with the reason in headers.
    pub const OBJECTS_CHANGED_DLQ: &str = "objects.changed.dlq.v1";
    /// Records of `images.labeled.v1` the index sink could not apply, as they were
    /// ([`crate::ImageLabeled`], or the bytes that failed to decode as one), with the
    /// reason in headers.
    pub const IMAGES_LABELED_DLQ: &str = "images.labeled.dlq.v1";
    /// What `bucketlens act`'s rules began or stopped matching: [`crate::ImageMatched`]
    /// (the default topic of a rule's `topic`; a rule may name another).
    pub const IMAGES_MATCHED: &str = "images.matched.v1";
    /// Messages the events producer received that are not S3 notifications, as they
    /// arrived (the raw body, usually JSON), with the reason in headers.
    pub const NOTIFICATIONS_DLQ: &str = "notifications.dlq.v1";

    /// Every topic bucketlens writes, and whether it is compacted (the state topics
    /// keep the last record of every key; the dead-letter topics keep everything).
    pub const ALL: [(&str, bool); 5] = [
        (OBJECTS_CHANGED, true),
        (IMAGES_LABELED, true),
        (OBJECTS_CHANGED_DLQ, false),
        (IMAGES_LABELED_DLQ, false),
        (NOTIFICATIONS_DLQ, false),
    ];

    /// The dead-letter topics, each beside the input whose failures it keeps.
    pub const DEAD_LETTERS: [&str; 3] = [OBJECTS_CHANGED_DLQ, IMAGES_LABELED_DLQ, NOTIFICATIONS_DLQ];
}

/// The schema of `objects.changed.v1`, as shipped.
pub const OBJECTS_CHANGED_SCHEMA: &str = include_str!("../avro/objects.changed.v1.avsc");
/// Earlier versions of `objects.changed.v1`, still read.
const OBJECTS_CHANGED_HISTORY: [&str; 1] = [include_str!("../avro/history/objects.changed.v1.1.avsc")];
/// The schema of `images.labeled.v1`, as shipped.
pub const IMAGES_LABELED_SCHEMA: &str = include_str!("../avro/images.labeled.v1.avsc");
/// The schema of `images.matched.v1`, as shipped.
pub const IMAGES_MATCHED_SCHEMA: &str = include_str!("../avro/images.matched.v1.avsc");
/// Earlier versions of `images.labeled.v1`, still read (their records may sit on a log).
const IMAGES_LABELED_HISTORY: [&str; 6] = [
    include_str!("../avro/history/images.labeled.v1.1.avsc"),
    include_str!("../avro/history/images.labeled.v1.2.avsc"),
    include_str!("../avro/history/images.labeled.v1.3.avsc"),
    include_str!("../avro/history/images.labeled.v1.4.avsc"),
    include_str!("../avro/history/images.labeled.v1.5.avsc"),
    include_str!("../avro/history/images.labeled.v1.6.avsc"),
];

/// A record type with its Avro schema and codec.
pub trait AvroRecord: serde::Serialize + serde::de::DeserializeOwned {
    /// The codec holding this record's current schema and every earlier one.
    fn codec() -> &'static Codec;

    /// Encodes with Avro single-object encoding.
    fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        Self::codec().encode(self)
    }

    /// Decodes a single-object-encoded payload written with any known schema version.
    fn from_bytes(payload: &[u8]) -> Result<Self, DecodeError> {
        Self::codec().decode(payload)
    }
}

impl AvroRecord for ObjectChanged {
    fn codec() -> &'static Codec {
        static CODEC: std::sync::LazyLock<Codec> = std::sync::LazyLock::new(|| {
            Codec::from_schemas("ObjectChanged", OBJECTS_CHANGED_SCHEMA, &OBJECTS_CHANGED_HISTORY)
        });
        &CODEC
    }
}

impl AvroRecord for ImageLabeled {
    fn codec() -> &'static Codec {
        static CODEC: std::sync::LazyLock<Codec> = std::sync::LazyLock::new(|| {
            Codec::from_schemas("ImageLabeled", IMAGES_LABELED_SCHEMA, &IMAGES_LABELED_HISTORY)
        });
        &CODEC
    }
}

impl AvroRecord for ImageMatched {
    fn codec() -> &'static Codec {
        static CODEC: std::sync::LazyLock<Codec> =
            std::sync::LazyLock::new(|| Codec::from_schemas("ImageMatched", IMAGES_MATCHED_SCHEMA, &[]));
        &CODEC
    }
}

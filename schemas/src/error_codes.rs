//! The `error.code` of a FAILED record and of a dead-letter record's headers.
//!
//! These names are part of the record format: users filter on them
//! (`search --failed`, dashboards, alerts), so a code is never renamed. Which
//! failure gets which code is decided by the stage that fails; this module only
//! names them.

/// The object is empty (0 bytes).
pub const EMPTY_OBJECT: &str = "EmptyObject";
/// The object is larger than `labeler.max-bytes`.
pub const OBJECT_TOO_LARGE: &str = "ObjectTooLarge";
/// The credentials may not read the object.
pub const ACCESS_DENIED: &str = "AccessDenied";
/// The key cannot name an object of this source (a path escaping its folder…).
pub const INVALID_KEY: &str = "InvalidKey";
/// No source serves the object's bucket.
pub const UNKNOWN_BUCKET: &str = "UnknownBucket";
/// The object is archived (Glacier, Deep Archive, Intelligent-Tiering's archive
/// tiers) and not restored, with `[labeler] archived = "fail"`; with `skip`, the
/// default, it is skipped and counted, not failed.
pub const OBJECT_ARCHIVED: &str = "ObjectArchived";
/// Reading the object failed (after retries, when retryable).
pub const READ_FAILED: &str = "ReadFailed";
/// Not an image format the labeler reads.
pub const UNSUPPORTED_FORMAT: &str = "UnsupportedFormat";
/// The image's data cannot be decoded.
pub const CORRUPT_IMAGE: &str = "CorruptImage";
/// The image has more pixels (or bytes) than the labeler accepts.
pub const IMAGE_TOO_LARGE: &str = "ImageTooLarge";
/// The image is smaller than the labeler accepts.
pub const IMAGE_TOO_SMALL: &str = "ImageTooSmall";
/// The model failed on the image.
pub const MODEL_ERROR: &str = "ModelError";
/// A record on the log did not decode with its topic's schema.
pub const UNDECODABLE_RECORD: &str = "UndecodableRecord";
/// The index refused a document for good (a mapping conflict…).
pub const INDEX_REJECTED: &str = "IndexRejected";
/// A message on an event queue that is not an S3 notification.
pub const MALFORMED_EVENT: &str = "MalformedEvent";
/// Rekognition found the image's format invalid.
pub const INVALID_IMAGE_FORMAT: &str = "InvalidImageFormat";
/// Rekognition cannot read the S3 object it was given.
pub const INVALID_S3_OBJECT: &str = "InvalidS3Object";
/// Rekognition refused a parameter of the call.
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// The labeling service throttled the call (after retries).
pub const THROTTLED: &str = "Throttled";
/// The labeling service failed (a 500, after retries).
pub const SERVICE_ERROR: &str = "ServiceError";
/// The labeling service could not be reached (after retries).
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
/// Any other labeler failure.
pub const LABELER_ERROR: &str = "LabelerError";
/// The labeler process died (out of memory, an abort, a crash in a decoder)
/// `labeler.max-crashes` times while labeling this object, the last time alone.
pub const LABELER_CRASHED: &str = "LabelerCrashed";
/// The labeler was shutting down; the record is redone.
pub const SHUTTING_DOWN: &str = "ShuttingDown";
/// A labeling task was cancelled; the record is redone.
pub const CANCELLED: &str = "Cancelled";

/// `bucketlens act` could not deliver a rule's webhook (it refused the post, or
/// was down for the whole retry budget).
pub const WEBHOOK_FAILED: &str = "WebhookFailed";
/// `bucketlens act` could not write or remove a rule's S3 object tags (access
/// denied, the object's 10 tags taken…).
pub const TAGGING_FAILED: &str = "TaggingFailed";

/// Every code above, for reading one back from text (a child labeler's answer).
pub const ALL: [&str; 27] = [
    EMPTY_OBJECT,
    OBJECT_ARCHIVED,
    OBJECT_TOO_LARGE,
    ACCESS_DENIED,
    INVALID_KEY,
    UNKNOWN_BUCKET,
    READ_FAILED,
    UNSUPPORTED_FORMAT,
    CORRUPT_IMAGE,
    IMAGE_TOO_LARGE,
    IMAGE_TOO_SMALL,
    MODEL_ERROR,
    UNDECODABLE_RECORD,
    INDEX_REJECTED,
    MALFORMED_EVENT,
    INVALID_IMAGE_FORMAT,
    INVALID_S3_OBJECT,
    INVALID_PARAMETER,
    THROTTLED,
    SERVICE_ERROR,
    SERVICE_UNAVAILABLE,
    LABELER_ERROR,
    LABELER_CRASHED,
    SHUTTING_DOWN,
    CANCELLED,
    WEBHOOK_FAILED,
    TAGGING_FAILED,
];

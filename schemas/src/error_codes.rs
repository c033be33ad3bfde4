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

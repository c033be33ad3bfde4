//! The index template: every index whose name starts with the configured one gets
//! this mapping (so `bucketlens-images-2026` made for a reindex gets it too).

use serde_json::{json, Value};

pub fn template(index: &str) -> Value {
    let keyword = json!({ "type": "keyword" });
    let millis = json!({ "type": "date", "format": "epoch_millis" });
    json!({
        "index_patterns": [format!("{index}*")],
        "template": {
            "mappings": {
                "dynamic": false,
                "properties": {
                    "bucket": keyword,
                    "key": keyword,
                    "state": keyword,
                    "labels": {
                        "type": "nested",
                        "properties": {
                            "name": keyword,
                            "name_lc": keyword,
                            "confidence": { "type": "float" },
                            "parents": keyword,
                            "aliases": keyword,
                            "categories": keyword,
                            // Bounding boxes are shown, not searched.
                            "instances": { "type": "object", "enabled": false }
                        }
                    },
                    "label": keyword,
                    "parents": keyword,
                    "size": { "type": "long" },
                    "last_modified": millis,
                    "etag": keyword,
                    "version_id": keyword,
                    "sequencer": keyword,
                    "image": { "properties": {
                        "format": keyword, "width": { "type": "integer" }, "height": { "type": "integer" }
                    } },
                    "model": { "properties": { "name": keyword, "version": keyword } },
                    "labeled_at": millis,
                    "error": { "properties": {
                        "code": keyword, "message": { "type": "text" }, "retryable": { "type": "boolean" }
                    } }
                }
            }
        }
    })
}

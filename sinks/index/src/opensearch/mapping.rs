//! The index template of one index: its name as the only pattern, at a priority of
//! its own. OpenSearch refuses a composable template whose patterns overlap another
//! template's at the same priority, so a pattern per index name never collides:
//! `bucketlens-images` and `bucketlens-images-v2` each get their own, and the
//! priority (above 0) keeps them clear of the `<index>*` templates that earlier
//! bucketlens versions made (the template of the same name is replaced).

use serde_json::{json, Value};

/// The priority of bucketlens' templates: above the default 0 of wildcard templates.
pub const PRIORITY: u64 = 100;

pub fn template(index: &str) -> Value {
    let keyword = json!({ "type": "keyword" });
    let millis = json!({ "type": "date", "format": "epoch_millis" });
    let mut template = json!({
        "index_patterns": [index],
        "priority": PRIORITY,
        "template": {
            // The k-NN plugin's switch for the embedding's `knn_vector` (see
            // crate::similar); static, so only an index made with it searches by vector.
            "settings": { "index": { "knn": true } },
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
                            "aliases_lc": keyword,
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
    });
    let properties = template.pointer_mut("/template/mappings/properties").and_then(Value::as_object_mut);
    if let (Some(properties), Value::Object(photo), Value::Object(embedding)) =
        (properties, photo_fields(), crate::similar::opensearch_fields())
    {
        properties.extend(photo);
        properties.extend(embedding);
    }
    template
}

/// The fields of a photo's metadata ([`crate::photo`]): added to an index made by a
/// bucketlens before them, too (adding fields is what a mapping update may do).
pub fn photo_fields() -> Value {
    let keyword = json!({ "type": "keyword" });
    json!({
        // The photo's metadata is shown as stored; these are what queries match.
        "metadata": { "type": "object", "enabled": false },
        "taken": { "type": "date", "format": "epoch_millis" },
        "camera": keyword,
        "lens": keyword,
        "keyword": keyword,
        "country": keyword,
        "city": keyword,
        "place": keyword,
        "facet_year": keyword,
        "facet_camera": keyword,
        "facet_country": keyword,
        "location": { "type": "geo_point" },
        // What `duplicates` groups by, and `similar --image` looks up.
        "hashes": { "properties": { "sha256": keyword, "dhash": { "type": "long" } } },
        "storage_class": keyword,
        // The photo's text is shown as stored; `text:` matches its terms.
        "text": { "type": "object", "enabled": false },
        "text_terms": keyword
    })
}

#!/usr/bin/env python3
"""Writes bucketlens.ndjson, the saved objects the compose file's dashboards-init imports
into OpenSearch Dashboards: an index pattern on bucketlens' index and a dashboard of four
panels. Run it after changing this file; the tests check the result against the index
mapping. Usage: python3 deploy/dashboards/make.py"""
import json
import pathlib

INDEX = "bucketlens-images"


def search_source(query=""):
    return json.dumps({
        "query": {"query": query, "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    })


def terms_table(id_, title, field, query="", size=20):
    vis = {
        "title": title,
        "type": "table",
        "params": {"perPage": size, "showPartialRows": False, "showTotal": True},
        "aggs": [
            {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}},
            {"id": "2", "enabled": True, "type": "terms", "schema": "bucket",
             "params": {"field": field, "size": size, "order": "desc", "orderBy": "1"}},
        ],
    }
    return {
        "id": id_,
        "type": "visualization",
        "attributes": {
            "title": title,
            "visState": json.dumps(vis),
            "uiStateJSON": "{}",
            "description": "",
            "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(query)},
        },
        "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": INDEX}],
    }


objects = [
    {
        "id": INDEX,
        "type": "index-pattern",
        "attributes": {"title": INDEX, "timeFieldName": "labeled_at"},
        "references": [],
    },
    terms_table("bucketlens-documents-per-label", "bucketlens: documents per label", "label", 'state : "labeled"', 30),
    terms_table("bucketlens-failures-by-code", "bucketlens: failures by error code", "error.code", 'state : "failed"'),
    terms_table("bucketlens-images-per-model", "bucketlens: images per model version", "model.version",
                'state : "labeled"'),
    {
        "id": "bucketlens-recent-images",
        "type": "search",
        "attributes": {
            "title": "bucketlens: recent images",
            "columns": ["bucket", "key", "label", "state"],
            "sort": [["labeled_at", "desc"]],
            "description": "",
            "kibanaSavedObjectMeta": {"searchSourceJSON": search_source()},
        },
        "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": INDEX}],
    },
]
panels = [
    ("bucketlens-documents-per-label", "visualization", 0, 0, 24, 20),
    ("bucketlens-recent-images", "search", 24, 0, 24, 20),
    ("bucketlens-failures-by-code", "visualization", 0, 20, 24, 15),
    ("bucketlens-images-per-model", "visualization", 24, 20, 24, 15),
]
objects.append({
    "id": "bucketlens",
    "type": "dashboard",
    "attributes": {
        "title": "bucketlens",
        "description": "What bucketlens labeled: labels, recent images, failures, model versions",
        "panelsJSON": json.dumps([
            {"panelIndex": str(i + 1), "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
             "embeddableConfig": {}, "version": "2.19.1", "panelRefName": f"panel_{i}"}
            for i, (_, _, x, y, w, h) in enumerate(panels)
        ]),
        "optionsJSON": json.dumps({"hidePanelTitles": False, "useMargins": True}),
        "timeRestore": True,
        "timeFrom": "now-30d",
        "timeTo": "now",
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"},
                                                                 "filter": []})},
    },
    "references": [{"name": f"panel_{i}", "type": kind, "id": id_} for i, (id_, kind, *_) in enumerate(panels)],
})

out = pathlib.Path(__file__).with_name("bucketlens.ndjson")
out.write_text("".join(json.dumps(o, sort_keys=True) + "\n" for o in objects))

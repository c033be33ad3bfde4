#!/bin/sh
# dashboards-init: imports deploy/dashboards/ into OpenSearch Dashboards. The import
# API answers 200 with "success": false when objects fail (a missing reference, a
# bad field), so the answer is read, not only the status: any failure exits 1 with it.
set -eu
url=${DASHBOARDS_URL:-http://opensearch-dashboards:5601}
answer=$(curl -fsS -X POST "$url/api/saved_objects/_import?overwrite=true" \
    -H "osd-xsrf: true" --form file=@/dashboards/bucketlens.ndjson)
case "$answer" in
*'"success":true'*)
    echo "dashboards imported: $answer"
    ;;
*)
    echo "the dashboards import failed: $answer" >&2
    exit 1
    ;;
esac

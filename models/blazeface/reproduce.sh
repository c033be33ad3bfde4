#!/usr/bin/env bash
# Rebuild face_detection_full_range.onnx from registry packages and check it byte for
# byte. Needs python3 with venv and npm, with access to their package registries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @mediapipe/face_detection@0.4.1657300184 >/dev/null)
tar -xzf "$work"/mediapipe-face_detection-0.4.1657300184.tgz -C "$work" package/face_detection_full_range.tflite
echo "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3  $work/package/face_detection_full_range.tflite" | sha256sum -c --quiet
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "tflite2onnx==0.4.1" "tflite==2.18.0" "onnx==1.23.2" "numpy==2.4.6" \
  "flatbuffers==25.12.19" "protobuf==7.36.2" "onnxruntime==1.32.0" "ai-edge-litert==2.3.0"
"$work/venv/bin/python" "$here/convert.py" "$work/package/face_detection_full_range.tflite" "$work/face.onnx"
want=$(grep -E "^\| face_detection_full_range.onnx \|" "$here/PROVENANCE.md" | awk -F'|' '{gsub(/ /,"",$3); print $3}')
got=$(sha256sum "$work/face.onnx" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then echo "face_detection_full_range.onnx differs: want $want, got $got" >&2; exit 1; fi
echo "face_detection_full_range.onnx reproduced byte for byte ($got)"
if [ "${1:-}" = "--install" ]; then cp "$work/face.onnx" "$here/face_detection_full_range.onnx"; fi

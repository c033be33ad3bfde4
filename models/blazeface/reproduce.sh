#!/usr/bin/env bash
# Rebuild face_detection_full_range.onnx from registry packages and check it byte for
# byte. Needs python3 with venv and npm, with access to their package registries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../tflite-to-onnx.sh
source "$here/../tflite-to-onnx.sh"
(cd "$work" && npm pack --silent @mediapipe/face_detection@0.4.1657300184 >/dev/null)
tar -xzf "$work"/mediapipe-face_detection-0.4.1657300184.tgz -C "$work" package/face_detection_full_range.tflite
echo "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3  $work/package/face_detection_full_range.tflite" | sha256sum -c --quiet
tflite_to_onnx "$work" "$here" "$work/package/face_detection_full_range.tflite" "$work/face.onnx"
same_bytes "$here" face_detection_full_range.onnx "$work/face.onnx" "${1:-}"

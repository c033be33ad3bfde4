# What the TFLite models' reproduce.sh share (blazeface/, ssd-oidv4/); sourced by them.

# tflite_to_onnx WORK FOLDER TFLITE OUT: a venv in WORK with the converters pinned,
# then FOLDER/convert.py from TFLITE to OUT.
tflite_to_onnx() {
  local work=$1 folder=$2 tflite=$3 out=$4
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q "tflite2onnx==0.4.1" "tflite==2.18.0" "onnx==1.23.2" "numpy==2.4.6" \
    "flatbuffers==25.12.19" "protobuf==7.36.2" "onnxruntime==1.32.0" "ai-edge-litert==2.3.0"
  "$work/venv/bin/python" "$folder/convert.py" "$tflite" "$out"
}

# same_bytes FOLDER NAME FILE [--install]: FILE is NAME byte for byte, by the SHA-256
# in FOLDER/PROVENANCE.md; with --install, FILE is copied over FOLDER/NAME.
same_bytes() {
  local folder=$1 name=$2 file=$3 want got
  want=$(grep -E "^\| $name \|" "$folder/PROVENANCE.md" | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then echo "$name differs: want $want, got $got" >&2; return 1; fi
  echo "$name reproduced byte for byte ($got)"
  if [ "${4:-}" = "--install" ]; then cp "$file" "$folder/$name"; fi
}

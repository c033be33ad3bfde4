"""Converts MediaPipe's BlazeFace full-range detector (TFLite) to ONNX, reproducibly
(input [1,3,192,192]), with `../tflite_to_onnx.py`; then the ONNX graph is run in
onnxruntime beside the TFLite model on the same input and must agree.

    python convert.py IN.tflite OUT.onnx
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tflite_to_onnx  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
tflite_to_onnx.convert(src, out, "bucketlens models/blazeface/convert.py")
tflite_to_onnx.check(
    src,
    out,
    "input",
    (1, 192, 192, 3),
    [("reshaped_regressor_face_4", "regressors"), ("reshaped_classifier_face_4", "scores")],
)

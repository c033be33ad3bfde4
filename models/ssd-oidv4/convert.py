"""Converts MediaPipe's SSD MobileNetV2 object detector (Open Images V4, 23 classes;
TFLite, fp16 weights) to ONNX, reproducibly (input [1,3,300,300]), with
`../tflite_to_onnx.py`: the weights were fp16 to begin with, so they are stored as
fp16 again, each behind a Cast to fp32. Then the ONNX graph is run in onnxruntime
beside the TFLite model on the same input and must agree.

    python convert.py IN.tflite OUT.onnx
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tflite_to_onnx  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
tflite_to_onnx.convert(src, out, "bucketlens models/ssd-oidv4/convert.py", fp16=True)
tflite_to_onnx.check(
    src,
    out,
    "normalized_input_image_tensor",
    (1, 300, 300, 3),
    [("raw_outputs/box_encodings", "box encodings"), ("raw_outputs/class_predictions", "class logits")],
)

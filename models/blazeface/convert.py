"""Converts MediaPipe's BlazeFace full-range detector (TFLite) to ONNX, reproducibly.

tflite2onnx does the conversion (NHWC becomes NCHW: input [1,3,192,192]); it writes
the weights and shapes in an order that changes from run to run, so they are
sorted by name here, which makes the file the same bytes every time. Then the ONNX graph is run
in onnxruntime beside the TFLite model on the same input and must agree.

    python convert.py IN.tflite OUT.onnx
"""

import os
import sys

import numpy as np
import onnx
import tflite2onnx

src, out = sys.argv[1], sys.argv[2]
tflite2onnx.convert(src, out + ".raw")
model = onnx.load(out + ".raw")
for field in (model.graph.initializer, model.graph.value_info):
    items = sorted(field, key=lambda t: t.name)
    del field[:]
    field.extend(items)
model.producer_name, model.producer_version = "bucketlens models/blazeface/convert.py", "1"
onnx.checker.check_model(model)
onnx.save(model, out)
os.remove(out + ".raw")

import onnxruntime  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402  (the TFLite runtime)

x = np.random.default_rng(7).uniform(-1, 1, (1, 192, 192, 3)).astype(np.float32)
tfl = Interpreter(model_path=src)
tfl.allocate_tensors()
tfl.set_tensor(tfl.get_input_details()[0]["index"], x)
tfl.invoke()
outputs = {d["name"]: tfl.get_tensor(d["index"]) for d in tfl.get_output_details()}
ref = [outputs["reshaped_regressor_face_4"], outputs["reshaped_classifier_face_4"]]
got = onnxruntime.InferenceSession(out).run(None, {"input": x.transpose(0, 3, 1, 2)})
for name, a, b in zip(("regressors", "scores"), ref, got):
    diff = float(np.abs(a - b).max())
    print(f"{name}: max |tflite - onnx| = {diff:.2e}")
    assert diff < 1e-3, name

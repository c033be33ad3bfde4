"""Converts MediaPipe's SSD MobileNetV2 object detector (Open Images V4, 23 classes;
TFLite, fp16 weights) to ONNX, reproducibly.

tflite2onnx does the conversion (NHWC becomes NCHW: input [1,3,300,300]), folding
TFLite's fp16 DEQUANTIZE into fp32 weights. The weights were fp16 to begin with, so
they are stored as fp16 again, each behind a Cast to fp32 (which ONNX Runtime and
tract fold when the model loads): half the file, and the same values. tflite2onnx
writes the weights and shapes in an order that changes from run to run, so they are
sorted by name here, which makes the file the same bytes every time. Then the ONNX
graph is run in onnxruntime beside the TFLite model on the same input and must agree.

    python convert.py IN.tflite OUT.onnx
"""

import os
import sys

import numpy as np
import onnx
import tflite2onnx
from onnx import helper, numpy_helper

src, out = sys.argv[1], sys.argv[2]
tflite2onnx.convert(src, out + ".raw")
model = onnx.load(out + ".raw")
graph = model.graph
casts = []
for init in graph.initializer:
    if init.data_type != onnx.TensorProto.FLOAT or len(init.dims) == 0:
        continue
    values = numpy_helper.to_array(init)
    half = values.astype(np.float16)
    if not np.array_equal(half.astype(np.float32), values):
        continue  # not an fp16 value to begin with: keep it as it is
    name = init.name
    init.CopyFrom(numpy_helper.from_array(half, name + "/fp16"))
    casts.append(helper.make_node("Cast", [name + "/fp16"], [name], to=onnx.TensorProto.FLOAT, name=name + "/cast"))
casts.sort(key=lambda n: n.name)
nodes = casts + list(graph.node)
del graph.node[:]
graph.node.extend(nodes)
for field in (graph.initializer, graph.value_info):
    items = sorted(field, key=lambda t: t.name)
    del field[:]
    field.extend(items)
model.producer_name, model.producer_version = "bucketlens models/ssd-oidv4/convert.py", "1"
onnx.checker.check_model(model)
onnx.save(model, out)
os.remove(out + ".raw")
print(f"{len(casts)} weights stored as fp16")

import onnxruntime  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402  (the TFLite runtime)

x = np.random.default_rng(7).uniform(-1, 1, (1, 300, 300, 3)).astype(np.float32)
tfl = Interpreter(model_path=src)
tfl.allocate_tensors()
tfl.set_tensor(tfl.get_input_details()[0]["index"], x)
tfl.invoke()
outputs = {d["name"]: tfl.get_tensor(d["index"]) for d in tfl.get_output_details()}
ref = [outputs["raw_outputs/box_encodings"], outputs["raw_outputs/class_predictions"]]
got = onnxruntime.InferenceSession(out).run(None, {"normalized_input_image_tensor": x.transpose(0, 3, 1, 2)})
for name, a, b in zip(("box encodings", "class logits"), ref, got):
    diff = float(np.abs(a - b).max())
    print(f"{name}: max |tflite - onnx| = {diff:.2e}")
    assert diff < 1e-3, name

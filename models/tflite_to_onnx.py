"""What the TFLite models' conversions share (`blazeface/convert.py`,
`ssd-oidv4/convert.py`): tflite2onnx's conversion made the same bytes every time,
and the ONNX graph checked against the TFLite runtime on one input.

tflite2onnx turns NHWC into NCHW; it writes the weights and shapes in an order that
changes from run to run, so they are sorted by name here. With `fp16`, weights
that are fp16 values to begin with (TFLite's fp16 models, whose DEQUANTIZE it folds
into fp32) are stored as fp16 again, each behind a Cast to fp32 that ONNX Runtime and
tract fold when the model loads: half the file, and the same values.
"""

import os

import numpy as np
import onnx
import tflite2onnx
from onnx import helper, numpy_helper


def convert(src, out, producer, fp16=False):
    """Converts `src` (.tflite) to `out` (.onnx), `producer` named in the file."""
    tflite2onnx.convert(src, out + ".raw")
    model = onnx.load(out + ".raw")
    graph = model.graph
    if fp16:
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
            casts.append(
                helper.make_node("Cast", [name + "/fp16"], [name], to=onnx.TensorProto.FLOAT, name=name + "/cast")
            )
        casts.sort(key=lambda n: n.name)
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)
        print(f"{len(casts)} weights stored as fp16")
    for field in (graph.initializer, graph.value_info):
        items = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(items)
    model.producer_name, model.producer_version = producer, "1"
    onnx.checker.check_model(model)
    onnx.save(model, out)
    os.remove(out + ".raw")


def check(src, out, input_name, nhwc, outputs):
    """Runs `src` in the TFLite runtime and `out` in onnxruntime on one random input
    of shape `nhwc`; each of `outputs` (TFLite name, what it is), in the ONNX
    graph's order, must agree within 1e-3."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter  # the TFLite runtime

    x = np.random.default_rng(7).uniform(-1, 1, nhwc).astype(np.float32)
    tfl = Interpreter(model_path=src)
    tfl.allocate_tensors()
    tfl.set_tensor(tfl.get_input_details()[0]["index"], x)
    tfl.invoke()
    found = {d["name"]: tfl.get_tensor(d["index"]) for d in tfl.get_output_details()}
    got = onnxruntime.InferenceSession(out).run(None, {input_name: x.transpose(0, 3, 1, 2)})
    for (name, what), b in zip(outputs, got):
        diff = float(np.abs(found[name] - b).max())
        print(f"{what}: max |tflite - onnx| = {diff:.2e}")
        assert diff < 1e-3, what

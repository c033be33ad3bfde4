"""Converts MobileNetV3-CenterNet (a TF.js graph model, fp16 weights) to ONNX.

Usage: python convert.py centernet.json centernet.bin out.onnx

The TF.js graph is a GraphDef in JSON without its weights and with attributes the
TF.js converter stripped. This fills in the weights (fp16 -> fp32), restores the
missing attributes from TensorFlow's own op registry (TArgs on the fused
convolutions, index_type on TopKV2, every other default), renames TF.js's
FusedDepthwiseConv2dNative to TensorFlow's _FusedDepthwiseConv2dNative, checks the
graph imports into TensorFlow, and converts it with tf2onnx.

Needs tensorflow-cpu 2.15.1, tf2onnx 1.16.1 and numpy < 2 (see fetch).
"""

import json
import sys

import numpy as np
import tensorflow as tf
import tf2onnx
from google.protobuf import json_format
from tensorflow.core.framework import attr_value_pb2, graph_pb2, types_pb2
from tensorflow.python.framework import op_def_registry

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def weights(manifest, blob):
    out, offset = {}, 0
    for w in manifest["weights"]:
        shape = [int(d) for d in w["shape"]]
        count = int(np.prod(shape)) if shape else 1
        quant = w.get("quantization")
        if quant:
            stored = np.dtype(quant["dtype"])
            data = np.frombuffer(blob, dtype=stored, count=count, offset=offset).astype(DTYPES[w["dtype"]])
            offset += count * stored.itemsize
        else:
            dtype = np.dtype(DTYPES[w["dtype"]])
            data = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
            offset += count * dtype.itemsize
        out[w["name"]] = data.reshape(shape)
    if offset != len(blob):
        raise SystemExit(f"weights use {offset} bytes of {len(blob)}")
    return out


def main(model_json, model_bin, out_path):
    model = json.load(open(model_json))
    graph = json_format.ParseDict(model["modelTopology"], graph_pb2.GraphDef())
    values = weights(model["weightsManifest"][0], open(model_bin, "rb").read())
    for node in graph.node:
        if node.op == "Const":
            value = values.pop(node.name)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
        if node.op == "FusedDepthwiseConv2dNative":
            node.op = "_FusedDepthwiseConv2dNative"
        if node.op == "_FusedConv2D":
            args = attr_value_pb2.AttrValue()
            args.list.type.extend([node.attr["T"].type] * node.attr["num_args"].i)
            node.attr["TArgs"].CopyFrom(args)
        if node.op == "TopKV2" and "index_type" not in node.attr:
            node.attr["index_type"].type = types_pb2.DT_INT32
        op_def = op_def_registry.get(node.op)
        for attr in op_def.attr:
            if attr.name not in node.attr and attr.HasField("default_value"):
                node.attr[attr.name].CopyFrom(attr.default_value)
        node.device = ""
    if values:
        raise SystemExit(f"weights without a node: {sorted(values)[:5]}")
    with tf.Graph().as_default():
        tf.graph_util.import_graph_def(graph, name="")
    tf2onnx.convert.from_graph_def(
        graph,
        input_names=["tower_0/images:0"],
        output_names=["tower_0/detections:0"],
        opset=13,
        output_path=out_path,
    )
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:4])

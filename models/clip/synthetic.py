"""Synthetic CLIP-class models: pairs of ONNX graphs (image tower, text tower) with
the signature of a real one, for the tests and benchmarks of search by meaning on
machines that cannot fetch real weights. Writes DIR/NAME/image.onnx and
DIR/NAME/text.onnx and prints a catalogue entry pinning them (TOML), so that
`bucketlens models fetch NAME --catalogue ENTRY --from http://.../DIR` installs them.

Kinds:
- `random`: random weights (fixed seed) of the signature: image [N, 3, side, side]
  f32, text [N, context] of token ids, both to [N, dimensions]. Cheap to run;
  proves every code path, not quality.
- `colours`: a pair whose meaning is known. The image tower undoes CLIP's
  normalisation and maps an image to its mean colour's chroma (each channel less
  the mean of the three), in the first three components; the text tower maps the
  tokens of "red", "green" and "blue" (CLIP's byte-pair ids 736, 1901 and 1746) to
  the chroma of pure red, green and blue in the same components. So "red" is
  nearest the reddest image, and a grey one is near nothing.
- `vit-b32`: ViT-B/32's image tower's shape and compute (a 32x32 patch embedding,
  12 pre-norm transformer layers of width 768, 12 heads, MLP 3072, projection to
  512) with random weights, and a text tower of CLIP's (12 layers of width 512 over
  77 tokens): what the benchmark times the embedder with.

Usage: synthetic.py KIND NAME DIR [--text-input int32|int64]
Needs onnx and numpy (scripts/test-servers installs them in a venv of its own).
"""

import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
VOCABULARY = 49408
COLOUR_TOKENS = {"red": 736, "green": 1901, "blue": 1746}
OPSET = 13


class Graph:
    """Nodes and weights of one graph, named in order."""

    def __init__(self, seed):
        self.nodes, self.weights, self.count = [], [], 0
        self.rng = np.random.default_rng(seed)

    def name(self, what):
        self.count += 1
        return f"{what}_{self.count}"

    def weight(self, array, what="w"):
        name = self.name(what)
        self.weights.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def random(self, shape, scale):
        return self.weight((self.rng.standard_normal(shape) * scale).astype(np.float32))

    def op(self, kind, inputs, **attributes):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attributes))
        return out

    def linear(self, x, n_in, n_out):
        return self.op("Add", [self.op("MatMul", [x, self.random((n_in, n_out), n_in**-0.5)]), self.random((n_out,), 0.02)])

    def layer_norm(self, x, width):
        mean = self.op("ReduceMean", [x], axes=[-1])
        centred = self.op("Sub", [x, mean])
        variance = self.op("ReduceMean", [self.op("Mul", [centred, centred])], axes=[-1])
        std = self.op("Sqrt", [self.op("Add", [variance, self.weight(np.float32(1e-5))])])
        normed = self.op("Div", [centred, std])
        return self.op("Add", [self.op("Mul", [normed, self.weight(np.ones(width, np.float32))]), self.weight(np.zeros(width, np.float32))])

    def block(self, x, tokens, width, heads):
        """One pre-norm transformer layer over [1, tokens, width]."""
        head = width // heads
        h = self.layer_norm(x, width)
        split = lambda t: self.op("Transpose", [self.op("Reshape", [t, self.weight(np.array([1, tokens, heads, head], np.int64))])], perm=[0, 2, 1, 3])
        q, k, v = (split(self.linear(h, width, width)) for _ in range(3))
        scores = self.op("Mul", [self.op("MatMul", [q, self.op("Transpose", [k], perm=[0, 1, 3, 2])]), self.weight(np.float32(head**-0.5))])
        attended = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), v])
        merged = self.op("Reshape", [self.op("Transpose", [attended], perm=[0, 2, 1, 3]), self.weight(np.array([1, tokens, width], np.int64))])
        x = self.op("Add", [x, self.linear(merged, width, width)])
        h = self.layer_norm(x, width)
        m = self.linear(h, width, 4 * width)
        # QuickGELU, as OpenAI's CLIP: x * sigmoid(1.702 x).
        m = self.op("Mul", [m, self.op("Sigmoid", [self.op("Mul", [m, self.weight(np.float32(1.702))])])])
        return self.op("Add", [x, self.linear(m, 4 * width, width)])

    def save(self, path, inputs, output, doc):
        graph = helper.make_graph(self.nodes, "bucketlens-synthetic", inputs, [output], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bucketlens models/clip/synthetic.py")
        model.ir_version = 8
        model.doc_string = doc
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, path)


def ids_type(text_input):
    return TensorProto.INT32 if text_input == "int32" else TensorProto.INT64


def io(side, context, dimensions, text_input):
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, side, side])
    text = helper.make_tensor_value_info("text", ids_type(text_input), ["N", context])
    out = lambda: helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dimensions])
    return image, text, out


def random_pair(folder, text_input, dimensions=512, side=224, context=77):
    image_in, text_in, out = io(side, context, dimensions, text_input)
    g = Graph(1)
    pooled = g.op("AveragePool", ["image"], kernel_shape=[32, 32], strides=[32, 32])
    cells = 3 * (side // 32) ** 2
    flat = g.op("Reshape", [pooled, g.weight(np.array([-1, cells], np.int64))])
    g.nodes.append(helper.make_node("MatMul", [flat, g.random((cells, dimensions), 1.0)], ["embedding"]))
    g.save(os.path.join(folder, "image.onnx"), [image_in], out(), "random weights of a CLIP image tower's signature")
    g = Graph(2)
    ids = g.op("Cast", ["text"], to=TensorProto.INT64)
    rows = g.op("Gather", [g.random((VOCABULARY, 64), 1.0), ids])
    mean = g.op("ReduceMean", [rows], axes=[1], keepdims=0)
    g.nodes.append(helper.make_node("MatMul", [mean, g.random((64, dimensions), 1.0)], ["embedding"]))
    g.save(os.path.join(folder, "text.onnx"), [text_in], out(), "random weights of a CLIP text tower's signature")


def colours_pair(folder, text_input, dimensions=512, side=224, context=77):
    image_in, text_in, out = io(side, context, dimensions, text_input)
    place = np.zeros((3, dimensions), np.float32)
    place[0, 0] = place[1, 1] = place[2, 2] = 1.0
    g = Graph(3)
    pixels = g.op("ReduceMean", ["image"], axes=[2, 3], keepdims=0)  # [N, 3], normalised
    rgb = g.op("Add", [g.op("Mul", [pixels, g.weight(np.array(STD, np.float32))]), g.weight(np.array(MEAN, np.float32))])
    centred = g.op("Sub", [rgb, g.op("ReduceMean", [rgb], axes=[1])])
    g.nodes.append(helper.make_node("MatMul", [centred, g.weight(place)], ["embedding"]))
    g.save(os.path.join(folder, "image.onnx"), [image_in], out(), "an image's mean colour's chroma")
    table = np.zeros((VOCABULARY, 3), np.float32)
    for axis, token in enumerate(COLOUR_TOKENS.values()):
        table[token] = -0.5
        table[token, axis] = 1.0
    g = Graph(4)
    rows = g.op("Gather", [g.weight(table), g.op("Cast", ["text"], to=TensorProto.INT64)])
    mean = g.op("ReduceMean", [rows], axes=[1], keepdims=0)
    g.nodes.append(helper.make_node("MatMul", [mean, g.weight(place)], ["embedding"]))
    g.save(os.path.join(folder, "text.onnx"), [text_in], out(), "red, green and blue to their colour axes")


def vit_b32_pair(folder, text_input, dimensions=512, side=224, context=77):
    image_in, text_in, out = io(side, context, dimensions, text_input)
    width, patches = 768, (side // 32) ** 2
    g = Graph(5)
    grid = g.op("Conv", ["image", g.random((width, 3, 32, 32), (3 * 32 * 32) ** -0.5)], strides=[32, 32])
    tokens = g.op("Transpose", [g.op("Reshape", [grid, g.weight(np.array([1, width, patches], np.int64))])], perm=[0, 2, 1])
    x = g.op("Concat", [g.random((1, 1, width), 0.02), tokens], axis=1)
    x = g.layer_norm(g.op("Add", [x, g.random((1, patches + 1, width), 0.02)]), width)
    for _ in range(12):
        x = g.block(x, patches + 1, width, 12)
    first = g.op("Reshape", [g.op("Slice", [x, g.weight(np.array([0], np.int64)), g.weight(np.array([1], np.int64)), g.weight(np.array([1], np.int64))]), g.weight(np.array([1, width], np.int64))])
    g.nodes.append(helper.make_node("MatMul", [g.layer_norm(first, width), g.random((width, dimensions), width**-0.5)], ["embedding"]))
    g.save(os.path.join(folder, "image.onnx"), [image_in], out(), "ViT-B/32's image tower's shape, random weights")
    width = 512
    g = Graph(6)
    x = g.op("Gather", [g.random((VOCABULARY, width), 0.02), g.op("Cast", ["text"], to=TensorProto.INT64)])
    x = g.op("Add", [x, g.random((1, context, width), 0.01)])
    for _ in range(12):
        x = g.block(x, context, width, 8)
    last = g.op("ReduceMean", [g.layer_norm(x, width)], axes=[1], keepdims=0)
    g.nodes.append(helper.make_node("MatMul", [last, g.random((width, dimensions), width**-0.5)], ["embedding"]))
    g.save(os.path.join(folder, "text.onnx"), [text_in], out(), "CLIP's text tower's shape, random weights")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv):
    if len(argv) < 3 or argv[0] not in ("random", "colours", "vit-b32"):
        sys.exit(__doc__)
    kind, name, root = argv[:3]
    text_input = argv[argv.index("--text-input") + 1] if "--text-input" in argv else "int64"
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    {"random": random_pair, "colours": colours_pair, "vit-b32": vit_b32_pair}[kind](folder, text_input)
    mean = ", ".join(str(m) for m in MEAN)
    std = ", ".join(str(s) for s in STD)
    print(f"""[{name}]
description = "synthetic ({kind}) CLIP-class pair, models/clip/synthetic.py"
licence = "the project's own"
source = "models/clip/synthetic.py"
dimensions = 512
side = 224
context = 77
text-input = "{text_input}"
mean = [{mean}]
std = [{std}]
min-similarity = 0.2

[{name}.image]
url = "file-not-published/{name}/image.onnx"
sha256 = "{sha256(os.path.join(folder, 'image.onnx'))}"

[{name}.text]
url = "file-not-published/{name}/text.onnx"
sha256 = "{sha256(os.path.join(folder, 'text.onnx'))}"
""")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The script a user would write instead of bucketlens (issue 16's baseline).

Labels every image under ROOT with the same model.onnx and the same pre-processing
as bucketlens' classifier: Pillow's draft() (its DCT-scaled JPEG decode) to at least
256 on the short side, resize the short side to 256, centre-crop 224, (x - 127) / 128,
onnxruntime with one thread, two processes. Writes one JSON line per image to OUT.

    python reference.py MODEL.onnx LABELS.json ROOT OUT.jsonl
"""

import json
import os
import sys
from multiprocessing import Pool

import numpy as np
import onnxruntime
from PIL import Image

session = None
names = None


def start(model, labels):
    global session, names
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    with open(labels) as f:
        names = [c["name"] for c in json.load(f)["classes"]]


def label(path):
    try:
        image = Image.open(path)
        image.draft("RGB", (256, 256))
        image = image.convert("RGB")
        w, h = image.size
        scale = 256 / min(w, h)
        image = image.resize((max(256, round(w * scale)), max(256, round(h * scale))), Image.BILINEAR)
        w, h = image.size
        left, top = (w - 224) // 2, (h - 224) // 2
        image = image.crop((left, top, left + 224, top + 224))
        x = ((np.asarray(image, np.float32) - 127) / 128).transpose(2, 0, 1)[None]
        logits = session.run(None, {"input": x})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        top5 = np.argsort(-p)[:5]
        return json.dumps({"key": path, "labels": [[names[i], round(float(p[i]) * 100, 2)] for i in top5]})
    except Exception as e:  # a bad image is reported, not fatal
        return json.dumps({"key": path, "error": str(e)})


if __name__ == "__main__":
    model, labels, root, out = sys.argv[1:5]
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    with Pool(2, initializer=start, initargs=(model, labels)) as pool, open(out, "w") as o:
        for line in pool.imap_unordered(label, files, chunksize=4):
            o.write(line + "\n")

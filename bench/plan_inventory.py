"""What `bucketlens plan` costs on a large S3 Inventory report, against the baseline
the issue names: the inventory producer reading the same report,
`bucketlens produce inventory MANIFEST --print > /dev/null`, in the same run.

    python3 bench/plan_inventory.py [ROWS=10000000] [BIN=target/release/bucketlens]

It writes a report in AWS's layout (CSV, gzip, manifest.json with each file's MD5;
Bucket, Key, Size, StorageClass, IntelligentTieringAccessTier) into a temporary
folder: keys under eight prefixes, a mix of photo and other extensions, every storage
class and archive tier, seeded so that every run writes the same report. Then it runs
each command three times, prints the best wall time of each and the ratio, and the
plan's counts (so that the figures can be checked against the rows written).
"""

import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "release", "bucketlens"
)
classes = [
    ("STANDARD", "", 0.55),
    ("STANDARD_IA", "", 0.15),
    ("GLACIER", "", 0.10),
    ("DEEP_ARCHIVE", "", 0.10),
    ("INTELLIGENT_TIERING", "FREQUENT_ACCESS", 0.05),
    ("INTELLIGENT_TIERING", "ARCHIVE_ACCESS", 0.05),
]
prefixes = ["2019", "2020", "2021", "2022", "2023", "2024", "raw", "exports"]
extensions = ["jpg", "jpg", "jpg", "heic", "png", "mov", "xmp"]

with tempfile.TemporaryDirectory() as work:
    random.seed(7)
    data_dir = os.path.join(work, "inventory/photos/daily/data")
    report = os.path.join(work, "inventory/photos/daily/2026-11-24T01-00Z")
    os.makedirs(data_dir)
    os.makedirs(report)
    files, per_file = [], 1_000_000
    started = time.monotonic()
    for part in range(0, rows, per_file):
        lines = []
        for i in range(part, min(rows, part + per_file)):
            r, acc = random.random(), 0.0
            for cls, tier, share in classes:
                acc += share
                if r <= acc:
                    break
            key = f"{random.choice(prefixes)}%2FIMG_{i:08d}.{random.choice(extensions)}"
            lines.append(f'"photos","{key}","{random.randint(200_000, 8_000_000)}","{cls}","{tier}"')
        data = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6)
        key = f"inventory/photos/daily/data/part-{part // per_file}.csv.gz"
        with open(os.path.join(work, key), "wb") as f:
            f.write(data)
        files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
    manifest = {
        "sourceBucket": "photos",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "creationTimestamp": "1732410000000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, StorageClass, IntelligentTieringAccessTier",
        "files": files,
    }
    path = os.path.join(report, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f)
    print(f"report: {rows} rows in {len(files)} files, written in {time.monotonic() - started:.1f} s")

    def best(args, out):
        times = []
        for _ in range(3):
            data = tempfile.mkdtemp(dir=work)
            t = time.monotonic()
            done = subprocess.run([binary, "--data-dir", data, *args], stdout=out, stderr=subprocess.DEVNULL)
            times.append(time.monotonic() - t)
            if done.returncode != 0:
                sys.exit(f"{args}: exit {done.returncode}")
        return min(times)

    produce = best(["produce", "inventory", path, "--print"], subprocess.DEVNULL)
    plan = best(["plan", path, "--rate", "45", "--json"], subprocess.DEVNULL)
    counts = json.loads(
        subprocess.run([binary, "--data-dir", os.path.join(work, "d"), "plan", path, "--rate", "45", "--json"],
                       capture_output=True, check=True).stdout
    )
    print(f"baseline: produce inventory --print > /dev/null  {produce:.2f} s ({rows / produce:,.0f} rows/s)")
    print(f"plan --json                                      {plan:.2f} s ({rows / plan:,.0f} rows/s)")
    print(f"ratio plan / baseline: {plan / produce:.2f}")
    print("plan's counts: " + ", ".join(f"{k} {counts[k]}" for k in ["objects", "images", "to_label", "archived"]))

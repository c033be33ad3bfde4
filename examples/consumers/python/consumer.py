"""A consumer of bucketlens' label log, images.labeled.v1: prints every outcome as it
arrives, and keeps a count of documents per label.

    pip install -r requirements.txt
    python consumer.py --bootstrap localhost:9092 [--group my-consumer] [--until-end]
                       [--schemas ../../../schemas/avro] [--registry URL] [--json]

- Records are keyed `bucket/key`; the topic is compacted, and delivery is at least
  once: the last record of a key is that object's state, and a record seen twice
  changes nothing here, because the state is kept by key.
- Both wire formats bucketlens writes are read: Avro single-object encoding (`C3 01`,
  the writer schema's 8-byte CRC-64-AVRO fingerprint, then the datum), found among the
  schema files of `--schemas` (the current one and `history/`), and Confluent framing
  (`00`, a 4-byte schema id, then the datum), its writer schema fetched once per id
  from `--registry`. Either is resolved into the current schema, so older records
  read with the newer fields at their defaults.
- Offsets are committed after the records they cover are handled, so a consumer
  that dies handles them again (at least once), never loses them.
"""

import argparse
import base64
import io
import json
import os
import struct
import sys
import urllib.parse
import urllib.request

import fastavro
import fastavro.schema
from confluent_kafka import Consumer, KafkaError

TOPIC = "images.labeled.v1"
HERE = os.path.dirname(os.path.abspath(__file__))


def load_schemas(folder):
    """The current schema, and every known writer schema by fingerprint."""
    current = None
    by_fingerprint = {}
    paths = [os.path.join(folder, f"{TOPIC}.avsc")]
    history = os.path.join(folder, "history")
    if os.path.isdir(history):
        paths += [os.path.join(history, n) for n in sorted(os.listdir(history)) if n.startswith(TOPIC)]
    for path in paths:
        with open(path) as f:
            parsed = fastavro.parse_schema(json.load(f))
        canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        by_fingerprint[bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))] = parsed
        current = current or parsed
    return current, by_fingerprint


def registry_request(url):
    """A GET of `url`; credentials written in it (https://KEY:SECRET@host, as
    Confluent Cloud gives an API key and secret) go in a Basic Authorization header."""
    parts = urllib.parse.urlsplit(url)
    if not parts.username:
        return urllib.request.Request(url)
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    secret = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
    return urllib.request.Request(bare, headers={"Authorization": f"Basic {secret}"})


class Decoder:
    def __init__(self, schemas, registry):
        self.reader, self.writers = load_schemas(schemas)
        self.registry = registry.rstrip("/") if registry else None
        self.by_id = {}

    def decode(self, value):
        if value[:2] == b"\xc3\x01":
            writer = self.writers.get(value[2:10])
            if writer is None:
                raise ValueError(f"written with an unknown schema (fingerprint {value[2:10].hex()}): update --schemas")
            body = value[10:]
        elif value[:1] == b"\x00":
            (schema_id,) = struct.unpack(">I", value[1:5])
            writer = self.writer_by_id(schema_id)
            body = value[5:]
        else:
            raise ValueError("neither single-object encoded nor Confluent-framed")
        return fastavro.schemaless_reader(io.BytesIO(body), writer, self.reader)

    def writer_by_id(self, schema_id):
        if schema_id not in self.by_id:
            if not self.registry:
                raise ValueError(f"Confluent-framed (schema id {schema_id}): give --registry")
            with urllib.request.urlopen(registry_request(f"{self.registry}/schemas/ids/{schema_id}")) as answer:
                text = json.load(answer)["schema"]
            self.by_id[schema_id] = fastavro.parse_schema(json.loads(text))
        return self.by_id[schema_id]


def describe(record):
    """One line for an outcome."""
    name = f"{record['bucket']}/{record['key']}"
    if record["kind"] == "labeled":
        labels = " · ".join(f"{label['name']} {label['confidence']:.1f}" for label in record["labels"])
        return f"labeled {name}: {labels}"
    if record["kind"] == "removed":
        return f"removed {name}"
    error = record.get("error") or {}
    return f"failed {name}: {error.get('code')}: {error.get('message')}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", default="example-label-counter")
    parser.add_argument("--schemas", default=os.path.join(HERE, "../../../schemas/avro"))
    parser.add_argument("--registry", help="the schema registry's URL, for Confluent-framed records "
                        "(https://KEY:SECRET@host with credentials)")
    parser.add_argument("--until-end", action="store_true", help="stop once the end of every partition is reached")
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON document at the end")
    args = parser.parse_args()

    decoder = Decoder(args.schemas, args.registry)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.subscribe([TOPIC])
    state = {}  # bucket/key -> that object's labels, while it is labeled
    at_end = set()
    partitions = None
    try:
        while True:
            message = consumer.poll(1.0)
            if partitions is None and consumer.assignment():
                partitions = {p.partition for p in consumer.assignment()}
            if message is None:
                if args.until_end and partitions and at_end >= partitions:
                    break
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                    if args.until_end and partitions and at_end >= partitions:
                        break
                    continue
                raise SystemExit(f"consumer error: {message.error()}")
            at_end.discard(message.partition())
            key = message.key().decode()
            try:
                record = decoder.decode(message.value())
            except Exception as error:  # a record this consumer cannot read: said, and passed
                print(f"{key}: cannot decode: {error}", file=sys.stderr)
                continue
            if not args.json:
                print(describe(record))
            if record["kind"] == "labeled":
                state[key] = [label["name"] for label in record["labels"]]
            else:
                state.pop(key, None)
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    counts = {}
    for labels in state.values():
        for name in labels:
            counts[name] = counts.get(name, 0) + 1
    if args.json:
        print(json.dumps({"documents": len(state), "labels": counts}, sort_keys=True))
    else:
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{n:>8}  {name}")
        print(f"{len(state)} labeled documents")


if __name__ == "__main__":
    main()

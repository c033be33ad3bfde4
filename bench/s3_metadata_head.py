"""What reading a photo's metadata costs when Rekognition reads the photo itself (by
reference): one ranged GET of its first 128 KiB (what bucketlens does) against the
baseline, a GET of the whole object, on the moto S3 server the tests start.

    $MOTO_HOME/bin/python bench/s3_metadata_head.py [SIZE_MB=4] [ROUNDS=50]

(`scripts/test-servers` prints MOTO_HOME.) Prints the time per read, the bytes moved
and the ratio. On real S3 both are one request at the same price; the difference is
the bytes and the transfer time, which grow with the photo.
"""

import subprocess
import sys
import time
import socket
import os

import boto3

size = int(float(sys.argv[1]) * 1024 * 1024) if len(sys.argv) > 1 else 4 * 1024 * 1024
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 50
head = 128 * 1024

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()
server = subprocess.Popen(
    [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
try:
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for _ in range(100):
        try:
            s3.list_buckets()
            break
        except Exception:  # noqa: BLE001 - the server is starting
            time.sleep(0.1)
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="photo.jpg", Body=os.urandom(size))

    def timed(**extra):
        start = time.perf_counter()
        moved = 0
        for _ in range(rounds):
            moved += len(s3.get_object(Bucket="bench", Key="photo.jpg", **extra)["Body"].read())
        return (time.perf_counter() - start) / rounds, moved // rounds

    timed(Range=f"bytes=0-{head - 1}")  # warm up
    whole, whole_bytes = timed()
    ranged, ranged_bytes = timed(Range=f"bytes=0-{head - 1}")
    print(f"object {size / 1048576:.1f} MiB, {rounds} reads each")
    print(f"whole object (baseline): {whole * 1000:.2f} ms, {whole_bytes:,} bytes")
    print(f"first 128 KiB (ranged):  {ranged * 1000:.2f} ms, {ranged_bytes:,} bytes")
    print(f"ratio ranged / whole: time {ranged / whole:.3f}, bytes {ranged_bytes / whole_bytes:.3f}")
finally:
    server.terminate()
    server.wait()

# syntax=docker/dockerfile:1
# One image for every bucketlens role: `docker run bucketlens index|label|sink|serve|produce …`.
# The models are inside the binary, ONNX Runtime's library beside it; the runtime is a slim Debian with CA certificates
# and libheif (HEIC, AVIF),
# running as a non-root user. Build: `docker build -t bucketlens .` (BuildKit).

FROM rust:1.95-slim-bookworm AS builder
# librdkafka, OpenSSL (rdkafka's ssl-vendored), SQLite and libjpeg-turbo are built from
# source by their crates: a C/C++ toolchain, cmake, perl, make and nasm (libjpeg-turbo's
# SIMD code) are all they need. HEIC and AVIF are read through Debian's libheif.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake libheif-dev nasm perl pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and the target folder are build caches: a rebuild after a change to
# bucketlens' own code recompiles only its crates, not the ~500 dependencies.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p bucketlens \
    && install -D -m 0755 -s target/release/bucketlens /out/bucketlens

# ONNX Runtime's library, the labeler's fast engine (scripts/fetch-onnxruntime: PyPI's
# onnxruntime wheel, SHA-256 checked). Linux x86_64 only: elsewhere the folder stays
# empty and the labeler runs on tract, saying so at start-up.
FROM python:3.11-slim-bookworm AS onnxruntime
COPY scripts/fetch-onnxruntime /usr/local/bin/fetch-onnxruntime
RUN mkdir -p /out \
    && lib=$(HOME=/tmp/ort fetch-onnxruntime) && if [ -n "$lib" ]; then cp "$(dirname "$lib")"/* /out/; fi

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libheif1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/bucketlens --create-home bucketlens
COPY --from=builder /out/bucketlens /usr/local/bin/bucketlens
COPY --from=onnxruntime /out/ /usr/local/lib/bucketlens/onnxruntime/
ENV ORT_DYLIB_PATH=/usr/local/lib/bucketlens/onnxruntime/libonnxruntime.so.1.32.0
USER 10001:10001
WORKDIR /var/lib/bucketlens
# The data dir (log, ledger, listing state, index, thumbnails): mount a volume here.
ENV BUCKETLENS_DATA_DIR=/var/lib/bucketlens
# serve, the webhook (`produce events --webhook 0.0.0.0:8080`), /metrics.
EXPOSE 7878 8080 9464
ENTRYPOINT ["bucketlens"]
CMD ["--help"]

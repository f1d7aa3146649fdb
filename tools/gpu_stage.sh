#!/usr/bin/env bash
# gpu_stage.sh - stage what one device call needs into DEST (default: the main
# checkout's .cuda-run, git-ignored there), for tools/gpu_check.sh to run from:
#   bin.tar.xz        this build's GPU tests, benchmarks and pc_write_model
#   scripts           gpu_check.sh, bench_gpu.py, bench_gpu_hf.py
#   llama-src.tar.xz  llama.cpp's sources from .peer/src, without models, docs, tests,
#                     the web UI and the other backends (built there with CUDA)
# Compressed: a call carries 64 MiB at most, the main checkout included.
# Usage: [NO_LLAMA=1] [NO_LIBS=1] [SHARED=DIR] [PEER_SRC=DIR] tools/gpu_stage.sh BUILD_DIR [DEST]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?build dir}
DEST=${2:-/work/main/.cuda-run}
mkdir -p "$DEST"
tmp=$(mktemp -d)
mkdir -p "$tmp/bin"
# BINS: what to carry (default: everything gpu_check.sh runs; a benchmark-only call
# carries "bench_gpu pc_write_model pcache" to leave room for a carried llama-bench)
for b in ${BINS:-test_ops_cuda test_backend_forward test_gpu_tier bench_gpu bench_gpu_ops pc_write_model pcache}; do
    cp "$BUILD/$b" "$tmp/bin/"
done
# pcache's own libraries the GPU image may lack (libxml2 and its ICU, jansson; the store's hiredis,
# xxhash and libcrypto; the server's libmicrohttpd and its GnuTLS chain), and a schema to run
# (NO_LIBS=1: a call that runs no pcache CLI carries none: the tests and bench_gpu need only cuBLAS, which is there)
mkdir -p "$tmp/lib"
[ -n "${NO_LIBS:-}" ] || for l in $(ldd "$BUILD/pcache" | awk '/libxml2|libicu|libjansson|libhiredis|libxxhash|libcrypto|libmicrohttpd|libgnutls|libp11-kit|libidn2|libunistring|libtasn1|libnettle|libhogweed|libgmp|libffi/ {print $3}'); do
    cp "$l" "$tmp/lib/"
done
# AB_FROM="NAME=DIR ...": other builds' bench_gpu (ab.tar.xz, NAME/bench_gpu), for gpu_check.sh ab
# to time beside this one (named "new")
rm -f "$DEST/ab.tar.xz" "$DEST/binA.tar.xz"
if [ -n "${AB_FROM:-}" ]; then
    abt=$(mktemp -d)
    for nd in $AB_FROM; do mkdir -p "$abt/${nd%%=*}" && cp "${nd#*=}/bench_gpu" "$abt/${nd%%=*}/"; done
    tar cJf "$DEST/ab.tar.xz" -C "$abt" .
    rm -rf "$abt"
fi
# the bf16 decode product's versions side by side (bench/gemv_sandbox.cu), where built and BINS names no set
[ -z "${BINS:-}" ] && [ -x "$BUILD/gemv_sandbox" ] && cp "$BUILD/gemv_sandbox" "$tmp/bin/"
# SHARED: the project docs' folder (beside the main checkout; a worktree elsewhere names it)
cp "${SHARED:-$REPO/../shared}/pml-examples/mbti.xml" "$REPO/tests/data/prompts/mbti_intj.xml" "$DEST/"
tar cJf "$DEST/bin.tar.xz" -C "$tmp" bin lib
rm -rf "$tmp" "$DEST/bin"
cp "$REPO/tools/gpu_check.sh" "$REPO/bench/bench_gpu.py" "$REPO/bench/bench_gpu_hf.py" "$DEST/"
# a llama-bench an earlier call built and sent back (gpu_check.sh bench): carried instead of building again
if [ -n "${LLAMA_BENCH_XZ:-}" ]; then cp $LLAMA_BENCH_XZ "$DEST/"; fi
# PEER_SRC: llama.cpp's sources (in the main checkout; a worktree elsewhere names them)
SRC=${PEER_SRC:-$REPO/.peer/src}
# NO_LLAMA=1: a call that only checks (gpu_check.sh check engine) needs no llama.cpp sources
if [ -z "${NO_LLAMA:-}" ] && [ ! -f "$DEST/llama-src.tar.xz" ]; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp/llama-src"
    (cd "$SRC" && tar cf - --exclude=./models --exclude=./docs --exclude=./tests --exclude=./media \
        --exclude=./tools/ui --exclude=./tools/server --exclude=./examples --exclude=./benches \
        --exclude=./gguf-py --exclude=./conversion --exclude=./.git \
        --exclude='./ggml/src/ggml-cann' --exclude='./ggml/src/ggml-hip' --exclude='./ggml/src/ggml-metal' \
        --exclude='./ggml/src/ggml-musa' --exclude='./ggml/src/ggml-opencl' --exclude='./ggml/src/ggml-openvino' \
        --exclude='./ggml/src/ggml-sycl' --exclude='./ggml/src/ggml-vulkan' --exclude='./ggml/src/ggml-webgpu' \
        --exclude='./ggml/src/ggml-zdnn' --exclude='./ggml/src/ggml-zendnn' --exclude='./ggml/src/ggml-hexagon' \
        --exclude='./ggml/src/ggml-virtgpu' --exclude='./ggml/src/ggml-et' .) | tar xf - -C "$tmp/llama-src"
    # the top CMakeLists names examples and tests folders it no longer finds
    mkdir -p "$tmp/llama-src/examples" "$tmp/llama-src/tests"
    : > "$tmp/llama-src/examples/CMakeLists.txt"
    : > "$tmp/llama-src/tests/CMakeLists.txt"
    tar cJf "$DEST/llama-src.tar.xz" -C "$tmp" llama-src
    rm -rf "$tmp" "$DEST/llama-src"
fi
du -sh "$DEST"

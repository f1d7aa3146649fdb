#!/bin/sh
# Set up the reference peer: a Python venv with llama-cpp-python built from source for this CPU.
#
#   tools/setup_peer.sh [VENV_DIR]        (default: .venv-peer in the repository, git-ignored)
#   PEER_LIB_DIR=.peer/bin tools/setup_peer.sh [VENV_DIR]
#
# With PEER_LIB_DIR, the Python package is installed without building llama.cpp (-DLLAMA_BUILD=OFF) and its
# lib/ gets links to the libraries tools/build_llama_cpp.sh built there: the same llama.cpp build, from the same
# vendored sources and flags, that llama-bench and llama-server run, in seconds instead of a second source build.
#
# The peer stays outside the product: only the golden recorders (tools/record_golden_*.py) and bench/report.py
# use it (bench/bench_engine.py runs llama-bench itself), and CI never does (the goldens are committed files).
# Idempotent: a venv that already imports the pinned version with numpy and matplotlib is left as it is; a
# partial one is completed. The source build is forced (no cached or prebuilt wheel) because GGML_NATIVE
# compiles for the CPU of the machine that builds it.
set -eu

LCP_VERSION=0.3.36
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$REPO/.venv-peer}
PYTHON=${PYTHON:-python3}

say() { printf 'setup_peer: %s\n' "$*"; }
die() { printf 'setup_peer: error: %s\n' "$*" >&2; exit 1; }

have_all() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<EOF >/dev/null 2>&1
import llama_cpp, numpy, matplotlib
assert llama_cpp.__version__ == "$LCP_VERSION", llama_cpp.__version__
EOF
}

if have_all; then
    say "$VENV already has llama-cpp-python $LCP_VERSION, numpy and matplotlib: nothing to do"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3 (apt-get install python3)"

if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV"
    "$PYTHON" -m venv "$VENV" 2>/dev/null ||
        die "cannot create a venv with $PYTHON (on Debian: apt-get install python3-venv)"
fi
PIP="$VENV/bin/python -m pip"

say "installing numpy and matplotlib"
$PIP install --quiet --upgrade pip >/dev/null 2>&1 || say "could not upgrade pip; going on with $($PIP --version)"
$PIP install --quiet numpy matplotlib || die "pip could not install numpy and matplotlib (is the package index reachable?)"

if "$VENV/bin/python" -c "import llama_cpp; assert llama_cpp.__version__ == '$LCP_VERSION'" 2>/dev/null; then
    say "llama-cpp-python $LCP_VERSION already installed"
else
    for tool in cmake c++; do
        command -v $tool >/dev/null 2>&1 ||
            die "$tool not found: llama-cpp-python builds llama.cpp from source (apt-get install cmake g++)"
    done
    if [ -n "${PEER_LIB_DIR:-}" ]; then
        [ -e "$PEER_LIB_DIR/libllama.so" ] && [ -e "$PEER_LIB_DIR/libggml.so" ] ||
            die "PEER_LIB_DIR=$PEER_LIB_DIR has no libllama.so and libggml.so (run tools/build_llama_cpp.sh first)"
        say "installing llama-cpp-python $LCP_VERSION without its native build, for the libraries in $PEER_LIB_DIR"
        CMAKE_ARGS="-DLLAMA_BUILD=OFF" $PIP install --quiet --no-cache-dir --no-binary llama-cpp-python \
            --force-reinstall "llama-cpp-python==$LCP_VERSION" ||
            die "pip could not install llama-cpp-python==$LCP_VERSION"
        LIB=$("$VENV/bin/python" -c 'import importlib.util, os
print(os.path.join(os.path.dirname(importlib.util.find_spec("llama_cpp").origin), "lib"))')
        mkdir -p "$LIB"
        for so in "$PEER_LIB_DIR"/lib*.so*; do ln -sf "$(cd "$(dirname "$so")" && pwd)/$(basename "$so")" "$LIB/"; done
    fi
fi
if "$VENV/bin/python" -c "import llama_cpp; assert llama_cpp.__version__ == '$LCP_VERSION'" 2>/dev/null; then
    :
else
    say "building llama-cpp-python $LCP_VERSION from source with -DGGML_NATIVE=ON (several minutes)"
    LOG=$(mktemp "${TMPDIR:-/tmp}/setup_peer.XXXXXX")
    CMAKE_ARGS="-DGGML_NATIVE=ON" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
        $PIP install --verbose --no-cache-dir --no-binary llama-cpp-python --force-reinstall --no-deps \
            "llama-cpp-python==$LCP_VERSION" >"$LOG" 2>&1 &
    BUILD=$!
    START=$(date +%s)
    while kill -0 "$BUILD" 2>/dev/null; do
        sleep 20
        kill -0 "$BUILD" 2>/dev/null || break
        STEP=$(grep -oE '^ *\[ *[0-9]+(/[0-9]+|%)\]' "$LOG" 2>/dev/null | tail -n 1 | tr -d ' ')
        say "  building, $(( $(date +%s) - START )) s${STEP:+, step $STEP}"
    done
    if ! wait "$BUILD"; then
        tail -n 30 "$LOG" >&2
        die "building llama-cpp-python failed; the full log is $LOG"
    fi
    # --no-deps above keeps numpy as installed; the package's own small dependencies come here.
    $PIP install --quiet "llama-cpp-python==$LCP_VERSION" >/dev/null 2>&1 ||
        die "could not install llama-cpp-python's dependencies; see $PIP install llama-cpp-python==$LCP_VERSION"
    rm -f "$LOG"
fi

have_all || die "the venv $VENV still cannot import llama_cpp $LCP_VERSION, numpy and matplotlib"
say "ready: $("$VENV/bin/python" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__)')"
say "use it with: $VENV/bin/python tools/record_golden_models.py, or bench/report.py --peer-python $VENV/bin/python"

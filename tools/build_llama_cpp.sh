#!/usr/bin/env bash
# build_llama_cpp.sh - build the peer's own tools (llama-bench, llama-server, llama-cli) from the
# llama.cpp sources vendored in the llama-cpp-python sdist, as a llama.cpp user on this CPU would.
#
#   tools/build_llama_cpp.sh [PREFIX]      (default: .peer in the repository, git-ignored)
#
# The binaries land in PREFIX/bin. Built with -DGGML_NATIVE=ON (this machine's ISA) and the
# project's own defaults otherwise: nothing is tuned down. The peer stays outside the product and
# outside CI: only bench/ and tools/ use it. Idempotent: an existing build with every tool is kept.
set -euo pipefail

LCP_VERSION=${LCP_VERSION:-0.3.36}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${1:-$REPO/.peer}
TOOLS=(llama-bench llama-server llama-cli)

say() { printf 'build_llama_cpp: %s\n' "$*"; }
die() { printf 'build_llama_cpp: error: %s\n' "$*" >&2; exit 1; }

have_all() {
    for t in "${TOOLS[@]}"; do [ -x "$PREFIX/bin/$t" ] || return 1; done
}
if have_all; then
    say "$PREFIX/bin already has ${TOOLS[*]}: nothing to do"
    exit 0
fi
for tool in cmake c++ python3; do
    command -v $tool >/dev/null 2>&1 || die "$tool not found (apt-get install cmake g++ python3-pip)"
done

mkdir -p "$PREFIX"
SRC="$PREFIX/src"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    dl=$(mktemp -d "${TMPDIR:-/tmp}/lcp_sdist.XXXXXX")
    say "downloading the llama-cpp-python $LCP_VERSION sdist (about 75 MB)"
    python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$LCP_VERSION" -d "$dl" ||
        die "pip could not download llama-cpp-python==$LCP_VERSION"
    say "unpacking its vendored llama.cpp"
    tar xzf "$dl"/llama_cpp_python-"$LCP_VERSION".tar.gz -C "$dl"
    rm -rf "$SRC"
    mv "$dl/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp" "$SRC"
    rm -rf "$dl"
fi

say "configuring (GGML_NATIVE=ON, Release)"
cmake -S "$SRC" -B "$PREFIX/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$PREFIX/configure.log" 2>&1 ||
    { tail -30 "$PREFIX/configure.log" >&2; die "cmake configure failed (log: $PREFIX/configure.log)"; }

say "building ${TOOLS[*]} (several minutes on 2 cores; log: $PREFIX/build.log)"
start=$(date +%s)
cmake --build "$PREFIX/build" -j"$(nproc)" --target "${TOOLS[@]}" >"$PREFIX/build.log" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do
    sleep 30
    step=$(grep -oE '^\[ *[0-9]+%\]' "$PREFIX/build.log" | tail -1 || true)
    say "  $(( $(date +%s) - start )) s ${step}"
done
wait $pid || { tail -30 "$PREFIX/build.log" >&2; die "build failed (log: $PREFIX/build.log)"; }

mkdir -p "$PREFIX/bin"
for t in "${TOOLS[@]}"; do
    cp "$PREFIX/build/bin/$t" "$PREFIX/bin/$t"
done
# The tools link llama.cpp's shared libraries from the build tree.
for so in "$PREFIX"/build/bin/*.so*; do [ -e "$so" ] && cp -P "$so" "$PREFIX/bin/"; done
say "ready in $(( $(date +%s) - start )) s: $PREFIX/bin/{$(IFS=,; echo "${TOOLS[*]}")}"
"$PREFIX/bin/llama-bench" --help >/dev/null 2>&1 && say "llama-bench runs"

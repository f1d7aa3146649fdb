#!/usr/bin/env bash
# build_llama_cpp.sh - build the peer's own tools (llama-bench, llama-server, llama-cli) from the
# llama.cpp sources vendored in the llama-cpp-python sdist, as a llama.cpp user on this CPU would.
#
#   tools/build_llama_cpp.sh [PREFIX]      (default: .peer in the repository, git-ignored)
#
# The binaries land in PREFIX/bin. Built with -DGGML_NATIVE=ON (this machine's ISA) and the
# project's own defaults otherwise: nothing is tuned down. A smoke run of llama-bench checks the build; where
# its AMX kernels crash (see below) it is rebuilt without them, and PREFIX/bin/BUILD says which build it is.
# The peer stays outside the product and outside CI: only bench/ and tools/ use it. Idempotent: an existing
# build with every tool that passed its smoke run is kept.
set -euo pipefail

LCP_VERSION=${LCP_VERSION:-0.3.36}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${1:-$REPO/.peer}
TOOLS=(llama-bench llama-server llama-cli)

say() { printf 'build_llama_cpp: %s\n' "$*"; }
die() { printf 'build_llama_cpp: error: %s\n' "$*" >&2; exit 1; }

have_all() {
    for t in "${TOOLS[@]}"; do [ -x "$PREFIX/bin/$t" ] || return 1; done
    [ -f "$PREFIX/bin/BUILD" ]  # written only after the build passed its smoke run
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

# build DIR NOTE [cmake flags...]: configure and build the tools into PREFIX/DIR, then copy them (and the
# shared libraries they link from the build tree) into PREFIX/bin, with NOTE in PREFIX/bin/BUILD (bench/ prints it).
build() {
    local dir=$1 note=$2
    shift 2
    say "configuring $dir (GGML_NATIVE=ON, Release${*:+, $*})"
    cmake -S "$SRC" -B "$PREFIX/$dir" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
          -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON "$@" >"$PREFIX/$dir.configure.log" 2>&1 ||
        { tail -30 "$PREFIX/$dir.configure.log" >&2; die "cmake configure failed (log: $PREFIX/$dir.configure.log)"; }
    say "building ${TOOLS[*]} (several minutes on 2 cores; log: $PREFIX/$dir.log)"
    local start pid step
    start=$(date +%s)
    cmake --build "$PREFIX/$dir" -j"$(nproc)" --target "${TOOLS[@]}" >"$PREFIX/$dir.log" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
        sleep 30
        step=$(grep -oE '^\[ *[0-9]+%\]' "$PREFIX/$dir.log" | tail -1 || true)
        say "  $(( $(date +%s) - start )) s ${step}"
    done
    wait $pid || { tail -30 "$PREFIX/$dir.log" >&2; die "build failed (log: $PREFIX/$dir.log)"; }
    rm -rf "$PREFIX/bin"
    mkdir -p "$PREFIX/bin"
    for t in "${TOOLS[@]}"; do cp "$PREFIX/$dir/bin/$t" "$PREFIX/bin/$t"; done
    for so in "$PREFIX/$dir"/bin/*.so*; do [ -e "$so" ] && cp -P "$so" "$PREFIX/bin/"; done
    printf '%s\n' "$note" >"$PREFIX/bin/BUILD.pending"
    say "ready in $(( $(date +%s) - start )) s: $PREFIX/bin/{$(IFS=,; echo "${TOOLS[*]}")}"
}

# smoke: one small llama-bench prefill and decode on the default model, as bench/ runs it (-fa 1, its default
# buffer types). Returns llama-bench's exit status (128+N when signal N killed it).
smoke() {
    local model rc=0
    model=$("$REPO/scripts/get_model.sh") || die "scripts/get_model.sh could not provide the default model"
    "$PREFIX/bin/llama-bench" -m "$model" -t 2 -fa 1 -r 1 -p 64 -n 8 -o json >/dev/null 2>"$PREFIX/smoke.log" || rc=$?
    return $rc
}

build build "GGML_NATIVE=ON"
rc=0; smoke || rc=$?
if [ $rc -ne 0 ] && grep -qw amx_int8 /proc/cpuinfo; then
    # llama.cpp 0.3.36's AMX kernels (ggml-cpu/amx, chosen first wherever the CPU has AMX-INT8) die here, with
    # SIGILL on a worker thread's first tileloadd or SIGSEGV inside ggml_backend_amx_mul_mat: the tile-data
    # permission is asked for on the main thread only and the tile config can be compiled away (upstream pull
    # request 26954). Its best path that runs is the build every
    # non-AMX x86 CPU gets: the same native flags less AMX-INT8, so its repacked AVX-512 kernels run.
    say "llama-bench died (exit $rc, see $PREFIX/smoke.log) on this AMX-INT8 CPU: rebuilding without llama.cpp's AMX kernels"
    build build-noamx "GGML_NATIVE=ON, -mno-amx-int8 (its AMX kernels crash on this host)" \
          -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8
    rc=0; smoke || rc=$?
fi
[ $rc -eq 0 ] || die "llama-bench fails its smoke run (exit $rc, log: $PREFIX/smoke.log)"
mv "$PREFIX/bin/BUILD.pending" "$PREFIX/bin/BUILD"
say "llama-bench runs: $(cat "$PREFIX/bin/BUILD")"

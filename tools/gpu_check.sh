#!/usr/bin/env bash
# gpu_check.sh STEP... - one device call: the CUDA backend checked and timed from
# binaries built elsewhere (tools/gpu_stage.sh puts this script, the binaries and a
# trimmed llama.cpp beside each other). Steps, in the order given:
#   llama   start building llama.cpp's llama-bench with CUDA, detached (setsid), so a
#           call right after this one (the machine stays warm) finds it built
#   check   op-by-op tests against the CPU, the whole forward GPU vs CPU, exactness,
#           compute-sanitizer (memcheck, racecheck, synccheck, initcheck), kernel benchmark
#   ops     op-by-op tests and the kernel benchmark alone, with memcheck, racecheck and synccheck on the
#           op tests (small sizes): the quick call while a kernel changes
#   models  write the seeded GGUFs bench_gpu.py times
#   pcache  bench_gpu.py without llama.cpp (pcache and HF transformers)
#   bench   bench_gpu.py with all three (waits for the llama.cpp build; BENCH_SKIP=small,q4 keeps
#           it to the 7B f16 rows, inside one call's 10 minutes)
#   wait    wait (up to 8 minutes) for the llama.cpp build step llama started
#   tier    the store's device tier through the engine (test_gpu_tier, and under memcheck)
#   serve   pcache serve --backend cuda on a seeded SmolLM2-shaped model: one plain prompt twice (the
#           second reuses the prefix cache's blocks), then the GPU tier's counters in /metrics and /v1/cache
#   run     bench_gpu.py, pcache alone on the 7B f16 shape, with `pcache run` (the product path)
#   ab      this build's bench_gpu against other builds' (ab.tar.xz: gpu_stage.sh AB_FROM="NAME=DIR ...")
#           on the 7B f16 shape in one call, ROUNDS (3) rounds in turn, the order rotated each round
#           (AB_ARGS="--prefill 2048,8192" adds full prefills; AB_BUDGET_S stops starting rounds): the spread between machines is
#           larger than most effects, so versions are compared on one
#   sandbox bench/gemv_sandbox.cu: the bf16 decode product's versions, checked and timed
#   q4      the quantized models' rows (7B Q4_0, SmolLM2 Q4_1, Qwen2.5-1.5B Q4_K) in one call: the
#           models written in the background while the small-batch product is checked (test_ops_cuda
#           gemv, under memcheck, racecheck and synccheck) and the whole forward against the CPU
#           (test_backend_forward); then bench_gpu.py --skip f16,hf,run (the table; llama.cpp where
#           carried), then this build's bench_gpu and the AB_FROM builds' in turn on each model
#           (ROUNDS, 2; AB_BUDGET_S stops starting rounds)
# Logs go to $OUT (few files: a call brings back 8): summary.txt, check.txt, bench.txt,
# bench.json, bench_log.txt, and llama-bench.xz* (the static binary, for a later call to
# carry instead of building again).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
SUM=$OUT/summary.txt
touch "$SUM"
say() { echo "$*" | tee -a "$SUM"; }
cd "$HERE"
# the binaries and llama.cpp's sources travel compressed (tools/gpu_stage.sh)
[ -f bin.tar.xz ] && { rm -rf bin && tar xJf bin.tar.xz; }
[ -f llama-src.tar.xz ] && [ ! -d /tmp/llama-src ] && tar xJf llama-src.tar.xz -C /tmp
if ls llama-bench.xz* >/dev/null 2>&1 && [ ! -x /tmp/llama-build/bin/llama-bench ]; then
    mkdir -p /tmp/llama-build/bin && cat llama-bench.xz* | xz -d > /tmp/llama-build/bin/llama-bench &&
        chmod +x /tmp/llama-build/bin/llama-bench && echo 0 > /tmp/llama-build.rc
fi
export PATH=/usr/local/cuda/bin:$PATH PYTHONUNBUFFERED=1
# pcache's own libraries the image lacks travel in lib/ (gpu_stage.sh)
[ -d "$HERE/lib" ] && export LD_LIBRARY_PATH=$HERE/lib:${LD_LIBRARY_PATH:-}
PYLIB=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/lib:${PYLIB}:${LD_LIBRARY_PATH:-}
LB=/tmp/llama-build/bin/llama-bench
MODELS=/tmp/pcache-gpu-models
say "== $(date -u +%H:%M:%S) $* on $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used --format=csv,noheader 2>&1 | head -1)"

step_llama() {
    [ -x "$LB" ] && { say "llama-bench already built"; return; }
    setsid bash -c "cmake -S /tmp/llama-src -B /tmp/llama-build -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF > /tmp/llama-build.log 2>&1 &&
        nice -n 5 cmake --build /tmp/llama-build -j 14 --target llama-bench >> /tmp/llama-build.log 2>&1;
        echo \$? > /tmp/llama-build.rc" < /dev/null > /dev/null 2>&1 &
    say "llama.cpp build started (detached)"
}

step_check() {
    ldd bin/test_ops_cuda | grep -i "not found" | tee -a "$SUM"
    say "== $(date -u +%H:%M:%S) op-by-op tests"
    C=$OUT/check.txt
    echo "### test_ops_cuda" >> "$C"
    timeout 300 bin/test_ops_cuda > /tmp/ops.txt 2>&1; say "test_ops_cuda exit $?"; cat /tmp/ops.txt >> "$C"
    grep -E "CHECK failed|passed|cuBLAS rows|skipped|error|rror" /tmp/ops.txt | head -40 | tee -a "$SUM"
    say "== $(date -u +%H:%M:%S) forward GPU vs CPU, exactness"
    echo "### test_backend_forward" >> "$C"
    timeout 420 bin/test_backend_forward > /tmp/fwd.txt 2>&1; say "test_backend_forward exit $?"; cat /tmp/fwd.txt >> "$C"
    grep -vE "^$" /tmp/fwd.txt | tail -30 | tee -a "$SUM"
    say "== $(date -u +%H:%M:%S) compute-sanitizer"
    {
        for tool in memcheck racecheck synccheck initcheck; do
            echo "--- $tool: test_ops_cuda (small)"
            PC_TEST_SMALL=1 timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 bin/test_ops_cuda 2>&1 | tail -12
            echo "exit ${PIPESTATUS[0]}"
        done
        echo "--- memcheck: test_backend_forward (small)"
        PC_TEST_SMALL=1 timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 bin/test_backend_forward 2>&1 | tail -12
        echo "exit ${PIPESTATUS[0]}"
    } > /tmp/san.txt 2>&1
    { echo "### compute-sanitizer"; cat /tmp/san.txt; } >> "$C"
    grep -E "^---|ERROR SUMMARY|^exit|Invalid|Race|rror" /tmp/san.txt | head -40 | tee -a "$SUM"
    say "== $(date -u +%H:%M:%S) kernel benchmark"
    timeout 240 bin/bench_gpu_ops > /tmp/opsb.txt 2>&1; say "bench_gpu_ops exit $?"
    { echo "### bench_gpu_ops"; cat /tmp/opsb.txt; } >> "$C"
    grep -E "device|ceiling|attention| (1|2|4|8|16|32) tokens" /tmp/opsb.txt | head -70 | tee -a "$SUM"
}

step_ops() {
    say "== $(date -u +%H:%M:%S) op-by-op tests, kernel benchmark"
    timeout 300 bin/test_ops_cuda > /tmp/ops.txt 2>&1; say "test_ops_cuda exit $?"
    grep -E "CHECK failed|passed|attention|rror" /tmp/ops.txt | head -60 | tee -a "$SUM"
    for tool in memcheck racecheck synccheck; do
        PC_TEST_SMALL=1 timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 bin/test_ops_cuda > /tmp/san.txt 2>&1
        say "$tool test_ops_cuda (small) exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race" /tmp/san.txt | head -5 | tee -a "$SUM"
    done
    timeout 420 bin/test_backend_forward > /tmp/fwd.txt 2>&1; say "test_backend_forward exit $?"
    grep -vE "^$" /tmp/fwd.txt | tail -12 | tee -a "$SUM"
    timeout 240 bin/bench_gpu_ops > /tmp/opsb.txt 2>&1; say "bench_gpu_ops exit $?"
    { echo "### test_ops_cuda"; cat /tmp/ops.txt; echo "### test_backend_forward"; cat /tmp/fwd.txt; echo "### bench_gpu_ops"; cat /tmp/opsb.txt; } >> "$OUT/check.txt"
    grep -E "device|ceiling|attention|matmul BF16" /tmp/opsb.txt | tee -a "$SUM"
}

step_models() {
    say "== $(date -u +%H:%M:%S) models"
    mkdir -p "$MODELS"
    for spec in llama2-7b:f16 llama2-7b:q4_0 smollm2-135m:q4_1 qwen2.5-1.5b:q4_k; do
        f=$MODELS/${spec%%:*}-${spec##*:}.gguf
        [ -f "$f" ] || timeout 300 bin/pc_write_model --shape "${spec%%:*}" --type "${spec##*:}" --out "$f" >> "$OUT/bench_log.txt" 2>&1 ||
            say "pc_write_model $spec failed"
    done
    ls -la "$MODELS" | tee -a "$SUM"
}

step_pcache() {
    say "== $(date -u +%H:%M:%S) benchmark: pcache and HF"
    timeout 540 python3 bench_gpu.py --bin bin --models "$MODELS" --skip llama --json "$OUT/bench.json" > "$OUT/bench.txt" 2>> "$OUT/bench_log.txt"
    say "bench_gpu.py exit $?"; cat "$OUT/bench.txt" | tee -a "$SUM"
    tail -5 "$OUT/bench_log.txt" >> "$SUM"
}

step_bench() {
    say "== $(date -u +%H:%M:%S) waiting for the llama.cpp build"
    for _ in $(seq 1 300); do [ -f /tmp/llama-build.rc ] && break; sleep 2; done
    say "llama.cpp build: exit $(cat /tmp/llama-build.rc 2>/dev/null || echo 'not finished')"; tail -2 /tmp/llama-build.log >> "$SUM"
    say "== $(date -u +%H:%M:%S) benchmark: pcache, HF, llama.cpp"
    timeout 560 python3 bench_gpu.py --bin bin --models "$MODELS" --llama-bench "$LB" --skip "${BENCH_SKIP:-}" --json "$OUT/bench.json" > "$OUT/bench.txt" 2>> "$OUT/bench_log.txt"
    say "bench_gpu.py exit $?"; cat "$OUT/bench.txt" | tee -a "$SUM"
    tail -5 "$OUT/bench_log.txt" >> "$SUM"
    if [ -x "$LB" ] && [ ! -f "$HERE/llama-bench.xz0" ]; then
        xz -T0 -6 -c "$LB" > /tmp/llama-bench.xz && split -b 15M -d -a 1 /tmp/llama-bench.xz "$OUT/llama-bench.xz" &&
            ls -la "$OUT" | grep llama-bench | tee -a "$SUM"
    fi
}

# The engine on the GPU: a seeded SmolLM2-shaped model through pcache's CLI (schema
# encoding, a cached prompt and its uncached twin, generation), CUDA against the CPU.
step_engine() {
    say "== $(date -u +%H:%M:%S) engine"
    local m=/tmp/smol4.gguf
    [ -f $m ] || bin/pc_write_model --shape smollm2-135m --type q4_1 --layers 4 --out $m > /dev/null
    for b in cpu cuda; do
        timeout 120 bin/pcache generate -m $m -p "The quick brown fox" -n 16 --temp 0 --json --backend $b 2>&1 |
            tail -1 | cut -c1-300 | sed "s/^/generate $b: /" | tee -a "$SUM"
    done
    timeout 180 bin/pcache run -m $m --schema mbti.xml --prompt mbti_intj.xml --compare --backend cuda -n 8 --temp 0 \
        --chat-template chatml --quiet 2>&1 | tail -5 | tee -a "$SUM"
}

step_serve() {
    say "== $(date -u +%H:%M:%S) serve --backend cuda: prefix cache, GPU tier counters"
    local m=/tmp/smol4.gguf
    [ -f $m ] || bin/pc_write_model --shape smollm2-135m --type q4_1 --layers 4 --out $m > /dev/null
    bin/pcache serve -m $m --backend cuda --port 18080 > /tmp/serve.log 2>&1 &
    local pid=$!
    timeout 120 python3 - <<'PY' 2>&1 | tee -a "$SUM"
import json, time, urllib.request
base = "http://127.0.0.1:18080"
def get(path):
    return urllib.request.urlopen(base + path, timeout=60).read().decode()
for _ in range(90):
    try:
        get("/health"); break
    except Exception:
        time.sleep(1)
text = " ".join(f"Rule {i}: answer briefly and cite the rule you used." for i in range(30))
body = json.dumps({"prompt": text, "max_tokens": 4, "temperature": 0}).encode()
for i in (1, 2):
    req = urllib.request.Request(base + "/v1/completions", body, {"Content-Type": "application/json"})
    r = json.loads(urllib.request.urlopen(req, timeout=60).read())
    print(f"request {i}: prompt_tokens {r['usage']['prompt_tokens']}, cached_tokens "
          f"{r['usage']['prompt_tokens_details']['cached_tokens']}, text {r['choices'][0]['text']!r}")
print("\n".join(l for l in get("/metrics").splitlines() if 'tier="gpu"' in l or l.startswith("pcache_prefix")))
print("/v1/cache gpu:", json.loads(get("/v1/cache"))["tiers"]["gpu"])
PY
    kill $pid; wait $pid 2>/dev/null
    tail -3 /tmp/serve.log >> "$SUM"
}

step_wait() {
    for _ in $(seq 1 240); do [ -f /tmp/llama-build.rc ] && break; sleep 2; done
    say "llama.cpp build: exit $(cat /tmp/llama-build.rc 2>/dev/null || echo 'not finished')"
}

# Module KV resident in GPU memory through the engine (the store's device tier):
# test_gpu_tier on a seeded 4-layer SmolLM2-shaped model, then under memcheck.
step_tier() {
    say "== $(date -u +%H:%M:%S) device tier"
    local m=/tmp/smol4.gguf
    [ -f $m ] || bin/pc_write_model --shape smollm2-135m --type q4_1 --layers 4 --out $m > /dev/null
    PC_TEST_GPU_MODEL=$m timeout 300 bin/test_gpu_tier > /tmp/tier.txt 2>&1; say "test_gpu_tier exit $?"
    tail -12 /tmp/tier.txt | tee -a "$SUM"
    PC_TEST_GPU_MODEL=$m timeout 400 compute-sanitizer --tool memcheck --error-exitcode 9 bin/test_gpu_tier > /tmp/tiers.txt 2>&1
    say "memcheck test_gpu_tier exit $?"; grep -E "ERROR SUMMARY|passed" /tmp/tiers.txt | tee -a "$SUM"
    { echo "### test_gpu_tier"; cat /tmp/tier.txt; echo "### memcheck"; tail -40 /tmp/tiers.txt; } >> "$OUT/check.txt"
}

# pcache alone on the 7B f16 shape: bench_gpu (forward API) and `pcache run` (the product path).
step_run() {
    say "== $(date -u +%H:%M:%S) benchmark: pcache on the 7B f16 shape, forward API and pcache run"
    timeout 560 python3 bench_gpu.py --bin bin --models "$MODELS" --skip llama,hf,small,q4 --json "$OUT/bench.json" > "$OUT/bench.txt" 2>> "$OUT/bench_log.txt"
    say "bench_gpu.py exit $?"; head -9 "$OUT/bench.txt" | tee -a "$SUM"
    grep -E "run_gpu|run_host|gpu tier" "$OUT/bench_log.txt" | tee -a "$SUM"
}

step_ab() {
    say "== $(date -u +%H:%M:%S) A/B: other builds (AB_FROM) against this one (new), 7B f16, cached 8192 + 32 and decode ${AB_ARGS:-}"
    [ -f ab.tar.xz ] || { say "no ab.tar.xz (gpu_stage.sh AB_FROM=...)"; return; }
    rm -rf ab && mkdir ab && tar xJf ab.tar.xz -C ab
    local m=$MODELS/llama2-7b-f16.gguf
    mkdir -p "$MODELS"
    [ -f "$m" ] || timeout 300 bin/pc_write_model --shape llama2-7b --type f16 --out "$m" >> "$OUT/bench_log.txt" 2>&1
    local names=($(ls ab) new) n r i v t0=$(date +%s)
    n=${#names[@]}
    for r in $(seq 1 "${ROUNDS:-3}"); do
        [ $(( $(date +%s) - t0 )) -gt "${AB_BUDGET_S:-100000}" ] && { say "AB_BUDGET_S reached before round $r"; break; }
        # the order rotates each round, so no build always runs first on a cold or warm GPU
        for i in $(seq 0 $((n - 1))); do
            v=${names[$(( (i + r - 1) % n ))]}
            local exe=bin/bench_gpu
            [ $v = new ] || exe=ab/$v/bench_gpu
            # AB_ARGS adds cases, e.g. "--prefill 2048,8192" for full prefills
            timeout 150 $exe "$m" ${AB_ARGS:-} --cached 8192 --fresh 32 --decode 32 --reps 7 2>> "$OUT/bench_log.txt" |
                sed "s/^/$v $r /" >> "$OUT/ab.txt"
        done
    done
    python3 - "$OUT/ab.txt" <<'PY' | tee -a "$SUM"
import collections, json, statistics, sys
rows = collections.defaultdict(list)
names = []
for line in open(sys.argv[1]):
    name, rnd, js = line.split(" ", 2)
    r = json.loads(js)
    key = r["case"] + (str(r["n_new"]) if r["case"] == "prefill" else "")
    rows[(name, key)].append(r["ms"])
    if name not in names:
        names.append(name)
for case in ("prefill2048", "prefill8192", "cached_gpu", "cached_pinned", "decode"):
    for n in names:
        v = rows[(n, case)]
        if v:
            print(f"{case:14s} {n:8s} {' / '.join(f'{x:.2f}' for x in v)}  median {statistics.median(v):.3f}"
                  f" spread {max(v) - min(v):.2f}")
PY
}

step_sandbox() {
    say "== $(date -u +%H:%M:%S) bf16 decode product, versions side by side (gemv_sandbox)"
    timeout 240 bin/gemv_sandbox 7 > /tmp/sandbox.txt 2>&1; say "gemv_sandbox exit $?"
    cat /tmp/sandbox.txt | tee -a "$SUM"
}

step_q4() {
    say "== $(date -u +%H:%M:%S) Q4 rows: models written in the background, checks meanwhile"
    mkdir -p "$MODELS"
    local spec f pids=() fwd m v r i n names
    for spec in smollm2-135m:q4_1 qwen2.5-1.5b:q4_k llama2-7b:q4_0; do
        f=$MODELS/${spec%%:*}-${spec##*:}.gguf
        [ -f "$f" ] || { timeout 300 bin/pc_write_model --shape "${spec%%:*}" --type "${spec##*:}" --out "$f" >> "$OUT/bench_log.txt" 2>&1 &
                         pids+=($!); }
    done
    timeout 300 bin/test_backend_forward > /tmp/fwd.txt 2>&1 &
    fwd=$!
    timeout 120 bin/test_ops_cuda gemv > /tmp/gemv.txt 2>&1; say "test_ops_cuda gemv exit $?"
    grep -E "gemv|CHECK|passed|failed" /tmp/gemv.txt | tee -a "$SUM"
    for tool in memcheck racecheck synccheck; do
        timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 bin/test_ops_cuda gemv > /tmp/san.txt 2>&1
        say "$tool test_ops_cuda gemv exit $?"
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|CHECK failed|passed" /tmp/san.txt | head -5 | tee -a "$SUM"
        { echo "### $tool test_ops_cuda gemv"; tail -20 /tmp/san.txt; } >> "$OUT/check.txt"
    done
    for i in "${pids[@]}"; do wait "$i" || say "pc_write_model (pid $i) failed"; done
    say "== $(date -u +%H:%M:%S) models written"; ls -la "$MODELS" | tee -a "$SUM"
    wait $fwd; say "test_backend_forward exit $?"
    grep -vE "^$" /tmp/fwd.txt | tail -40 | tee -a "$SUM"
    { echo "### test_ops_cuda gemv"; cat /tmp/gemv.txt; echo "### test_backend_forward"; cat /tmp/fwd.txt; } >> "$OUT/check.txt"
    say "== $(date -u +%H:%M:%S) benchmark: the Q4 rows, pcache and llama.cpp"
    timeout 300 python3 bench_gpu.py --bin bin --models "$MODELS" --llama-bench "$LB" --skip f16,hf,run --json "$OUT/bench.json" \
        > "$OUT/bench.txt" 2>> "$OUT/bench_log.txt"
    say "bench_gpu.py exit $?"; cat "$OUT/bench.txt" | tee -a "$SUM"
    tail -5 "$OUT/bench_log.txt" >> "$SUM"
    say "== $(date -u +%H:%M:%S) A/B on the Q4 models: bench_gpu of the AB_FROM builds and this one (new), in turn"
    rm -rf ab && mkdir ab
    [ -f ab.tar.xz ] && tar xJf ab.tar.xz -C ab
    names=($(ls ab) new)
    n=${#names[@]}
    local t0=$(date +%s)
    for r in $(seq 1 "${ROUNDS:-2}"); do
        [ $(( $(date +%s) - t0 )) -gt "${AB_BUDGET_S:-100000}" ] && { say "AB_BUDGET_S reached before round $r"; break; }
        for m in smollm2-135m-q4_1 qwen2.5-1.5b-q4_k llama2-7b-q4_0; do
            # the order rotates each round, so no build always runs first
            for i in $(seq 0 $((n - 1))); do
                v=${names[$(( (i + r - 1) % n ))]}
                local exe=bin/bench_gpu
                [ "$v" = new ] || exe=ab/$v/bench_gpu
                timeout 120 $exe "$MODELS/$m.gguf" --cached 8192 --fresh 32 --decode 32 --reps 5 2>> "$OUT/bench_log.txt" |
                    sed "s/^/$v $r /" >> "$OUT/ab.txt"
            done
        done
    done
    python3 - "$OUT/ab.txt" <<'PY' | tee -a "$SUM"
import collections, json, statistics, sys
rows, names = collections.defaultdict(list), []
for line in open(sys.argv[1]):
    name, rnd, js = line.split(" ", 2)
    r = json.loads(js)
    rows[(r["type"], r["case"], name)].append(r["ms"])
    if name not in names:
        names.append(name)
for typ in ("Q4_1", "Q4_K", "Q4_0"):
    for case in ("cached_gpu", "cached_pinned", "decode"):
        for n in names:
            v = rows[(typ, case, n)]
            if v:
                print(f"{typ:5s} {case:14s} {n:6s} {' / '.join(f'{x:.3f}' for x in v)}  median {statistics.median(v):.3f}")
PY
}

for s in "$@"; do "step_$s"; done
say "== $(date -u +%H:%M:%S) end"

#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it: setup, then the unit, golden and property
# tests in a release build and again under AddressSanitizer + UndefinedBehaviorSanitizer,
# the threaded parts (thread pool, scheduler, server, module store) under ThreadSanitizer,
# then every libFuzzer target for a bounded time. A private redis-server on a loopback port serves the store's Redis tests
# (PC_TEST_REDIS) and is stopped on exit. Ends with one "N passed, N failed" line.
#   FUZZ_SECONDS (default 60) bounds each fuzzer.
set -uo pipefail
cd "$(dirname "$0")/.."

# The 0.5B model (~0.5 GB, 6 wheels) feeds the golden test of a real Q5_0/Q4_K/Q6_K/Q8_0 model
# (tests/engine/test_golden_models.c: about 1 min of CPU in the release suite, a few minutes under ASan).
scripts/setup.sh qwen2.5-coder-0.5b || { echo "test: setup failed" >&2; exit 1; }

# Redis for the store's tests: our own instance, on a free loopback port, no persistence.
redis_pid=""
stop_redis() { [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null; redis_pid=""; }
trap stop_redis EXIT
if command -v redis-server >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    export PC_TEST_REDIS="127.0.0.1:$port"
    echo "== redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on $PC_TEST_REDIS"
  else
    echo "== redis-server did not start: the store's Redis tests will say they skip"; stop_redis
  fi
else
  echo "== redis-server is not installed: the store's Redis tests will say they skip"
fi

# The server tests drive `pcache serve` with the official openai Python client, from a virtual environment
# made here once (pip, pinned version; about 20 s) and shared by every build's tests.
export PCACHE_TEST_VENV=$PWD/build/venv-server
if ! "$PCACHE_TEST_VENV/bin/python" -c "import openai" 2>/dev/null; then
  python3 -m venv "$PCACHE_TEST_VENV" && "$PCACHE_TEST_VENV/bin/pip" install -q "openai==3.57.0" ||
    { echo "test: cannot install the openai client into $PCACHE_TEST_VENV" >&2; exit 1; }
fi

passed=0; failed=0; skipped=0
tally() { # reads ctest's summary from a log
  local log=$1 total fail skip
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  fail=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
  skip=$(grep -c 'Not Run\|\*\*\*Skipped' "$log" || true)
  total=${total:-0}; fail=${fail:-1}
  passed=$((passed + total - fail - skip)); failed=$((failed + fail)); skipped=$((skipped + skip))
}

run_suite() { # name builddir cmake-args...
  local name=$1 dir=$2; shift 2
  echo "== $name: building in $dir"
  if ! scripts/build.sh "$dir" "$@"; then
    echo "test: $name build failed" >&2; failed=$((failed + 1)); return
  fi
  echo "== $name: running tests"
  local log; log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j2 2>&1) | tee "$log"
  tally "$log"; rm -f "$log"
}

run_suite "release" build
run_suite "sanitizers (ASan+UBSan)" build-asan -DPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

# ThreadSanitizer on what synchronises threads: the pool, the scheduler (and the prefix cache it fills), the server, the module
# store shared by them (about 5 min).
echo "== threads (TSan): building in build-tsan"
if scripts/build.sh build-tsan -DPC_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  log=$(mktemp)
  (cd build-tsan && ctest --output-on-failure -j2 -R 'util/|engine/test_sched|engine/test_prefix|server/|store/' 2>&1) | tee "$log"
  tally "$log"; rm -f "$log"
else
  echo "test: TSan build failed" >&2; failed=$((failed + 1))
fi

echo "== fuzzing: each target for ${FUZZ_SECONDS:-60} s"
if scripts/build.sh build-fuzz -DPC_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus=$(mktemp -d)
    [ -d "tests/data/fuzz/$name" ] && cp -r "tests/data/fuzz/$name/." "$corpus/"
    if PC_MODEL_PATH="$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$f" -max_total_time="${FUZZ_SECONDS:-60}" \
         -rss_limit_mb=4096 -print_final_stats=0 "$corpus" >"$corpus.log" 2>&1; then
      echo "fuzz $name: clean ($(grep -o 'Done [0-9]* runs' "$corpus.log" | tail -1))"; passed=$((passed + 1))
    else
      echo "fuzz $name: FAILED"; tail -40 "$corpus.log"; failed=$((failed + 1))
    fi
    rm -rf "$corpus" "$corpus.log"
  done
else
  echo "test: fuzz build failed" >&2; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

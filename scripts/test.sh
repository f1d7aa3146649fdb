#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it: setup, then the unit, golden and property
# tests in a release build and again under AddressSanitizer + UndefinedBehaviorSanitizer,
# then every libFuzzer target for a bounded time. Ends with one "N passed, N failed" line.
#   FUZZ_SECONDS (default 60) bounds each fuzzer.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }

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

# ThreadSanitizer on what synchronises threads: the pool, the scheduler, the server (about 2 min).
echo "== threads (TSan): building in build-tsan"
if scripts/build.sh build-tsan -DPC_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  log=$(mktemp)
  (cd build-tsan && ctest --output-on-failure -j2 -R 'util/|engine/test_sched|server/' 2>&1) | tee "$log"
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

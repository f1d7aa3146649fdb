#!/usr/bin/env bash
# run_python_tests.sh VENV PCACHE_BIN MODEL SLOWDOWN MODULE - one server test module (tests/server/MODULE.py)
# against a fresh `pcache serve`, with the official openai Python client from the virtual environment VENV.
# The environment is made here when missing (pip, pinned version); exit 77 (skip) when pip cannot make it or the
# model is absent, with a line saying why. scripts/test.sh makes one beforehand for every build (fails if it
# cannot) and names it in $PCACHE_TEST_VENV.
set -u
venv=${PCACHE_TEST_VENV:-$1} bin=$2 model=$3 slow=$4 module=$5
here=$(cd "$(dirname "$0")" && pwd)
[ -r "$model" ] || { echo "model $model absent: skipped"; exit 77; }
if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
  ( flock 9
    "$venv/bin/python" -c "import openai" 2>/dev/null ||
      { python3 -m venv "$venv" && "$venv/bin/pip" install -q "openai==3.57.0"; }
  ) 9>"$venv.lock" || { echo "cannot install the openai client with pip into $venv: skipped"; exit 77; }
fi
cd "$here"
PCACHE_BIN=$bin PCACHE_MODEL=$model PCACHE_TEST_SLOWDOWN=$slow exec "$venv/bin/python" -m unittest -v "$module"

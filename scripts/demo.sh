#!/usr/bin/env bash
# demo.sh - the main job end to end on the default model: setup, build, then a PML schema
# (four real license texts as modules, a union, a parameter) and a prompt, run with Prompt
# Cache and again with a plain full prefill of the same tokens; prints the answer and both TTFTs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
ex=examples/license-desk
echo "== pcache run: $ex/schema.xml + $ex/prompt.xml (SmolLM2-135M-Instruct Q4_1, greedy)"
build/pcache run --schema "$ex/schema.xml" --prompt "$ex/prompt.xml" --compare -n 64 --temp 0 "$@"

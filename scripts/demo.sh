#!/usr/bin/env bash
# demo.sh - the main job end to end on the default model: setup, build, then generate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
prompt=${1:-"What is the capital of France? Answer in one sentence."}
echo "== pcache generate --chat (SmolLM2-135M-Instruct Q4_1, greedy)"
build/pcache generate --chat -p "$prompt" -n 64 --temp 0

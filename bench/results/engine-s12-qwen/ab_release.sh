#!/bin/sh
# ab.sh ROUNDS BIN...: alternate plain 1.5B decodes of each binary (128 tokens, 2 threads); the summary line per run; a 1 GiB membw read per round
R=$1; shift
cd /work/wt/kquant
for r in $(seq 1 $R); do
  echo "round $r membw: $(./build/bench_membw 2 1024 1 2>&1 | tail -1)"
  for b in "$@"; do
    echo "round $r $(basename $b) $($b generate -m models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf --prompt-file /tmp/kq/prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>&1 >/dev/null | grep decode:)"
  done
done

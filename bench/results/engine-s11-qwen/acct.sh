#!/bin/sh
# BIN: a pcache built with prof.patch (throwaway per-step timers; not in the tree). PROMPT: the first 600 bytes of
# /usr/share/common-licenses/GPL-3 (127 Qwen tokens). Run under flock -x /tmp/pcache-cpu.lock.
# acct.sh MODEL MIB ROUNDS BIN...: per round and binary, the profiled decode's us/tok per step, then the median of 5 one-pass reads of MIB
M=$1; MIB=$2; R=$3; shift 3
for r in $(seq $R); do
 for b in "$@"; do
  echo "$(basename $b) $($b generate -m $M --prompt-file ${PROMPT:-prompt.txt} -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>&1 | grep PROF | awk '{printf "%s=%.1f ", $2, $3}') bw=$(for i in 1 2 3 4 5; do ${MEMBW:-build/bench_membw} 2 $MIB 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p)"
 done
done

#!/bin/bash
# rd.sh MODEL ROUNDS: one-pass reads of the model's decode bytes: 5 fresh bench_membw processes (bench_engine's
# paired_bandwidth) vs the 2 pauses x 3 samples inside bench_decode_paired -n 1 (after the engine's prefill), alternating
m=$1; R=$2
eval $(python3 -c "import json; d=json.load(open('/tmp/M/models.json'))['$m']; print(f\"P={d['path']} F={d['prompt']} B={d['bytes']}\")")
BIN=/work/wt/sched/build
MIB=$(python3 -c "print(f'{$B/1048576:.1f}')")
for r in $(seq $R); do
  f=""; for i in 1 2 3 4 5; do f="$f $($BIN/bench_membw 2 $MIB 1 | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["best_gb_s"])')"; done
  t=$($BIN/bench_decode_paired -m $P --prompt-file $F --bytes $B -t 2 -n 1 -k 1 -c 320 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%.1f" % s for p in d["pauses"] for s in p["samples"]))')
  echo "$(date +%T) fresh:$f | in-process: $t"
done

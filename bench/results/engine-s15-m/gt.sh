#!/bin/bash
# gt.sh MODEL ROUNDS: decode tok/s of pcache generate and of bench_decode_paired (k=16, k=128) alternating
m=$1; R=$2
eval $(python3 -c "import json; d=json.load(open('/tmp/M/models.json'))['$m']; print(f\"P={d['path']} F={d['prompt']} B={d['bytes']}\")")
BIN=/work/wt/sched/build
for r in $(seq $R); do
  g=$($BIN/pcache generate -m $P --prompt-file $F -n 129 --temp 0 --ignore-eos --json -t 2 -c 320 2>/dev/null | python3 -c "import json,sys; print('%.1f' % json.load(sys.stdin)['decode_tok_s'])")
  line="gen $g"
  for k in 16 128; do
    o=$($BIN/bench_decode_paired -m $P --prompt-file $F --bytes $B -t 2 -n 128 -k $k -c 320)
    echo "{\"m\": \"$m\", \"gt\": 1, \"k\": $k, \"t\": \"$(date +%T)\", \"r\": $o}" >> /tmp/M/runs.jsonl
    line="$line | k$k $(echo "$o" | python3 -c "import json,sys; d=json.load(sys.stdin); print('%.1f tok/s reads %s share %.3f' % (d['decode_tok_s'], ' '.join('%.0f'%p['gb_s'] for p in d['pauses'][::4]), d['median_share_all']))")"
  done
  echo "$(date +%T) $line"
done

#!/bin/bash
# one.sh MODEL(smollm2|q05|q15) [extra args...]: one bench_decode_paired run, summary line + JSON appended to /tmp/M/runs.jsonl
m=$1; shift
eval $(python3 -c "import json; d=json.load(open('/tmp/M/models.json'))['$m']; print(f\"P={d['path']} F={d['prompt']} B={d['bytes']}\")")
out=$(/work/wt/sched/build/bench_decode_paired -m $P --prompt-file $F --bytes $B -t 2 -n 128 -c 320 "$@")
echo "{\"m\": \"$m\", \"args\": \"$*\", \"t\": \"$(date +%T)\", \"r\": $out}" >> /tmp/M/runs.jsonl
echo "$out" | python3 -c "
import json,sys; d=json.loads(sys.stdin.read())
w=d['windows']; p=d['pauses']
print('$m', '$*', 'held %d/%d'%(d['n_held'],d['n_windows']), 'share held %.3f all %.3f'%(d['median_share_held'],d['median_share_all']), 'tok/s %.1f'%d['decode_tok_s'], 'first/rest %.2f'%d['first_over_rest_median'])
print('  reads', ' '.join('%.1f'%x['gb_s'] for x in p))
print('  shares', ' '.join(('%.3f'%x['share'])+('' if x['held'] else '*') for x in w))
print('  waits', ' '.join('%.1f/%.1f'%(x['wait_before_ms'],x['wait_after_ms']) for x in p))
print('  samples', ' | '.join(','.join('%.0f'%s for s in x['samples']) for x in p))
"

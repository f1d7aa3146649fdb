#!/bin/bash
# win.sh ROUNDS THREADS MODEL BYTES BUILD... : 16-token window shares, alternating builds (rotated per round)
R=$1; T=$2; M=$3; BY=$4; shift 4; B=("$@"); n=${#B[@]}
head -c 700 /usr/share/common-licenses/GPL-3 > /tmp/s19p.txt
for r in $(seq $R); do for k in $(seq 0 $((n-1))); do
  b=${B[$(( (k + r) % n ))]}
  printf '%s r%d: ' $(echo $b | sed 's|/work/||;s|/|_|g') $r
  $b/bench_decode_paired -m $M --prompt-file /tmp/s19p.txt --bytes $BY -t $T -n 128 -k 16 -c 1024 --reads 5 |
    python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); w=[x for x in d['windows'] if x['held']]; print('held %d/%d median %.1f%% tok/s %.1f' % (d['n_held'], d['n_windows'], 100*d['median_share_held'] if d['n_held'] else float('nan'), sorted(x['tok_s'] for x in w)[len(w)//2] if w else 0))"
done; done

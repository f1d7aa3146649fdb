#!/bin/bash
# threads.sh: this host's read bandwidth by thread count and size (bench_membw), then pcache's 16-token
# decode windows at -t 1 and -t 2 on the three models (bench_decode_paired, bytes as bench_engine.py's
# decode_bytes() printed in engine-s19-final/engine.md). Run under the machine's lock:
#   flock -x /tmp/pcache-cpu.lock bench/results/engine-s19-host/threads.sh > bench/results/engine-s19-host/threads.txt
cd "$(dirname "$0")/../../.."
head -c 700 /usr/share/common-licenses/GPL-3 > /tmp/s19p.txt
for r in 1 2; do for t in 1 2; do for mib in 1024 256 64; do
  printf 'membw round %d threads %d MiB %d: ' $r $t $mib; build/bench_membw $t $mib 5 | grep -o '"best_gb_s": [0-9.]*'
done; done; done
for m in smollm2:100.9e6 qwen2.5-coder-0.5b:393.9e6 qwen2.5-coder-1.5b:985.0e6; do
  name=${m%%:*}; bytes=$(python3 -c "print(int(${m#*:}))")
  case $name in smollm2) f=models/SmolLM2-135M-Instruct.Q4_1.gguf;; qwen2.5-coder-0.5b) f=models/qwen2.5-coder-0.5b-instruct.gguf;;
    *) f=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf;; esac
  for r in 1 2; do for t in 1 2; do
    printf '%s round %d -t %d: ' $name $r $t
    build/bench_decode_paired -m $f --prompt-file /tmp/s19p.txt --bytes $bytes -t $t -n 128 -k 16 -c 1024 --reads 5 |
      python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); w=[x for x in d['windows'] if x['held']]; print('held %d of %d, median share %.1f%%, windows %s' % (d['n_held'], d['n_windows'], 100*d['median_share_held'] if d['n_held'] else float('nan'), ' '.join('%.1f' % (100*x['share']) for x in w)))"
  done; done
done

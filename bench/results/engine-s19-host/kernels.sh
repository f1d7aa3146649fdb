#!/bin/bash
# kernels.sh: the one-token kernels on this host: streamed from memory (each pass beside a plain read of the same
# bytes, per-pass ratio) and from cache (their compute ceiling), at 1 and 2 threads, two rounds. Run under the lock:
#   flock -x /tmp/pcache-cpu.lock bench/results/engine-s19-host/kernels.sh > bench/results/engine-s19-host/kernels.txt
cd "$(dirname "$0")/../../.."
for r in 1 2; do for t in 1 2; do
  echo "== round $r, --stream $t 256"; build/bench_matmul --stream $t 256 2>/dev/null
done; done
for t in 1 2; do echo "== --cache $t 1536"; build/bench_matmul --cache $t 1536 2>/dev/null; done

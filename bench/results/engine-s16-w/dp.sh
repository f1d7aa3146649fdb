#!/bin/bash
# dp.sh ROUNDS BIN_DIR... : bench_decode_paired (SmolLM2, 128 tokens, 16-token windows, 3 reads) of each tree, order rotated each round; one JSON line each
R=$1; shift; B=("$@"); n=${#B[@]}
for r in $(seq $R); do for k in $(seq 0 $((n-1))); do
  d=${B[$(( (k + r) % n ))]}
  printf "%s " $(basename $d)
  $d/build/bench_decode_paired -m /work/main/models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt-file /tmp/smol/prompt.txt --bytes 100859904 -t 2 -n 128 -k 16 -c 1024 --reads 3 --held-spread 0.15 2>/dev/null | tail -1
done; done

#!/bin/sh
# acc.sh ROUNDS BIN "A:VAR=v ..." "B:VAR=v ..." [MODEL]: one process a round, tokens alternate A/B (even/odd, swapped
# every other round); VAR names without the parity digit (PCD_PIECE, PCD_DIV).
R=$1; BIN=$2; A=$3; B=$4; M=${5:-/work/main/models/SmolLM2-135M-Instruct.Q4_1.gguf}; MIB=${MIB:-256}; N=${N:-256}
for r in $(seq $R); do
  if [ $((r % 2)) -eq 1 ]; then p0="$A"; p1="$B"; else p0="$B"; p1="$A"; fi
  e0=$(for kv in ${p0#*:}; do echo -n "${kv%%=*}0=${kv#*=} "; done)
  e1=$(for kv in ${p1#*:}; do echo -n "${kv%%=*}1=${kv#*=} "; done)
  env $e0 $e1 $BIN generate -m $M --prompt-file /tmp/s12prompt.txt -n $N --temp 0 --ignore-eos --json -t 2 -c 1024 2>/tmp/D/err.txt >/dev/null
  bw=$(for i in 1 2 3 4 5; do /tmp/D/main/build/bench_membw 2 $MIB 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p)
  for q in 0 1; do
    if [ $q = 0 ]; then lab=${p0%%:*}; else lab=${p1%%:*}; fi
    echo "$lab $(awk -v P=PROF$q '$1==P{printf "%s=%.1f ", $2, $3}' /tmp/D/err.txt) $(awk -v P=TW$q '$1==P{for(i=3;i<=NF;i++){split($i,a,"=");printf "%s_%s=%s ",$2,a[1],a[2]}}' /tmp/D/err.txt) bw=$bw"
  done
done

#!/bin/sh
# acctp.sh ROUNDS MODEL MIB BIN "A:VAR=v ..." "B:VAR=v ...": one process a round, tokens alternate A/B (even/odd; swapped
# every other round); VAR names without the parity digit (PCQ_PF, PCQ_CNT). Prints per round an A and a B line of per-step us/tok.
R=$1; M=$2; MIB=$3; BIN=$4; A=$5; B=$6
la=${A%%:*}; lb=${B%%:*}
for r in $(seq $R); do
  if [ $((r % 2)) -eq 1 ]; then p0="$A"; p1="$B"; else p0="$B"; p1="$A"; fi
  e0=$(for kv in ${p0#*:}; do echo -n "${kv%%=*}0=${kv#*=} "; done)
  e1=$(for kv in ${p1#*:}; do echo -n "${kv%%=*}1=${kv#*=} "; done)
  env $e0 $e1 $BIN generate -m $M --prompt-file /tmp/s12prompt.txt -n 128 --temp 0 --ignore-eos --json -t 2 -c 1024 2>/tmp/Q/err.txt >/dev/null
  bw=$(for i in 1 2 3 4 5; do /tmp/Q/main/build/bench_membw 2 $MIB 1 | grep -o '"best_gb_s": [0-9.]*' | cut -d' ' -f2; done | sort -n | sed -n 3p)
  echo "${p0%%:*} $(awk '/^PROF0/{printf "%s=%.1f ", $2, $3}' /tmp/Q/err.txt) bw=$bw"
  echo "${p1%%:*} $(awk '/^PROF1/{printf "%s=%.1f ", $2, $3}' /tmp/Q/err.txt) bw=$bw"
done

#!/bin/sh
# mk.sh NAME [SRC_REV|diff] [tw]: /tmp/W/NAME = a tree of /work/wt/smol (main: 96ea8b3 as is; else HEAD + uncommitted diff) + per-token timers (+ team timers), built
set -e
d=/tmp/W/$1; rm -rf $d; mkdir $d
cd /work/wt/smol
if [ "$2" = main ]; then git archive 96ea8b3 | tar -x -C $d; else git archive HEAD | tar -x -C $d && git diff | (cd $d && patch -p1 -s) && git ls-files --others --exclude-standard | tar -c -T - | tar -x -C $d; fi
ln -s /work/main/models $d/models
[ -n "$EDIT" ] && (cd $d && sh -c "$EDIT")
# prof.py is bench/results/engine-s15-t2/prof.py unchanged (copied to /tmp/W/)
python3 /tmp/W/prof.py $d
for x in $3; do python3 /tmp/W/$x.py $d; done
cd $d && flock -s /tmp/pcache-cpu.lock nice -n 5 sh -c 'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target pcache bench_membw bench_decode_paired' > $d.log 2>&1; tail -1 $d.log

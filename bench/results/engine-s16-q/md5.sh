#!/bin/sh
# md5.sh BIN...: md5 of generate -n 48 --temp 0 on the three models at -t 1/2/3
for m in SmolLM2-135M-Instruct.Q4_1.gguf qwen2.5-coder-0.5b-instruct.gguf qwen2.5-coder-1.5b-instruct-q4_k_m.gguf; do for t in 1 2 3; do
 line="$m -t $t:"
 for b in "$@"; do line="$line $($b generate -m /work/main/models/$m --prompt-file /tmp/s12prompt.txt -n 48 --temp 0 -t $t 2>/dev/null | md5sum | cut -c1-8)"; done
 echo "$line"
done; done

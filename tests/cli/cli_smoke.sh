#!/usr/bin/env bash
# cli_smoke.sh PCACHE MODEL SHARED DATA - the command line as a user meets it: each
# command's output shape, its exit status, and clear errors for bad input.
# Exit 77 (skipped) without the model.
set -u
pc=$1 model=$2 shared=$3 data=$4
[ -r "$model" ] || { echo "model absent: skipped"; exit 77; }
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
json_has() { python3 -c "import json,sys; d=json.loads(sys.stdin.readline()); sys.exit(0 if all(k in d for k in sys.argv[1:]) else 1)" "$@"; }

out=$("$pc" generate -m "$model" -p "The capital of France is" -n 4 --temp 0 --json 2>/dev/null)
echo "$out" | json_has tokens text prompt_tokens ttft_ms decode_tok_s && ok || bad "generate --json fields: $out"
echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if len(d['tokens'])==4 and d['prompt_tokens']==5 else 1)" && ok || bad "generate token counts: $out"

err=$("$pc" generate -m /nonexistent.gguf -p hi 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ $err == *"/nonexistent.gguf"* ]] && ok || bad "missing model: rc=$rc '$err'"

err=$("$pc" generate -m "$model" 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && [[ $err == *"-p"* ]] && ok || bad "missing prompt: rc=$rc"

out=$("$pc" run -m "$model" --schema "$shared/pml-examples/travel.xml" --prompt "$data/prompts/travel_tokyo.xml" \
      -n 4 --temp 0 --json --quiet 2>/dev/null | head -1)
echo "$out" | json_has text tokens ttft_ms cached_tokens fresh_tokens && ok || bad "run --json fields: $out"

out=$("$pc" schema -m "$model" --quiet "$shared/pml-examples/mbti.xml" 2>/dev/null)
[[ $out == *"scaffold: EI"* && $out == *"bytes per token"* ]] && ok || bad "schema layout: $out"

# every command's --help is its own, on stdout; the generation options are the same everywhere
for cmd in generate run schema; do
  out=$("$pc" $cmd --help 2>/dev/null); rc=$?
  [ $rc = 0 ] && [[ $out == "usage: pcache $cmd "* ]] && ok || bad "$cmd --help: rc=$rc '${out%%$'\n'*}'"
done
for cmd in generate run; do
  out=$("$pc" $cmd --help)
  for opt in --seed --stop --min-p --top-k --top-p --temp --repeat-penalty --ignore-eos; do
    [[ $out == *" $opt "* ]] && ok || bad "$cmd --help lacks $opt"
  done
done
# a bad value names the option it was given to
err=$("$pc" run -m "$model" -n abc --schema x.xml --prompt y.xml 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && [[ $err == *"-n expects"*"'abc'"* ]] && ok || bad "-n abc: rc=$rc '$err'"
err=$("$pc" generate -m "$model" -p hi --seed=-1 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && [[ $err == *"--seed expects"* ]] && ok || bad "--seed -1: rc=$rc '$err'"

tmp=$(mktemp -d)
printf '<prompt schema="travel"><travel-plan>\n<overseas><tokyo/></overseas>\n' > "$tmp/broken.xml"
err=$("$pc" run -m "$model" --quiet --schema "$shared/pml-examples/travel.xml" --prompt "$tmp/broken.xml" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ $err == *"broken.xml:"* ]] && ok || bad "malformed prompt: rc=$rc '$err'"
rm -rf "$tmp"

echo "$pass passed, $fail failed"
[ $fail = 0 ]

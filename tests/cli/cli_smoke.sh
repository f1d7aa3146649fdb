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
echo "$out" | json_has text tokens ttft_ms prefill_ms cached_tokens fresh_tokens && ok || bad "run --json fields: $out"
# the prefill (first forward step to first token) is a part of the TTFT, and not an empty one
echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if 0 < d['prefill_ms'] <= d['ttft_ms'] else 1)" &&
  ok || bad "run --json prefill_ms outside (0, ttft_ms]: $out"

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

err=$("$pc" schema -m "$model" --quiet --placeholder "two words" "$shared/pml-examples/mbti.xml" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ $err == *'placeholder "two words" is 2 tokens'* ]] && ok || bad "--placeholder: rc=$rc '$err'"

tmp=$(mktemp -d)
printf '<prompt schema="travel"><travel-plan>\n<overseas><tokyo/></overseas>\n' > "$tmp/broken.xml"
err=$("$pc" run -m "$model" --quiet --schema "$shared/pml-examples/travel.xml" --prompt "$tmp/broken.xml" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ $err == *"broken.xml:"* ]] && ok || bad "malformed prompt: rc=$rc '$err'"
# run --json: one object per prompt, the answer's stop reason, or the error with its position
printf '<prompt schema="travel">\n  <travel-plan>\n    <nowhere/>\n  </travel-plan>\n</prompt>\n' > "$tmp/unknown.xml"
out=$("$pc" run -m "$model" --quiet --schema "$shared/pml-examples/travel.xml" --prompt "$data/prompts/travel_tokyo.xml" \
      --prompt "$tmp/unknown.xml" --prompt "$tmp/missing.xml" -n 3 --temp 0 --json 2>/dev/null); rc=$?
echo "$out" | python3 -c "
import json, sys
rows = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert len(rows) == 3, rows
assert rows[0]['stop'] == 'length' and len(rows[0]['tokens']) == 3, rows[0]
e = rows[1]['error']
assert rows[1]['prompt'].endswith('unknown.xml') and e['file'] == rows[1]['prompt'], rows[1]
assert (e['line'], e['column']) == (3, 5) and 'nowhere' in e['message'], e
e = rows[2]['error']
assert e['line'] is None and e['column'] is None and 'missing.xml' in e['message'], e
" && [ $rc = 1 ] && ok || bad "run --json with failing prompts: rc=$rc '$out'"

# a named pipe anywhere a path is given is refused at once (timeout turns a hang into a failure)
mkfifo "$tmp/pipe"
for args in "run -m $model --quiet --schema $tmp/pipe --prompt $data/prompts/travel_tokyo.xml" \
            "run -m $model --quiet --schema $shared/pml-examples/mbti.xml --prompt $tmp/pipe" \
            "generate -m $model -f $tmp/pipe" "generate -m $tmp/pipe -p hi"; do
  err=$(timeout 60 "$pc" $args 2>&1 >/dev/null); rc=$?
  [ $rc = 1 ] && [[ $err == *"$tmp/pipe: is a FIFO"* ]] && ok || bad "FIFO ($args): rc=$rc '$err'"
done
rm -rf "$tmp"

# the module store: a second process encodes nothing and answers the same; pcache cache ls, verify, rm
# (the schema is three pieces: the system text with BOS, the module, the text after it)
tmp=$(mktemp -d)
cat > "$tmp/s.xml" <<'XML'
<schema name="smoke"><system>You answer briefly.</system><user><module name="doc">The Rhine rises in the Swiss Alps and flows into the North Sea.</module></user></schema>
XML
echo '<prompt schema="smoke"><doc/><user>Where does the Rhine rise?</user></prompt>' > "$tmp/p.xml"
tokens() { python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['tokens'])"; }
fresh=$("$pc" run -m "$model" --quiet --schema "$tmp/s.xml" --prompt "$tmp/p.xml" -n 6 --temp 0 --json 2>/dev/null | tokens)
err=$("$pc" encode -m "$model" --schema "$tmp/s.xml" 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && [[ $err == *"--cache-dir"* ]] && ok || bad "encode without a tier: rc=$rc '$err'"
err=$("$pc" encode -m "$model" --schema "$tmp/s.xml" --cache-dir "$tmp/c" 2>&1 >/dev/null); rc=$?
[ $rc = 0 ] && [[ $err == *"disk: wrote 3 entries"* ]] && ok || bad "encode: rc=$rc '$err'"
out=$("$pc" run -m "$model" --schema "$tmp/s.xml" --prompt "$tmp/p.xml" --cache-dir "$tmp/c" -n 6 --temp 0 --json 2>"$tmp/err")
grep -q "schema 'smoke': 0 tokens encoded.*disk 3" "$tmp/err" && ok || bad "second process encoded: $(cat "$tmp/err")"
echo "$out" | python3 -c "import json,sys; d=json.loads(sys.stdin.readline()); p=d['pieces']; sys.exit(0 if d['encoded_tokens']==0 and len(p)==3 and all(x['source']=='memory' for x in p) else 1)" \
  && ok || bad "run pieces: $out"
[ "$(echo "$out" | tokens)" = "$fresh" ] && ok || bad "answer from the store differs: $(echo "$out" | tokens) vs $fresh"
out=$("$pc" cache ls --cache-dir "$tmp/c" 2>&1); rc=$?
[ $rc = 0 ] && [[ $out == *"smoke:doc#0"* && $out == *"3 entries"* ]] && ok || bad "cache ls: rc=$rc '$out'"
f=$(ls "$tmp"/c/*/*.kv | head -1)
printf 'X' | dd of="$f" bs=1 seek=5000 conv=notrunc status=none
"$pc" cache verify --cache-dir "$tmp/c" >/dev/null 2>&1; rc=$?
[ $rc = 1 ] && ok || bad "cache verify of a damaged entry: rc=$rc"
out=$("$pc" cache rm --bad --cache-dir "$tmp/c" 2>&1); rc=$?
[ $rc = 0 ] && [[ $out == *"removed 1 of 3"* ]] && ok || bad "cache rm --bad: rc=$rc '$out'"
out=$("$pc" run -m "$model" --schema "$tmp/s.xml" --prompt "$tmp/p.xml" --cache-dir "$tmp/c" -n 6 --temp 0 --json 2>"$tmp/err")
grep -q "encoded 1" "$tmp/err" && [ "$(echo "$out" | tokens)" = "$fresh" ] && ok || bad "after rm --bad: $(cat "$tmp/err")"
out=$("$pc" cache rm --all --cache-dir "$tmp/c" 2>&1 && "$pc" cache ls --cache-dir "$tmp/c" 2>&1)
[[ $out == *"removed 3 of 3"* && $out == *"0 entries"* ]] && ok || bad "cache rm --all: '$out'"
err=$("$pc" cache rm --cache-dir "$tmp/c" 2>&1); rc=$?
[ $rc = 2 ] && [[ $err == *"say which entries"* ]] && ok || bad "cache rm without a selection: rc=$rc '$err'"
err=$("$pc" cache tidy --cache-dir "$tmp/c" 2>&1); rc=$?
[ $rc = 2 ] && [[ $err == *"expected ls, verify or rm"* ]] && ok || bad "cache tidy: rc=$rc '$err'"
err=$("$pc" run -m "$model" --schema "$tmp/s.xml" --prompt "$tmp/p.xml" --cache-mem 12X 2>&1); rc=$?
[ $rc = 2 ] && [[ $err == *"--cache-mem expects a size"* ]] && ok || bad "--cache-mem 12X: rc=$rc '$err'"
for cmd in encode cache; do
  out=$("$pc" $cmd --help 2>/dev/null); rc=$?
  [ $rc = 0 ] && [[ $out == "usage: pcache $cmd "* ]] && ok || bad "$cmd --help: rc=$rc"
done
rm -rf "$tmp"

echo "$pass passed, $fail failed"
[ $fail = 0 ]

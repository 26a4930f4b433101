#!/usr/bin/env bash
# test_train_mqar.sh — training learns: a two-layer attention model trained by `bmojo train` on
# MQAR (sequence 32, 4 key-value pairs, vocabulary 256) reaches >= 99 % accuracy on the held-out
# test set (3000 examples of another seed), measured again by `bmojo eval` on the saved checkpoint.
# Then an attention-free Mamba of tiny state (d_state 4) and a B'MOJO with eidetic memory train
# for the same short budget and their accuracies are logged side by side: a comparison for the
# reader, with no assertion on which wins (docs/training.md, "Learning MQAR").
set -u
BIN=${BMOJO_BIN:?BMOJO_BIN must point to the bmojo binary}
SRC=${BMOJO_SOURCE_ROOT:-.}
TMP=$(mktemp -d /tmp/bmojo-mqar.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

DATA="mqar:vocab=256,seq=32,pairs=4"
HP=(--data "$DATA" -b 32 --lr 1e-2 --warmup 50 --weight-decay 0.1 --seed 1 --log-every 100)
"$BIN" --version  # the commit; each run's log records the device and the command

# accuracy of the last evaluation in a log
last_acc() { python3 -c "import json,sys; e=[json.loads(l) for l in open(sys.argv[1])]; e=[r for r in e if 'eval_accuracy' in r]; print('%.4f %d' % (e[-1]['eval_accuracy'], e[-1]['step']))" "$1"; }

t0=$(date +%s)
if timeout 1200 "$BIN" train --config "$SRC/configs/mqar/attention-2l.yaml" "${HP[@]}" --steps 3000 \
     --eval-every 200 --stop-accuracy 0.99 -o "$TMP/attn" >"$TMP/attn.out" 2>&1; then
  read -r acc step < <(last_acc "$TMP/attn/train.jsonl")
  grep "^eval" "$TMP/attn.out" | sed 's/^/      /'
  echo "      attention-2l: accuracy $acc after $step steps, $(( $(date +%s) - t0 )) s"
  python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.99 else 1)" &&
    ok "attention-2l learns MQAR: test accuracy $acc >= 0.99 at step $step" ||
    bad "attention-2l reached only $acc test accuracy in $step steps"
  if "$BIN" eval -m "$TMP/attn/latest" --data "$DATA" --json >"$TMP/eval.json" 2>"$TMP/eval.err"; then
    python3 - "$TMP/eval.json" <<'PY' && ok "bmojo eval of the checkpoint agrees: $(cat "$TMP/eval.json" | cut -c1-160)" || bad "bmojo eval of the checkpoint: $(cat "$TMP/eval.json")"
import json, sys
e = json.load(open(sys.argv[1]))
assert e['rows'] == 3000 and e['scored'] == 12000 and e['accuracy'] >= 0.99, e
PY
  else bad "bmojo eval of the checkpoint failed: $(cat "$TMP/eval.err")"; fi
else bad "training attention-2l failed: $(tail -c 500 "$TMP/attn.out")"; fi

# the comparison: the same data and hyperparameters, 300 steps each
for m in attention-2l mamba-2l bmojo-2l; do
  t0=$(date +%s)
  if timeout 900 "$BIN" train --config "$SRC/configs/mqar/$m.yaml" "${HP[@]}" --steps 300 --eval-rows 1000 \
       -o "$TMP/cmp-$m" >"$TMP/cmp.out" 2>&1; then
    read -r acc step < <(last_acc "$TMP/cmp-$m/train.jsonl")
    params=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['params'])" "$TMP/cmp-$m/train.jsonl")
    ok "comparison, 300 steps: $m ($params parameters): test accuracy $acc ($(( $(date +%s) - t0 )) s)"
  else bad "comparison: training $m failed: $(tail -c 400 "$TMP/cmp.out")"; fi
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

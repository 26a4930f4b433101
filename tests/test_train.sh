#!/usr/bin/env bash
# test_train.sh — `bmojo train` and `bmojo eval` as a user meets them: a run on MQAR and on a token
# file, its log and checkpoints (loadable by `logits`), a resume that gives bit-identical weights to
# an uninterrupted run, Ctrl-C that saves and exits 130, a loss going NaN stopped with the step
# named, and bad input of every kind (each a clear message and a non-zero exit; a checkpoint already
# on disk is never left half-written). Learning itself is tests/test_train_mqar.sh.
set -u
BIN=${BMOJO_BIN:?BMOJO_BIN must point to the bmojo binary}
SRC=${BMOJO_SOURCE_ROOT:-.}
TMP=$(mktemp -d /tmp/bmojo-train.XXXXXX)
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

# expect_fail WORD DESCRIPTION -- CMD...: CMD must exit 1..127 and print WORD (case-insensitive) on stderr
expect_fail() {
  local word=$1 what=$2; shift 3
  timeout 300 "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  last_rc=$rc
  if [ $rc -eq 0 ]; then bad "$what: exited 0";
  elif [ $rc -ge 124 ]; then bad "$what: crashed or hung (exit $rc): $(head -c 300 "$TMP/err")";
  elif grep -q "Sanitizer\|runtime error:" "$TMP/err"; then bad "$what: sanitizer report: $(grep -m1 "Sanitizer\|runtime error:" "$TMP/err")";
  elif ! grep -qi -- "$word" "$TMP/err"; then bad "$what: message lacks '$word': $(head -c 300 "$TMP/err")";
  else ok "$what (exit $rc): $(head -n 1 "$TMP/err" | cut -c1-150)"; fi
}
expect_exit() {
  local want=$1 f0=$fail; shift
  expect_fail "$@"
  if [ $fail -eq $f0 ] && [ "$last_rc" != "$want" ]; then pass=$((pass - 1)); bad "$2: exit $last_rc, expected $want"; fi
}
# run DESCRIPTION -- CMD...: CMD must succeed
run() {
  local what=$1; shift 2
  if timeout 600 "$@" >"$TMP/out" 2>"$TMP/err"; then ok "$what"; return 0; fi
  bad "$what: exit $?: $(tail -c 400 "$TMP/err")"; return 1
}

CFG="$SRC/configs/bmojo-tiny.yaml"
MQ="mqar:vocab=64,seq=32,pairs=4"
common=(--config "$CFG" --data "$MQ" -b 8 --lr 3e-3 --warmup 2 --seed 5 --no-progress)

# ---- a run: log, checkpoints, latest, loadable by logits, eval ----
if run "train 6 steps on MQAR with a checkpoint every 2 (keep 2)" -- "$BIN" train "${common[@]}" --steps 6 \
     --save-every 2 --keep 2 --eval-every 3 --eval-rows 16 -o "$TMP/a"; then
  steps=$(ls -d "$TMP/a"/step-* | wc -l)
  [ "$steps" = 2 ] && [ -d "$TMP/a/step-00000006" ] && [ -d "$TMP/a/step-00000004" ] && ok "two newest step folders kept ($steps)" || bad "step folders: $(ls "$TMP/a")"
  [ "$(readlink "$TMP/a/latest")" = step-00000006 ] && ok "latest -> step-00000006" || bad "latest -> $(readlink "$TMP/a/latest")"
  ls -a "$TMP/a" | grep -q '\.tmp\.\|\.old\.' && bad "temporary folders left: $(ls -a "$TMP/a")" || ok "no temporary folder left"
  python3 - "$TMP/a/train.jsonl" >"$TMP/pyout" 2>&1 <<'PY' && ok "log: $(cat "$TMP/pyout")" || bad "log: $(cat "$TMP/pyout")"
import json, sys, math
rows = [json.loads(l) for l in open(sys.argv[1])]
start = rows[0]
assert start['event'] == 'start' and start['seed'] == 5 and start['commit'] and start['device'] and 'train' in start['command'], start
steps = [r for r in rows if 'loss' in r]
assert [r['step'] for r in steps] == [1, 2, 3, 4, 5, 6], steps
assert all(math.isfinite(r['loss']) and r['lr'] > 0 and r['grad_norm'] > 0 and r['tokens_per_s'] >= 0 for r in steps)
# the step's parts: each timed, the passes the largest (the optimizer of a 2-layer model is tiny)
# after the first step, which also pays one-time costs (each kernel's first launch: 148 ms of
# optimizer against 144 ms of passes once on POCL)
assert all(r['data_ms'] >= 0 and r['pass_ms'] > 0 and r['optim_ms'] > 0 for r in steps), steps
assert all(r['pass_ms'] > r['optim_ms'] for r in steps[1:]), steps
assert steps[0]['lr'] < steps[1]['lr'], 'warm-up'
assert steps[-1]['lr'] < steps[2]['lr'], 'cosine decay'
evals = [r for r in rows if 'eval_loss' in r]
assert [r['step'] for r in evals] == [3, 6] and all(0 <= r['eval_accuracy'] <= 1 for r in evals), evals
ck = [r for r in rows if 'checkpoint' in r]
assert [r['step'] for r in ck] == [2, 4, 6], ck
print('%d steps, evals at 3 and 6, checkpoints at 2, 4, 6' % len(steps))
PY
  python3 - "$TMP/ids.st" <<'PY'
import json, struct, sys
ids = [3, 1, 4, 1, 5, 9, 2, 6]
h = json.dumps({'input_ids': {'dtype': 'I32', 'shape': [len(ids)], 'data_offsets': [0, 4 * len(ids)]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + struct.pack('<%di' % len(ids), *ids))
PY
  run "logits reads a checkpoint folder" -- "$BIN" logits -m "$TMP/a/latest" -i "$TMP/ids.st" -o "$TMP/l.st"
  run "eval reads a checkpoint folder (MQAR accuracy)" -- "$BIN" eval -m "$TMP/a/latest" --data "$MQ" --rows 24 -b 8 --json &&
    python3 -c "import json,sys; e=json.load(open('$TMP/out')); assert e['rows']==24 and e['scored']==96 and 0<=e['accuracy']<=1, e" &&
    ok "eval: 24 rows, 96 scored positions"
  expect_fail "a/latest" "eval of the run's folder itself: the message names its newest checkpoint" -- \
    "$BIN" eval -m "$TMP/a" --data "$MQ" --rows 24
fi

# ---- eval --eidetic: the positions each B'MOJO sublayer's eidetic memory held at chunk starts ----
# bmojo-2l: window 8 (chunks of 8), 8 eidetic tokens; 20 rows in batches of 8 (a short last batch)
if run "eval --eidetic of a 2-layer B'MOJO" -- "$BIN" eval --config "$SRC/configs/mqar/bmojo-2l.yaml" \
     --data mqar:vocab=256,seq=32,pairs=4 --rows 20 -b 8 --eidetic "$TMP/eid.jsonl"; then
  python3 - "$TMP/eid.jsonl" "$TMP/out" >"$TMP/pyout" 2>&1 <<'PY' && ok "eidetic dump: $(cat "$TMP/pyout")" || bad "eidetic dump: $(cat "$TMP/pyout")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
head, rows = rows[0], rows[1:]
assert head['event'] == 'start' and head['commit'] and head['device'] and '--eidetic' in head['command'] and head['rows'] == 20, head
assert sorted((r['row'], r['layer']) for r in rows) == [(i, l) for i in range(20) for l in (0, 1)], 'one object per row and layer'
for r in rows:
    assert r['chunk_len'] == 8 and r['slots'] == 8 and r['pairs'] == 4 and len(r['chunks']) == 4, r
    assert len(r['queries']) == 4 and sorted(r['query_pairs']) == [0, 1, 2, 3], r  # every pair queried once
    assert all(8 <= q < 32 for q in r['queries']), r
    for c, held in enumerate(r['chunks']):
        # at chunk start s = 8c the memory holds min(8, s) distinct earlier positions
        assert len(held) == min(8, 8 * c) and len(set(held)) == len(held) and all(0 <= p < 8 * c for p in held), (c, r)
out = open(sys.argv[2]).read()
assert out.count('eidetic memory of sublayer') == 2 and 'find its key' in out, out
print('20 rows x 2 sublayers, sets of min(8, s) earlier positions, summaries printed')
PY
fi
expect_fail "no sublayer with eidetic memory" "eval --eidetic of a model without B'MOJO" -- "$BIN" eval \
  --config "$SRC/configs/mqar/mamba-2l.yaml" --data mqar:vocab=256,seq=32,pairs=4 --rows 4 --eidetic "$TMP/x.jsonl"
expect_fail "cannot write" "eval --eidetic into a missing folder" -- "$BIN" eval \
  --config "$SRC/configs/mqar/bmojo-2l.yaml" --data mqar:vocab=256,seq=32,pairs=4 --rows 4 --eidetic "$TMP/no/such/e.jsonl"

# ---- the recall study's driver (tools/mqar_sweep.py) and table (tools/plot_mqar.py --table) ----
cat >"$TMP/study.json" <<'JSON'
{"data": {"vocab": 64, "seq": 16, "power_a": 0.01, "train": 64, "test": 16}, "panels": [2],
 "protocol": {"batch": 32, "epochs": 1, "lrs": [0.003], "seeds": [1, 2], "warmup_frac": 0, "weight_decay": 0.1,
              "min_lr_frac": 0.1, "eval_rows": 16, "stop_accuracy": 0.99},
 "families": {"attention": {"head_dim": 8, "widths": [16], "layers": [{"type": "attention", "heads": "auto"}]}},
 "ablation": {"family": "attention", "width": 16, "panel": 2, "eidetic_tokens": []}}
JSON
if run "mqar_sweep: the first seed only (--only s1)" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study.json" -o "$TMP/sweep" --bmojo "$BIN" --only s1 &&
   [ "$(grep -c '^\[' "$TMP/out")" = 1 ] && grep -q "^\[1\] main/pairs2/attention-d16/lr0.003-s1:" "$TMP/out" &&
   run "mqar_sweep: again, the rest" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study.json" -o "$TMP/sweep" --bmojo "$BIN" &&
   [ "$(grep -c '^\[' "$TMP/out")" = 1 ] && grep -q "^\[1\] main/pairs2/attention-d16/lr0.003-s2:" "$TMP/out" &&
   run "mqar_sweep: a third call runs nothing" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study.json" -o "$TMP/sweep" --bmojo "$BIN" &&
   ! grep -q '^\[' "$TMP/out"; then
  python3 - "$TMP/sweep/results.jsonl" >"$TMP/pyout" 2>&1 <<'PY' && ok "mqar_sweep: $(cat "$TMP/pyout")" || bad "mqar_sweep: $(cat "$TMP/pyout")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r['seed'] for r in rows) == [1, 2], rows
for r in rows:
    # one full-attention sublayer, 2 heads of 8 at d_model 16: K and V of the 16-token context
    assert r['memory_floats'] == 2 * 2 * 8 * 16 and r['steps'] == 2 and 0 <= r['accuracy'] <= 1 and r['commit'], r
print('2 runs resumably, memory %d floats, 2 steps each, accuracy %.3f / %.3f' % (rows[0]['memory_floats'], rows[0]['accuracy'], rows[1]['accuracy']))
PY
  python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" --table >"$TMP/table" 2>&1 &&
    grep -q "| 2 | attention-d16 | 512 |" "$TMP/table" && ok "plot_mqar --table: one point, the best lr per seed" || bad "plot_mqar --table: $(head -c 300 "$TMP/table")"
  python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" --table --panels 2 2>&1 | grep -q "| 2 | attention-d16 | 512 |" &&
    ! python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" --table --panels 3 >/dev/null 2>&1 &&
    ok "plot_mqar --panels: keeps the panels named, refuses a selection with no runs" || bad "plot_mqar --panels"
  # several results files read as one (a control study beside a grid), --families keeps some
  sed 's/"family": "attention", "model": "attention-d16"/"family": "ctrl", "model": "ctrl-d16"/' \
    "$TMP/sweep/results.jsonl" >"$TMP/ctrl.jsonl"
  python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" "$TMP/ctrl.jsonl" --table >"$TMP/table2" 2>&1 &&
    grep -q "| 2 | attention-d16 | 512 |" "$TMP/table2" && grep -q "| 2 | ctrl-d16 | 512 |" "$TMP/table2" &&
    python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" "$TMP/ctrl.jsonl" --table --families ctrl >"$TMP/table3" 2>&1 &&
    grep -q "| 2 | ctrl-d16 | 512 |" "$TMP/table3" && ! grep -q "attention-d16" "$TMP/table3" &&
    ! python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" --table --families ctrl >/dev/null 2>&1 &&
    ok "plot_mqar: two results files as one; --families keeps the families named, refuses none" ||
    bad "plot_mqar: two files / --families: $(head -c 300 "$TMP/table2") / $(head -c 300 "$TMP/table3")"
  python3 "$SRC/tools/plot_mqar.py" "$TMP/sweep/results.jsonl" --runs >"$TMP/runs" 2>&1 &&
    [ "$(grep -c '^| main/pairs2/attention-d16/lr0.003-s[12] | 512 |' "$TMP/runs")" = 2 ] &&
    ok "plot_mqar --runs: a line per run, named by its folder" || bad "plot_mqar --runs: $(head -c 400 "$TMP/runs")"
else bad "mqar_sweep: $(tail -c 300 "$TMP/out") $(tail -c 300 "$TMP/err")"; fi

# The two-step protocol (sweep_seed: the other seeds at the rate the sweep chose, edge_lrs: with two
# rates the best is always at an edge, so one more rate beyond it: 1e-4, or 1e30, which diverges and
# is a result, not a failure), an ablation run that is a main run (trained once, listed in both
# groups) and --stop-after.
cat >"$TMP/study2.json" <<'JSON'
{"data": {"vocab": 64, "seq": 16, "power_a": 0.01, "train": 64, "test": 16}, "panels": [2],
 "protocol": {"batch": 32, "epochs": 1, "lrs": [0.001, 0.03], "edge_lrs": [0.0001, 1e30], "seeds": [1, 2], "sweep_seed": 1, "warmup_frac": 0,
              "weight_decay": 0.1, "min_lr_frac": 0.1, "eval_rows": 16, "stop_accuracy": 0.99},
 "families": {"bmojo": {"head_dim": 8, "widths": [16], "layers": [{"type": "bmojo", "window": 4, "fading_tokens": 2,
              "eidetic_tokens": 2, "heads": "auto", "d_state": 4, "d_conv": 4, "expand": 2, "dt_rank": "auto"}]}},
 "ablation": {"family": "bmojo", "width": 16, "panel": 2, "eidetic_tokens": [0, 2]}}
JSON
if run "mqar_sweep --stop-after: starts nothing once the time is up" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study2.json" \
     -o "$TMP/sweep2" --bmojo "$BIN" --stop-after 1e-9 && grep -q "0 of 12 runs finished" "$TMP/out" &&
   run "mqar_sweep: sweep seed, then seed 2 at its best rate" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study2.json" \
     -o "$TMP/sweep2" --bmojo "$BIN" && grep -q "12 of 12 runs finished" "$TMP/out" &&
   run "mqar_sweep: again, nothing to run" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study2.json" -o "$TMP/sweep2" \
     --bmojo "$BIN" && ! grep -q "^\[" "$TMP/out" &&
   cp "$TMP/sweep2/results.jsonl" "$TMP/results-before" &&
   run "mqar_sweep --dry-run of the finished study: no command, every run counted, results.jsonl kept" -- \
     python3 "$SRC/tools/mqar_sweep.py" "$TMP/study2.json" -o "$TMP/sweep2" --bmojo "$BIN" --dry-run &&
   grep -q "12 of 12 runs finished (dry run" "$TMP/out" && ! grep -q -- "--steps" "$TMP/out" &&
   cmp -s "$TMP/results-before" "$TMP/sweep2/results.jsonl"; then
  python3 - "$TMP/sweep2" >"$TMP/pyout" 2>&1 <<'PY' && ok "mqar_sweep: $(cat "$TMP/pyout")" || bad "mqar_sweep two-step: $(cat "$TMP/pyout")"
import glob, json, os, sys
out = sys.argv[1]
logs = sorted(glob.glob(os.path.join(out, "*", "*", "*", "*", "train.jsonl")))
assert len(logs) == 8, logs  # main: 2 rates + the edge + seed 2; e0: the same; e2 is the main model
rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl"))]
assert len(rows) == 12, rows
for group, model in (("main", "bmojo-d16"), ("ablation", "bmojo-d16-e0")):
    mine = [r for r in rows if r["group"] == group and r["model"] == model]
    s1 = {r["lr"]: r.get("accuracy", 0.0) for r in mine if r["seed"] == 1}
    s2 = [r["lr"] for r in mine if r["seed"] == 2]
    base = max([0.001, 0.03], key=lambda lr: s1[lr])  # the smaller rate on a tie
    edge = 0.0001 if base == 0.001 else 1e30
    best = max(sorted(s1), key=lambda lr: s1[lr])
    assert sorted(s1) == sorted([0.001, 0.03, edge]) and s2 == [best], (group, s1, s2)
    assert all(r.get("ended") == "diverged" for r in mine if r["lr"] == 1e30), mine
e2 = sorted(r["run"] for r in rows if r["model"] == "bmojo-d16-e2")
assert e2 == sorted(r["run"] for r in rows if r["model"] == "bmojo-d16"), e2
print("8 runs for 12 results; seed 2 at the sweep's best rate, its edge included; the e2 ablation point is the main model's runs")
PY
else bad "mqar_sweep two-step: $(tail -c 300 "$TMP/out") $(tail -c 300 "$TMP/err")"; fi

# The sweep's edge runs (protocol edge_lrs): the choice on made-up logs, every case of it.
python3 - "$SRC/tools" "$TMP/edge" >"$TMP/pyout" 2>&1 <<'PY' && ok "mqar_sweep edge_lrs: $(cat "$TMP/pyout")" || bad "mqar_sweep edge_lrs: $(cat "$TMP/pyout")"
import json, os, sys
sys.path.insert(0, sys.argv[1])
import mqar_sweep as ms
root = sys.argv[2]
study = {"data": {"vocab": 64, "seq": 16, "power_a": 0.01, "train": 64, "test": 16}, "panels": [2],
         "protocol": {"lrs": [0.01, 0.1, 1.0], "edge_lrs": [0.001, 10.0], "seeds": [1, 2], "sweep_seed": 1},
         "families": {"swa": {"widths": [16], "head_dim": 8, "layers": [{"type": "attention", "heads": "auto"}]}}}
def log(r, acc):
    """A finished run's log: its evaluation, or (acc None) a loss that blew up before any"""
    d = ms.run_dir(out, r); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "train.jsonl"), "w") as f:
        if acc is None:
            f.write(json.dumps({"note": "failed while training: the loss is nan at step 2: training diverged"}) + "\n")
        else:
            f.write(json.dumps({"step": 1, "eval_accuracy": acc}) + "\n" + json.dumps({"note": "done: 1 steps"}) + "\n")
def case(accs, want_edge, edge_acc=None):
    global out
    out = os.path.join(root, str(len(os.listdir(root)) if os.path.isdir(root) else 0))  # a fresh study folder
    runs = ms.expand(study)
    assert [r["lr"] for r in runs] == [0.01, 0.1, 1.0, ms.EDGE, None], runs
    edge, s2 = runs[3], runs[4]
    for r, a in zip(runs[:3], accs):
        log(r, a)
    assert ms.resolve_edge(study, out, runs, edge) == want_edge, (accs, want_edge)
    if want_edge is False:
        return ms.resolve_lr(study, out, runs, s2)
    assert ms.resolve_lr(study, out, runs, s2) is None  # waits for the edge run
    edge["lr"] = want_edge; log(edge, edge_acc)
    edge["lr"] = ms.EDGE
    return ms.resolve_lr(study, out, runs, s2)
assert case([0.5, 0.9, 0.2], False) == 0.1
assert case([0.9, 0.5, 0.2], 0.001, 0.95) == 0.001
assert case([0.9, 0.5, 0.2], 0.001, 0.1) == 0.01
assert case([0.1, 0.5, 0.9], 10.0, None) == 1.0  # the edge run diverged: a finished run, accuracy 0
print("inside: no edge run; lowest best: 1e-3 tried, chosen only when better; highest best: 10 tried, its divergence a result")
PY

# Thinned logs (tools/thin_train_log.py, as mqar_slice.sh packs them) still count as finished runs
# and give the same results.
cp "$TMP/sweep2/results.jsonl" "$TMP/results-before"
if python3 "$SRC/tools/thin_train_log.py" --every 2 $(find "$TMP/sweep2" -name train.jsonl) &&
   run "mqar_sweep: thinned logs, nothing to run" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study2.json" \
     -o "$TMP/sweep2" --bmojo "$BIN" && ! grep -q '^\[' "$TMP/out" &&
   python3 - "$TMP/results-before" "$TMP/sweep2/results.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert [(r["run"], r.get("accuracy"), r["steps"]) for r in a] == [(r["run"], r.get("accuracy"), r["steps"]) for r in b]
PY
then ok "thin_train_log: the same results from thinned logs"; else bad "thin_train_log: results changed"; fi

# A log left by a run cut before its first checkpoint (or on another machine) is set aside, not appended to.
cut="$TMP/sweep3/main/pairs2/bmojo-d16/lr0.001-s1"
mkdir -p "$cut" && echo '{"event": "start", "step": 0, "note": "a cut run"}' >"$cut/train.jsonl"
if run "mqar_sweep: a cut run starts again" -- python3 "$SRC/tools/mqar_sweep.py" "$TMP/study2.json" -o "$TMP/sweep3" \
     --bmojo "$BIN" --only bmojo-d16/lr0.001-s1 &&
   [ "$(grep -c '"event": "start"' "$cut/train.jsonl")" = 1 ] && ! grep -q "a cut run" "$cut/train.jsonl" &&
   grep -q "a cut run" "$cut"/train.jsonl.cut-*; then ok "mqar_sweep: the cut run's log set aside, a new one written"
else bad "mqar_sweep: a cut run's log: $(ls "$cut" 2>&1 | tr '\n' ' ')"; fi

# ---- resume: bit-identical to an uninterrupted run ----
run "uninterrupted run of 8 steps" -- "$BIN" train "${common[@]}" --steps 8 -o "$TMP/full" &&
run "the same run stopped after 5 steps (a shorter --steps changes the schedule: use --save-every)" -- \
  "$BIN" train "${common[@]}" --steps 8 --save-every 5 --keep 5 -o "$TMP/part"
rm -rf "$TMP/part/step-00000008"; ln -sfn step-00000005 "$TMP/part/latest"
run "resumed from step 5" -- "$BIN" train --resume "$TMP/part" --no-progress &&
if cmp -s "$TMP/full/step-00000008/model.safetensors" "$TMP/part/step-00000008/model.safetensors" &&
   cmp -s "$TMP/full/step-00000008/optimizer.safetensors" "$TMP/part/step-00000008/optimizer.safetensors"; then
  ok "resume: weights and optimizer state bit-identical to the uninterrupted run"
else bad "resume: the weights differ from the uninterrupted run"; fi
# the debugging layout (every activation its own allocation) computes the same bits
run "the same 8 steps with BMOJO_ARENA_SEPARATE=1 and BMOJO_SYNC=1" -- \
  env BMOJO_ARENA_SEPARATE=1 BMOJO_SYNC=1 "$BIN" train "${common[@]}" --steps 8 -o "$TMP/separate" &&
if cmp -s "$TMP/full/step-00000008/model.safetensors" "$TMP/separate/step-00000008/model.safetensors"; then
  ok "BMOJO_ARENA_SEPARATE=1: weights bit-identical to the arena's sub-buffers"
else bad "BMOJO_ARENA_SEPARATE=1: the weights differ"; fi
grep -q '"event": "start", [^}]*"step": 5' "$TMP/part/train.jsonl" && ok "the resumed run's log records its start at step 5" || bad "log of the resume"
expect_exit 2 "nothing to do" "resume of a finished run" -- "$BIN" train --resume "$TMP/full" --no-progress
expect_exit 2 "cannot be given with --resume" "resume with a training option" -- "$BIN" train --resume "$TMP/full" --lr 1
run "resume with a longer --steps continues" -- "$BIN" train --resume "$TMP/full" --steps 9 --no-progress
[ -d "$TMP/full/step-00000009" ] && ok "step 9 written" || bad "no step 9"

# ---- a token file ----
python3 - "$TMP/tok.bin" <<'PY'
import struct, sys, random
random.seed(3); n = 3000
ids = [random.randrange(320) for _ in range(n)]
open(sys.argv[1], 'wb').write(b'BMOJOTOK' + struct.pack('<IIQ', 1, 2, n) + struct.pack('<%dH' % n, *ids))
PY
run "train on a token file (micro-batches of 2 accumulate a batch of 4)" -- "$BIN" train --config "$CFG" \
  --data "tokens:$TMP/tok.bin,val=$TMP/tok.bin" -b 4 --micro-batch 2 -T 16 --tokens 200 --no-progress -o "$TMP/t" &&
  grep -q '"steps": 4' "$TMP/t/train.jsonl" && ok "--tokens 200 at 4 x 16 per step: 4 steps" || bad "steps from --tokens"
run "eval: perplexity on a token file" -- "$BIN" eval -m "$TMP/t/latest" --data "tokens:$TMP/tok.bin" -T 16 --rows 20 &&
  grep -q "perplexity" "$TMP/out" && ok "eval prints perplexity: $(cut -c1-150 "$TMP/out")"

# ---- Ctrl-C saves and exits 130 ----
"$BIN" train "${common[@]}" --steps 100000 -o "$TMP/int" >"$TMP/int.out" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$TMP/int/train.jsonl" ] && grep -q '"step": 2,' "$TMP/int/train.jsonl" && break; sleep 0.2; done
kill -INT $pid
wait $pid
rc=$?
if [ $rc = 130 ] && [ -f "$TMP/int/latest/model.safetensors" ] && grep -q "interrupted at step" "$TMP/int.out"; then
  ok "Ctrl-C: checkpoint saved at $(readlink "$TMP/int/latest"), exit 130"
else bad "Ctrl-C: exit $rc, $(tail -c 300 "$TMP/int.out")"; fi
grep -q '"stopped": "interrupted"' "$TMP/int/latest/train_state.json" && ok "the checkpoint says it was interrupted" || bad "train_state of the interrupted run"

# ---- a loss that goes NaN stops the run naming the step ----
expect_fail "diverged" "a learning rate of 1e30: the run stops" -- "$BIN" train "${common[@]}" --lr 1e30 --steps 50 -o "$TMP/nan"
grep -qi "at step [0-9]" "$TMP/err" && ok "the message names the step: $(grep -io 'is [-a-z0-9.]* at step [0-9]*' "$TMP/err" | head -1)" || bad "no step in: $(cat "$TMP/err")"
[ ! -e "$TMP/nan/latest" ] && ok "nothing saved from a diverged run" || bad "a diverged run saved a checkpoint"
grep -q '"note": "failed while training: .*diverged' "$TMP/nan/train.jsonl" && ok "the log records how the run ended" ||
  bad "no failure note in the log: $(tail -c 300 "$TMP/nan/train.jsonl")"

# ---- bad input ----
python3 - "$TMP" <<'PY'
import struct, sys
d = sys.argv[1]
def w(name, b): open(d + '/' + name, 'wb').write(b)
hdr = lambda v, dt, n: b'BMOJOTOK' + struct.pack('<IIQ', v, dt, n)
w('big.bin', hdr(1, 2, 100) + struct.pack('<100H', *([5] * 57 + [320] + [5] * 42)))
w('trunc.bin', hdr(1, 2, 100) + struct.pack('<50H', *([5] * 50)))
w('magic.bin', b'NOTATOKF' + struct.pack('<IIQ', 1, 2, 4) + struct.pack('<4H', 1, 2, 3, 4))
w('version.bin', hdr(9, 2, 4) + struct.pack('<4H', 1, 2, 3, 4))
PY
t=(train --config "$CFG" --steps 2 -b 2 -T 8 --no-progress -o "$TMP/bad")
expect_fail "320" "a token file with an id >= vocab (named with its position)" -- "$BIN" "${t[@]}" --data "tokens:$TMP/big.bin"
grep -q "57" "$TMP/err" && ok "the position of the bad id is named" || bad "position not named: $(cat "$TMP/err")"
expect_fail "trunc\|size\|count" "a truncated token file" -- "$BIN" "${t[@]}" --data "tokens:$TMP/trunc.bin"
expect_fail "magic" "a token file with a wrong header" -- "$BIN" "${t[@]}" --data "tokens:$TMP/magic.bin"
expect_fail "version" "a token file of an unknown version" -- "$BIN" "${t[@]}" --data "tokens:$TMP/version.bin"
expect_fail "vocab\|key" "an MQAR spec with an unknown key" -- "$BIN" "${t[@]}" --data "mqar:vocabulary=64"
expect_exit 2 "learning rate must be > 0" "--lr 0" -- "$BIN" "${t[@]}" --data "$MQ" --lr 0
expect_exit 2 "learning rate must be > 0" "--lr -1" -- "$BIN" "${t[@]}" --data "$MQ" --lr -1
expect_exit 2 "-b = 0" "batch 0" -- "$BIN" train --config "$CFG" --data "$MQ" --steps 2 -b 0 -o "$TMP/bad"
expect_exit 2 "micro-batch" "a micro-batch that does not divide the batch" -- "$BIN" train --config "$CFG" --data "$MQ" --steps 2 -b 6 --micro-batch 4 -o "$TMP/bad"
expect_exit 2 "--steps" "neither --steps nor --tokens" -- "$BIN" train --config "$CFG" --data "$MQ" -o "$TMP/bad"
expect_exit 2 "-o RUN_DIR" "no run folder" -- "$BIN" train --config "$CFG" --data "$MQ" --steps 2
expect_fail "fixes it at 32" "-T that disagrees with the MQAR spec's seq" -- "$BIN" train --config "$CFG" --data "$MQ" --steps 2 -T 16 -o "$TMP/bad"
# a sequence whose activations cannot fit the device (a full-attention model of 4 million tokens)
expect_fail "needs .* GiB\\|maximum allocation" "a sequence too long for the device's memory (full attention, 2^18 tokens x 8)" -- "$BIN" train --config "$SRC/configs/swa-130m.yaml" --data "mqar:vocab=32000,seq=262144,pairs=4" --steps 1 -b 8 -o "$TMP/bad"
# an unwritable run folder is refused before any training (a path through a file: refused for root too)
touch "$TMP/file"
expect_fail "cannot create the run folder" "a run folder that cannot be created" -- "$BIN" "${t[@]}" --data "$MQ" -o "$TMP/file/run"
[ ! -e "$TMP/bad/latest" ] && ok "no checkpoint from refused runs" || bad "a refused run saved a checkpoint"
# a checkpoint already on disk is never left half-written: a save that fails part-way (after the
# model file; injected, since a disk filling up cannot be provoked portably: a file-size limit also
# stops POCL's compiler) leaves the step folders and latest as they were
before=$(cat "$TMP/a/step-00000006"/* | md5sum)
expect_fail "step-00000007" "a checkpoint whose write fails part-way" -- env BMOJO_TEST_FAULT=checkpoint-after-model "$BIN" train --resume "$TMP/a" --steps 7 --no-progress
after=$(cat "$TMP/a/step-00000006"/* | md5sum)
[ "$before" = "$after" ] && [ "$(readlink "$TMP/a/latest")" = step-00000006 ] && [ ! -e "$TMP/a/step-00000007" ] &&
  ! ls -a "$TMP/a" | grep -q '\.tmp\.' && ok "step 6 untouched, latest still step 6, no step 7, no temporary folder" ||
  bad "after the failed save: $(ls -a "$TMP/a"), latest -> $(readlink "$TMP/a/latest")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

#!/usr/bin/env bash
# test_bench.sh — `bmojo bench` end to end on the tiny configs: the markdown table (header, one row
# per test, depth sweep), JSON and JSON lines (llama-bench field names, values matching the
# request, samples per repetition, rates consistent with times, JSON escaping of odd strings),
# `--ops --ops-scale small` (both device limits and every op with a positive rate),
# tools/plot_bench.py (the standard-library SVG path, and the PNG/SVG path the host allows), and
# bad arguments (exit 2 naming the flag) and failures (exit 1 with the library's detail).
set -u
BIN=${BMOJO_BIN:?BMOJO_BIN must point to the bmojo binary}
SRC=${BMOJO_SOURCE_ROOT:-.}
CFG=$SRC/configs
TMP=$(mktemp -d /tmp/bmojo-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

# run NAME CMD...: runs CMD with stdout in $TMP/NAME.out, stderr in $TMP/NAME.err; returns its status
run() {
  local name=$1; shift
  timeout 120 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
}

# check.py MODE FILE ARGS: validates bench output; prints what is wrong and exits 1, else prints a summary
cat >"$TMP/check.py" <<'PY'
import json, sys
mode, path = sys.argv[1], sys.argv[2]
text = open(path, encoding='utf-8').read()
def die(msg): print(msg); sys.exit(1)
if mode in ('json', 'jsonl'):
    # json: one array; jsonl: one object per line
    if mode == 'json':
        try: recs = json.loads(text)
        except Exception as e: die('not JSON: %s' % e)
        if not isinstance(recs, list): die('not a JSON array')
    else:
        recs = []
        for i, line in enumerate(text.splitlines(), 1):
            try: r = json.loads(line)
            except Exception as e: die('line %d is not JSON: %s' % (i, e))
            if not isinstance(r, dict): die('line %d is not an object' % i)
            recs.append(r)
    # expected: B, reps, pp list, tg list, depth list, model type
    B, reps = int(sys.argv[3]), int(sys.argv[4])
    pps = [int(x) for x in sys.argv[5].split(',') if int(x) > 0]
    tgs = [int(x) for x in sys.argv[6].split(',') if int(x) > 0]
    depths = [int(x) for x in sys.argv[7].split(',')]
    mtype = sys.argv[8]
    want = sorted([(d, p, 0) for d in depths for p in pps] + [(d, 0, g) for d in depths for g in tgs])
    got = sorted((r.get('n_depth'), r.get('n_prompt'), r.get('n_gen')) for r in recs)
    if got != want: die('tests (depth, n_prompt, n_gen) %s, expected %s' % (got, want))
    fields = ['build_commit', 'model_filename', 'model_type', 'model_size', 'model_n_params', 'n_batch',
              'n_prompt', 'n_gen', 'n_depth', 'test_time', 'avg_ns', 'stddev_ns', 'avg_ts', 'stddev_ts',
              'samples_ns', 'samples_ts', 'device', 'driver', 'ttft_ms', 'mem_weights', 'mem_attention_kv',
              'mem_eidetic', 'mem_ssm', 'mem_scratch']
    for r in recs:
        miss = [f for f in fields if f not in r]
        if miss: die('missing fields %s' % miss)
        if r['model_type'] != mtype: die('model_type %r, expected %r' % (r['model_type'], mtype))
        if r['n_batch'] != B: die('n_batch %r, expected %d' % (r['n_batch'], B))
        if not (r['avg_ts'] > 0 and r['avg_ns'] > 0 and r['stddev_ts'] >= 0 and r['ttft_ms'] > 0): die('bad rates %r' % r)
        if len(r['samples_ns']) != reps or len(r['samples_ts']) != reps: die('%d samples, expected %d' % (len(r['samples_ns']), reps))
        n = r['n_prompt'] or r['n_gen']
        for ns, ts in zip(r['samples_ns'], r['samples_ts']):
            if abs(ts - B * n * 1e9 / ns) > 1e-3 * ts + 1e-3: die('samples_ts %g does not match %d tokens in %g ns' % (ts, B * n, ns))
        mean = sum(r['samples_ts']) / reps
        if abs(mean - r['avg_ts']) > 1e-3 * mean: die('avg_ts %g is not the mean of samples_ts (%g)' % (r['avg_ts'], mean))
        # ttft: a prefill's first token is the whole prefill; a decode's first step is a part of the run
        ms = r['avg_ns'] / 1e6
        if r['n_prompt'] and abs(r['ttft_ms'] - ms) > 0.02 * ms + 0.01: die('pp ttft %g ms != prefill time %g ms' % (r['ttft_ms'], ms))
        if r['n_gen'] and r['ttft_ms'] > ms * 1.001: die('tg ttft %g ms > whole decode %g ms' % (r['ttft_ms'], ms))
        if r['mem_weights'] != r['model_size'] or r['model_size'] <= 0 or r['model_n_params'] <= 0: die('bad sizes %r' % r)
        kinds = {'bmojo-tiny': ('kv', 'eid', 'ssm'), 'mamba-tiny': ('ssm',), 'swa-tiny': ('kv',)}[mtype]
        for k, f in (('kv', 'mem_attention_kv'), ('eid', 'mem_eidetic'), ('ssm', 'mem_ssm')):
            if (r[f] > 0) != (k in kinds): die('%s = %d for %s' % (f, r[f], mtype))
        if r['mem_scratch'] <= 0: die('mem_scratch = 0')
        if not r['test_time'].endswith('Z') or 'T' not in r['test_time']: die('test_time %r is not ISO 8601' % r['test_time'])
    print('%d records ok' % len(recs))
elif mode == 'commit':   # the build_commit and model_filename round-trip through JSON escaping
    recs = json.loads(text)
    if recs[0]['build_commit'] != sys.argv[3]: die('build_commit %r, expected %r' % (recs[0]['build_commit'], sys.argv[3]))
    if recs[0]['model_filename'] != sys.argv[4]: die('model_filename %r, expected %r' % (recs[0]['model_filename'], sys.argv[4]))
    print('escaped strings round-trip')
elif mode == 'ops':
    recs = [json.loads(l) for l in text.splitlines()]
    ops = {r['op']: r for r in recs}
    for lim, unit in (('copy', 'GB/s'), ('sgemm', 'GFLOP/s'), ('launch', 'launch/s')):
        if lim not in ops or not ops[lim]['is_limit'] or ops[lim]['unit'] != unit: die('no %s limit row' % lim)
    need = ['embed', 'rmsnorm', 'add (residual)', 'swiglu', 'conv1d', 'conv1d decode', 'scan', 'scan decode',
            'rope', 'attention', 'attention decode', 'bmojo_mix', 'bmojo_mix decode', 'gemm square', 'gemm in_proj',
            'gemm q|k|v', 'gemm out_proj', 'gemv in_proj', 'gemv lm_head']
    miss = [o for o in need if o not in ops]
    if miss: die('missing ops %s' % miss)
    for r in recs:
        if not (r['rate'] > 0 and r['avg_us'] > 0 and r['reps'] >= 5 and r['pct_of_limit'] > 0): die('bad row %r' % r)
        if r['kind'] != 'launch' and (r['bytes'] if r['kind'] == 'bandwidth' else r['flops']) <= 0: die('no work counted in %r' % r)
        if r['kind'] == 'launch': continue
        lim = ops['sgemm' if r['kind'] == 'compute' else 'copy']['rate']
        if abs(r['pct_of_limit'] - 100 * r['rate'] / lim) > 0.01 * r['pct_of_limit'] + 0.01: die('bad %% of limit in %r' % r)
    print('%d ops, copy %.2f GB/s, sgemm %.2f GFLOP/s' % (len(recs), ops['copy']['rate'], ops['sgemm']['rate']))
PY
check() { python3 "$TMP/check.py" "$@" 2>&1; }

# ---- --profile: per-kernel device time after each test ----
if "$BIN" bench --config "$CFG/bmojo-tiny.yaml" -p 16 -n 4 -r 1 --profile >"$TMP/prof.out" 2>"$TMP/prof.err" &&
   grep -q '^profile pp16 @ d0' "$TMP/prof.err" && grep -q '^profile tg4 @ d0' "$TMP/prof.err" &&
   grep -Eq '^  bm_gemv4? +1?[0-9]\.[0-9]+ launches' "$TMP/prof.err"; then
  ok "--profile reports kernels per prefill and per token"
else bad "--profile: $(head -c 400 "$TMP/prof.err")"; fi

# ---- markdown ----
if run md "$BIN" bench --config "$CFG/bmojo-tiny.yaml" -p 32 -n 8 -r 2; then
  rows=$(grep -c '^| bmojo-tiny ' "$TMP/md.out")
  if ! grep -q '^device: .*bmojo ' "$TMP/md.out"; then bad "md: no device/driver/version line"
  elif ! grep -Eq '^\| model +\| +size +\| +params +\| device +\| batch \| test +\| +t/s \| +ttft ms \| +weights \| +K/V \| +eidetic \| +SSM \| +scratch \|$' "$TMP/md.out"; then bad "md: header: $(grep -m1 '^| model' "$TMP/md.out")"
  elif [ "$rows" != 2 ] || ! grep -q '| pp32 ' "$TMP/md.out" || ! grep -q '| tg8 ' "$TMP/md.out"; then bad "md: expected rows pp32 and tg8, got $rows rows"
  elif ! grep -E '^\| bmojo-tiny .* [0-9.]+ ± [0-9.]+ ' "$TMP/md.out" >/dev/null; then bad "md: no 'mean ± std' t/s"
  else ok "md: header, pp32 and tg8 rows"; fi
else bad "md: exit $? $(head -c 300 "$TMP/md.err")"; fi

if run sweep "$BIN" bench --config "$CFG/swa-tiny.yaml" -p 16 -n 4 -d 0,64 -r 1; then
  if grep -q '| pp16 ' "$TMP/sweep.out" && grep -q '| pp16 @ d64 ' "$TMP/sweep.out" && grep -q '| tg4 ' "$TMP/sweep.out" &&
     grep -q '| tg4 @ d64 ' "$TMP/sweep.out" && [ "$(grep -c '^| swa-tiny ' "$TMP/sweep.out")" = 4 ]; then
    ok "md: depth sweep -d 0,64 gives pp/tg rows at both depths"
  else bad "md: depth sweep rows: $(grep '^| swa' "$TMP/sweep.out" | cut -c1-120)"; fi
else bad "sweep: exit $? $(head -c 300 "$TMP/sweep.err")"; fi

# ---- JSON / JSON lines on the three tiny model kinds ----
for m in bmojo mamba swa; do
  if run "j_$m" "$BIN" bench --config "$CFG/$m-tiny.yaml" -p 24,40 -n 5 -d 0,48 -b 2 -r 3 -o json; then
    if r=$(check json "$TMP/j_$m.out" 2 3 24,40 5 0,48 "$m-tiny"); then ok "json $m-tiny -b 2 -r 3 -d 0,48: $r"
    else bad "json $m-tiny: $r"; fi
  else bad "json $m-tiny: exit $? $(head -c 300 "$TMP/j_$m.err")"; fi
done
if run jl "$BIN" bench --config "$CFG/mamba-tiny.yaml" -p 0 -n 6 -d 0,32,96 -r 2 -o jsonl; then
  if r=$(check jsonl "$TMP/jl.out" 1 2 0 6 0,32,96 mamba-tiny) && [ "$(wc -l <"$TMP/jl.out")" = 3 ]; then
    ok "jsonl: one object per line, -p 0 skips prefill: $r"
  else bad "jsonl: $r ($(wc -l <"$TMP/jl.out") lines)"; fi
else bad "jsonl: exit $? $(head -c 300 "$TMP/jl.err")"; fi

# build_commit from the environment and a model path needing escapes survive as JSON strings
odd="$TMP/we\"ird \\dir"
mkdir -p "$odd" && cp "$CFG/bmojo-tiny.yaml" "$odd/c.yaml"
commit=$'abc"\\\t\x01 123'
if BMOJO_COMMIT="$commit" run esc "$BIN" bench --config "$odd/c.yaml" -p 8 -n 0 -r 1 -o json; then
  if r=$(check commit "$TMP/esc.out" "$commit" "$odd/c.yaml"); then ok "json escaping: $r"; else bad "json escaping: $r"; fi
else bad "json escaping: exit $? $(head -c 300 "$TMP/esc.err")"; fi
# without BMOJO_COMMIT the commit baked in at build time (the one `bmojo --version` prints)
built=$("$BIN" --version | sed -n 's/.*(commit \(.*\))$/\1/p')
if [ -n "$built" ] && run nocommit env -u BMOJO_COMMIT "$BIN" bench --config "$CFG/bmojo-tiny.yaml" -p 8 -n 0 -r 1 -o json &&
   grep -qF "\"build_commit\": \"$built\"" "$TMP/nocommit.out"; then ok "build_commit is the built commit ($built) without BMOJO_COMMIT"
else bad "build_commit without BMOJO_COMMIT (built '$built'): $(head -c 200 "$TMP/nocommit.out")"; fi

# ---- kernels ----
if run ops "$BIN" bench --ops --ops-scale small -o jsonl; then
  if r=$(check ops "$TMP/ops.out"); then ok "--ops --ops-scale small: $r"; else bad "--ops: $r"; fi
else bad "--ops: exit $? $(head -c 300 "$TMP/ops.err")"; fi

# ---- plot ----
cat "$TMP/jl.out" "$TMP/j_swa.out" >/dev/null
python3 - "$TMP/j_bmojo.out" "$TMP/j_swa.out" >"$TMP/plot_in.jsonl" <<'PY'
import json, sys
for p in sys.argv[1:]:
    for r in json.load(open(p)): print(json.dumps(r))
PY
cat "$TMP/jl.out" >>"$TMP/plot_in.jsonl"
if BMOJO_PLOT_NO_MPL=1 python3 "$SRC/tools/plot_bench.py" "$TMP/plot.svg" "$TMP/plot_in.jsonl" >"$TMP/plot.log" 2>&1 &&
   [ -s "$TMP/plot.svg" ] && python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); assert len(d.getElementsByTagName("polyline")) == 3' "$TMP/plot.svg"; then
  ok "plot_bench.py (standard library): SVG with one line per model"
else bad "plot_bench.py SVG: $(head -c 300 "$TMP/plot.log")"; fi
if python3 "$SRC/tools/plot_bench.py" "$TMP/plot.png" "$TMP/plot_in.jsonl" >"$TMP/plotp.log" 2>&1 &&
   { [ -s "$TMP/plot.png" ] || [ -s "$TMP/plot.svg" ]; } && [ -s "$(tail -n 1 "$TMP/plotp.log")" ]; then
  ok "plot_bench.py OUT.png: wrote $(basename "$(tail -n 1 "$TMP/plotp.log")")"
else bad "plot_bench.py png: $(head -c 300 "$TMP/plotp.log")"; fi
if ! python3 "$SRC/tools/plot_bench.py" "$TMP/empty.svg" "$TMP/ops.out" >/dev/null 2>&1; then ok "plot_bench.py: no tg records is an error"
else bad "plot_bench.py: accepted input without tg records"; fi

# ---- bad arguments: exit 2 and a message naming the flag; failures: exit 1 ----
# usage FLAG DESCRIPTION -- ARGS...
usage() {
  local flag=$1 what=$2; shift 3
  timeout 60 "$BIN" bench "$@" >"$TMP/u.out" 2>"$TMP/u.err"
  local rc=$?
  if [ $rc -ne 2 ]; then bad "$what: exit $rc, expected 2"
  elif ! grep -qF -- "$flag" "$TMP/u.err"; then bad "$what: message does not name $flag: $(head -c 200 "$TMP/u.err")"
  else ok "$what: exit 2: $(head -n 1 "$TMP/u.err")"; fi
}
T="--config $CFG/bmojo-tiny.yaml"
usage -p "non-numeric -p" -- $T -p abc
usage -p "-p with an empty item" -- $T -p 8,,16
usage -p "-p with a trailing comma" -- $T -p 8,
usage -p "empty -p" -- $T -p ""
usage -n "negative -n" -- $T -n -3
usage -d "non-numeric -d" -- $T -d 4k
usage -r "-r 0" -- $T -r 0
usage -r "-r 1.5" -- $T -r 1.5
usage -b "-b -1" -- $T -b -1
usage -b "-b 0" -- $T -b 0
usage -o "-o xml" -- $T -o xml
usage --bogus "unknown flag" -- $T --bogus
usage -r "-r without a value" -- $T -r
usage --ops-scale "bad --ops-scale" -- --ops --ops-scale huge
usage --seed "bad --seed" -- $T --seed x
usage "-p and -n" "-p 0 -n 0" -- $T -p 0 -n 0
usage "-m" "no model" -- -p 8
timeout 60 "$BIN" bench --config "$TMP/missing.yaml" -p 8 -n 0 -r 1 >"$TMP/f.out" 2>"$TMP/f.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "missing.yaml" "$TMP/f.err"; then ok "missing config: exit 1: $(head -n 1 "$TMP/f.err" | cut -c1-150)"
else bad "missing config: exit $rc: $(head -c 200 "$TMP/f.err")"; fi
timeout 60 "$BIN" bench --config "$CFG/bmojo-tiny.yaml" --device no-such-device -p 8 >"$TMP/f.out" 2>"$TMP/f.err"
rc=$?
if [ $rc -eq 1 ] && grep -qi "device" "$TMP/f.err"; then ok "unknown device: exit 1"
else bad "unknown device: exit $rc: $(head -c 200 "$TMP/f.err")"; fi
if "$BIN" bench --help | grep -q -- "--ops-scale"; then ok "--help lists the options"; else bad "--help"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

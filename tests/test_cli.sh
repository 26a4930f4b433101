#!/usr/bin/env bash
# test_cli.sh — the `bmojo` command as a user meets it: the golden `logits` interface (prefill and
# --decode, [T] and [B, T] ids) against the fixtures, `generate`, `devices`, and bad input of every
# kind (arguments, configs, weight files, token ids, devices), each of which must end with a clear
# message naming the problem and a non-zero exit, never a crash (exit >= 128) or a hang.
set -u
BIN=${BMOJO_BIN:?BMOJO_BIN must point to the bmojo binary}
FIX=${BMOJO_FIXTURES:-../shared/fixtures}
SRC=${BMOJO_SOURCE_ROOT:-.}
TMP=$(mktemp -d /tmp/bmojo-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
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

# expect_exit RC WORD DESCRIPTION -- CMD...: expect_fail, and the exit status must be RC (2: usage)
expect_exit() {
  local want=$1 f0=$fail; shift
  expect_fail "$@"
  if [ $fail -eq $f0 ] && [ "$last_rc" != "$want" ]; then pass=$((pass - 1)); bad "$2: exit $last_rc, expected $want"; fi
}

# python3 helpers: write ids, compare logits (no numpy needed)
cat >"$TMP/st.py" <<'PY'
import json, struct, sys
def read(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; raw = b[8 + n + s:8 + n + e]
        fmt = {'F32': 'f', 'I32': 'i', 'I64': 'q'}[v['dtype']]
        out[k] = (v['shape'], list(struct.unpack('<%d%s' % (len(raw) // 4, fmt), raw)))
    return out
def write(path, tensors):
    hdr, data = {}, b''
    for k, (dt, shape, vals) in sorted(tensors.items()):
        raw = struct.pack('<%d%s' % (len(vals), {'F32': 'f', 'I32': 'i', 'I64': 'q'}[dt]), *vals)
        hdr[k] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}; data += raw
    h = json.dumps(hdr).encode(); h += b' ' * (-len(h) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + data)
cmd = sys.argv[1]
if cmd == 'ids':      # ids OUT REF [B] [bad_id]: input_ids of REF, as [T] or [B, T] (row b reversed when b odd)
    shape, ids = read(sys.argv[3])['input_ids']; B = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if len(sys.argv) > 5: ids[len(ids) // 2] = int(sys.argv[5])
    if B: write(sys.argv[2], {'input_ids': ('I32', [B, len(ids)], sum([ids if b % 2 == 0 else ids[::-1] for b in range(B)], []))})
    else: write(sys.argv[2], {'input_ids': ('I32', [len(ids)], ids)})
elif cmd == 'cmp':    # cmp OUT REF [B]: relative error of OUT's logits (row 0 when batched) vs REF
    shape, got = read(sys.argv[2])['logits']; rshape, ref = read(sys.argv[3])['logits']
    B = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    want_shape = ([B] if B else []) + rshape
    if shape != want_shape: print('shape', shape, 'expected', want_shape); sys.exit(1)
    got = got[:len(ref)]
    num = sum((a - b) ** 2 for a, b in zip(got, ref)) ** 0.5; den = sum(b * b for b in ref) ** 0.5
    print('%.2e' % (num / den)); sys.exit(0 if num / den <= 1e-4 else 1)
elif cmd == 'same':   # same A B: A's and B's logits have one shape and agree (relative error <= 1e-5)
    sa, a = read(sys.argv[2])['logits']; sb, b = read(sys.argv[3])['logits']
    if sa != sb: print('shapes', sa, sb); sys.exit(1)
    num = sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5; den = sum(y * y for y in b) ** 0.5
    print('%.2e' % (num / den)); sys.exit(0 if num / den <= 1e-5 else 1)
elif cmd == 'drop':   # drop IN OUT NAME: copy a safetensors file without tensor NAME
    t = read(sys.argv[2]); b = open(sys.argv[2], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    write(sys.argv[3], {k: (h[k]['dtype'], v[0], v[1]) for k, v in t.items() if k != sys.argv[4]})
elif cmd == 'reshape':  # reshape IN OUT NAME: same file but tensor NAME flattened to 1-D
    t = read(sys.argv[2]); b = open(sys.argv[2], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    write(sys.argv[3], {k: (h[k]['dtype'], [len(v[1])] if k == sys.argv[4] else v[0], v[1]) for k, v in t.items()})
elif cmd == 'extra':  # extra IN OUT NAME...: a copy of a safetensors file plus a small F32 tensor per NAME
    t = read(sys.argv[2]); b = open(sys.argv[2], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    t = {k: (h[k]['dtype'], v[0], v[1]) for k, v in t.items()}
    for k in sys.argv[4:]: t[k] = ('F32', [4], [1.0, 2.0, 3.0, 4.0])
    write(sys.argv[3], t)
elif cmd == 'rawids':  # rawids OUT DTYPE D0[,D1] V...: input_ids of that dtype and shape, values as given
    write(sys.argv[2], {'input_ids': (sys.argv[3], [int(x) for x in sys.argv[4].split(',')], [int(x) for x in sys.argv[5:]])})
elif cmd == 'gcmp':   # gcmp OUT REF: bmojo grad's output vs a grad fixture (the fixtures' tolerances)
    got = read(sys.argv[2]); ref = read(sys.argv[3])
    if set(got) != set(ref): print('names differ:', sorted(set(got) ^ set(ref))); sys.exit(1)
    bad = [k for k in ref if got[k][0] != ref[k][0]]
    if bad: print('shapes differ:', bad); sys.exit(1)
    le = abs(got['loss'][1][0] - ref['loss'][1][0]) / abs(ref['loss'][1][0])
    pairs = [(k, [(a, b) for a, b in zip(got[k][1], ref[k][1]) if b == b]) for k in ref if k != 'loss']
    whole = sum(b * b for _, p in pairs for _, b in p) ** 0.5
    num = sum((a - b) ** 2 for _, p in pairs for a, b in p) ** 0.5
    worst = max(sum((a - b) ** 2 for a, b in p) ** 0.5 / max(sum(b * b for _, b in p) ** 0.5, 1e-6 * whole) for _, p in pairs)
    print('loss %.1e, all %.1e, worst tensor %.1e' % (le, num / whole, worst))
    sys.exit(0 if le <= 1e-5 and num / whole <= 1e-4 and worst <= 1e-3 else 1)
elif cmd == 'batch':  # batch OUT REF MODE: REF's batch, spoiled as MODE says
    t = read(sys.argv[3]); ids = t['input_ids']; tg = t['targets']; mode = sys.argv[4]
    out = {'input_ids': ('I32', ids[0], list(ids[1])), 'targets': ('I32', tg[0], list(tg[1]))}
    if mode == 'notargets': del out['targets']
    elif mode == 'shape': out['targets'] = ('I32', [tg[0][0], tg[0][1] - 1], tg[1][:-tg[0][0]])
    elif mode.startswith('target='): out['targets'][2][3] = int(mode[7:])
    elif mode == 'allneg': out['targets'] = ('I32', tg[0], [-1] * len(tg[1]))
    elif mode.startswith('id='): out['input_ids'][2][5] = int(mode[3:])
    elif mode.startswith('i64target='): v = list(tg[1]); v[2] = int(mode[10:]); out['targets'] = ('I64', tg[0], v)
    elif mode == 'f32targets': out['targets'] = ('F32', tg[0], [float(x) for x in tg[1]])
    write(sys.argv[2], out)
elif cmd == 'bf16':   # bf16 IN OUT [NAME VALUE]: a copy with every F32 tensor as BF16 (rounded to nearest),
    # and element 0 of tensor NAME set to VALUE
    t = read(sys.argv[2]); b = open(sys.argv[2], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    hdr, data = {}, b''
    for k in sorted(t):
        vals = list(t[k][1])
        if len(sys.argv) > 5 and k == sys.argv[4]: vals[0] = float(sys.argv[5])
        if h[k]['dtype'] == 'F32':
            bits = struct.unpack('<%dI' % len(vals), struct.pack('<%df' % len(vals), *vals))
            raw = struct.pack('<%dH' % len(vals), *[((x + 0x7FFF + ((x >> 16) & 1)) >> 16) & 0xFFFF for x in bits]); dt = 'BF16'
        else: raw = struct.pack('<%d%s' % (len(vals), {'I32': 'i', 'I64': 'q'}[h[k]['dtype']]), *vals); dt = h[k]['dtype']
        hdr[k] = {'dtype': dt, 'shape': t[k][0], 'data_offsets': [len(data), len(data) + len(raw)]}; data += raw
    s = json.dumps(hdr).encode(); s += b' ' * (-len(s) % 8)
    open(sys.argv[3], 'wb').write(struct.pack('<Q', len(s)) + s + data)
PY
py() { python3 "$TMP/st.py" "$@"; }

# ---- the golden interface on every fixture ----
for dir in "$FIX"/hf/* "$FIX"/bmojo/*; do
  name=$(basename "$dir")
  py ids "$TMP/ids.st" "$dir/reference.safetensors"
  for mode in prefill decode; do
    flag=; [ $mode = decode ] && flag=--decode
    if "$BIN" logits -m "$dir" -i "$TMP/ids.st" -o "$TMP/out.st" $flag 2>"$TMP/err" && e=$(py cmp "$TMP/out.st" "$dir/reference.safetensors"); then
      ok "logits $name ($mode): rel err $e"
    else bad "logits $name ($mode): $(cat "$TMP/err") $e"; fi
  done
done
dir="$FIX/hf/mistral-0"
py ids "$TMP/ids2.st" "$dir/reference.safetensors" 2
if "$BIN" logits -m "$dir" -i "$TMP/ids2.st" -o "$TMP/out2.st" 2>"$TMP/err" && e=$(py cmp "$TMP/out2.st" "$dir/reference.safetensors" 2); then
  ok "logits with [B, T] ids writes [B, T, V]: rel err of row 0 $e"
else bad "logits [B, T]: $(cat "$TMP/err") $e"; fi
# the output written in chunks of 7 positions (every row of every sequence lands in its place)
for flag in "" --decode; do
  if "$BIN" logits -m "$dir" -i "$TMP/ids2.st" -o "$TMP/out7.st" --chunk 7 $flag 2>"$TMP/err" &&
     "$BIN" logits -m "$dir" -i "$TMP/ids2.st" -o "$TMP/out1.st" $flag 2>>"$TMP/err" &&
     e=$(py same "$TMP/out7.st" "$TMP/out1.st"); then
    ok "logits --chunk 7 $flag matches one chunk on [2, T] ids: rel err $e"
  else bad "logits --chunk 7 $flag: $(cat "$TMP/err") $e"; fi
done
# a failed run leaves an existing output untouched and no temporary file behind
cp "$TMP/out1.st" "$TMP/keep.st"
py ids "$TMP/idsbad.st" "$dir/reference.safetensors" 0 99999
expect_fail "vocabulary" "logits with an id out of range" -- "$BIN" logits -m "$dir" -i "$TMP/idsbad.st" -o "$TMP/out1.st"
if cmp -s "$TMP/out1.st" "$TMP/keep.st" && [ -z "$(ls "$TMP" | grep 'out1.st.tmp')" ]; then
  ok "the failed run left the old output and no temporary file"
else bad "the failed run changed $TMP/out1.st or left $(ls "$TMP" | grep 'out1.st.tmp')"; fi

# ---- generate and devices ----
out=$("$BIN" generate -m "$FIX/hf/mamba-0" -p 5,6,7 -n 8 -q 2>"$TMP/err")
[ "$(echo "$out" | wc -w)" = 8 ] && ok "generate -n 8 prints 8 ids: $out" || bad "generate: '$out' $(cat "$TMP/err")"
a=$("$BIN" generate --config "$SRC/configs/bmojo-tiny.yaml" -p 1,2,3 -n 6 --temp 0.9 --top-k 20 --top-p 0.9 --seed 3 -b 2 -q 2>&1)
b=$("$BIN" generate --config "$SRC/configs/bmojo-tiny.yaml" -p 1,2,3 -n 6 --temp 0.9 --top-k 20 --top-p 0.9 --seed 3 -b 2 -q 2>&1)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$(echo "$a" | wc -l)" = 2 ] && ok "sampling with a seed is reproducible, one line per sequence" || bad "sampling: '$a' vs '$b'"
"$BIN" generate --config "$SRC/configs/swa-tiny.yaml" -p 1,2,3 -n 4 >"$TMP/out" 2>"$TMP/err" &&
  grep -q "device:" "$TMP/err" && grep -q "memory:" "$TMP/err" && grep -q "tokens/s" "$TMP/err" &&
  ok "generate reports device, memory and speed" || bad "generate report: $(cat "$TMP/err")"
"$BIN" devices >"$TMP/out" 2>&1 && grep -q "platform 0" "$TMP/out" && ok "devices lists platform 0" || bad "devices: $(cat "$TMP/out")"

# ---- bad arguments ----
expect_fail "unknown command" "unknown command" -- "$BIN" frobnicate
expect_fail "unknown option" "unknown option" -- "$BIN" logits --bogus
expect_fail "required" "logits without -i/-o" -- "$BIN" logits -m "$FIX/hf/mamba-0"
expect_fail "needs a value" "flag without its value" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p
expect_fail "-n" "non-numeric -n" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1 -n ten
expect_fail "out of range" "negative -n" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1 -n -3
expect_fail "--top-p" "top-p above 1" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1 --top-p 1.5
expect_fail "-p" "prompt that is not ids" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1,x,3
for p in 1,2, 1,,2 ,1 , ,,; do
  expect_exit 2 "empty element" "prompt '$p' with an empty element is a usage error" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p "$p"
done
expect_fail "exactly one" "both -m and --config" -- "$BIN" generate -m "$FIX/hf/mamba-0" --config "$SRC/configs/bmojo-tiny.yaml" -p 1

# a model folder to spoil: mamba-0's config (each test writes the weights)
mk() { rm -rf "$TMP/m"; mkdir -p "$TMP/m"; cp "$FIX/hf/mamba-0/config.json" "$TMP/m/"; }

# ---- weight storage (--weights; issue 15) ----
expect_exit 2 "--weights takes auto, f32 or f16, got 'f8'" "--weights f8 is a usage error naming the value" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1 --weights f8
expect_exit 2 "--weights takes auto, f32 or f16, got ''" "empty --weights is a usage error" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i x -o y --weights ""
expect_exit 2 "needs a value" "--weights without its value" -- "$BIN" bench --config "$SRC/configs/mamba-tiny.yaml" --weights
expect_exit 2 "--weights takes auto, f32 or f16" "--weights F16 (case matters) is a usage error" -- "$BIN" perplexity -m "$FIX/hf/mamba-0" -f x --weights F16
for args in "train --data mqar -o $TMP/run" "grad -i x -o y" "eval --data mqar"; do
  expect_exit 2 "keeps its weights in f32" "${args%% *} --weights f16 is refused (the training pass is fp32)" -- "$BIN" $args --config "$SRC/configs/mamba-tiny.yaml" --weights f16
done
expect_exit 2 "keeps its weights in f32" "bench --grad --weights f16 is refused" -- "$BIN" bench --grad --config "$SRC/configs/mamba-tiny.yaml" --weights f16
dir="$FIX/hf/mistral-0"
py ids "$TMP/ids.st" "$dir/reference.safetensors"
if "$BIN" logits -m "$dir" -i "$TMP/ids.st" -o "$TMP/f16p.st" --weights f16 2>"$TMP/err" &&
   "$BIN" logits -m "$dir" -i "$TMP/ids.st" -o "$TMP/f16d.st" --weights f16 --decode 2>>"$TMP/err" && e=$(py same "$TMP/f16d.st" "$TMP/f16p.st"); then
  ok "logits --weights f16: --decode matches the prefill, rel err $e"
else bad "logits --weights f16: $(cat "$TMP/err") $e"; fi
"$BIN" generate -m "$FIX/hf/mamba-0" -p 1,2 -n 2 --weights f16 >/dev/null 2>"$TMP/err" && grep -q "f16 weights" "$TMP/err" &&
  ok "generate --weights f16 says f16 weights" || bad "generate --weights f16: $(cat "$TMP/err")"
"$BIN" generate -m "$FIX/hf/mamba-0" -p 1,2 -n 2 >/dev/null 2>"$TMP/err" && grep -q "f32 weights" "$TMP/err" &&
  ok "an F32 checkpoint keeps f32 weights by default (auto)" || bad "auto on F32: $(cat "$TMP/err")"
# a BF16 checkpoint: auto keeps it in f16; a BF16 value beyond f16's range is refused by name, f32 loads it
mk; py bf16 "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors"
"$BIN" generate -m "$TMP/m" -p 1,2 -n 2 >/dev/null 2>"$TMP/err" && grep -q "f16 weights" "$TMP/err" &&
  ok "a BF16 checkpoint gets f16 weights by default (auto)" || bad "auto on BF16: $(cat "$TMP/err")"
mk; py bf16 "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" backbone.layers.1.mixer.x_proj.weight 1e6
expect_exit 1 "tensor backbone.layers.1.mixer.x_proj.weight: element 0 is 999424, beyond f16's largest finite value 65504" \
  "BF16 value beyond f16's range: refused by default (auto), naming the tensor and the value" -- "$BIN" generate -m "$TMP/m" -p 1,2 -n 2
expect_exit 1 "cannot be stored as f16" "... and with --weights f16" -- "$BIN" generate -m "$TMP/m" -p 1,2 -n 2 --weights f16
"$BIN" generate -m "$TMP/m" -p 1,2 -n 2 --weights f32 >/dev/null 2>"$TMP/err" && grep -q "f32 weights" "$TMP/err" &&
  ok "... and loads with --weights f32" || bad "BF16 overflow with --weights f32: $(cat "$TMP/err")"
"$BIN" bench --config "$SRC/configs/mamba-tiny.yaml" -p 16 -n 4 -r 1 --weights f16 -o jsonl >"$TMP/out" 2>"$TMP/err" &&
  grep -q '"model_type": "[^"]* F16"' "$TMP/out" && ok "bench --weights f16 reports the F16 type" || bad "bench --weights f16: $(cat "$TMP/err") $(head -c 300 "$TMP/out")"

# ---- bad token ids ----
expect_fail "vocabulary" "prompt id >= vocab" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1,320,2
py ids "$TMP/badids.st" "$FIX/hf/mamba-0/reference.safetensors" 0 100000
expect_fail "vocabulary" "input_ids with an id >= vocab" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/badids.st" -o "$TMP/x.st"
py ids "$TMP/negids.st" "$FIX/hf/mamba-0/reference.safetensors" 0 -5
expect_fail "vocabulary" "input_ids with a negative id" -- "$BIN" logits -m "$FIX/hf/mamba-0" --decode -i "$TMP/negids.st" -o "$TMP/x.st"
expect_fail "input_ids" "ids file without input_ids" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i "$FIX/hf/mamba-0/model.safetensors" -o "$TMP/x.st"
expect_fail "No such file\|cannot open\|open" "missing ids file" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/nope.st" -o "$TMP/x.st"
py rawids "$TMP/ids64.st" I64 1,4 1 2 3 4294967297
expect_exit 1 "token id 4294967297 at \[0, 3\] is outside the vocabulary \[0, 320)" "I64 input_ids 2^32+1 reported as written" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/ids64.st" -o "$TMP/x.st"
py rawids "$TMP/ids64.st" I64 4 1 2 -5 3
expect_exit 1 "token id -5 at \[2\] is outside" "I64 input_ids -5 reported with its position" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/ids64.st" -o "$TMP/x.st"
py rawids "$TMP/ids64.st" I64 2,2 1 2 3 321
expect_exit 1 "token id 321 at \[1, 1\]" "I64 input_ids vocab+1 reported with its position" -- "$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/ids64.st" -o "$TMP/x.st"
py rawids "$TMP/ids64.st" I64 3 7 8 9
"$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/ids64.st" -o "$TMP/x.st" 2>"$TMP/err" && ok "I64 input_ids in range are read" || bad "I64 input_ids: $(cat "$TMP/err")"

# ---- bad devices ----
expect_fail "device" "unknown --device" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1 --device no-such-gpu
expect_fail "device" "BMOJO_DEVICE naming no device" -- env BMOJO_DEVICE=7:3 "$BIN" generate -m "$FIX/hf/mamba-0" -p 1
expect_exit 2 "--device" "empty --device is a usage error" -- "$BIN" generate -m "$FIX/hf/mamba-0" -p 1 --device ""
expect_exit 2 "--device" "empty --device of devices is a usage error" -- "$BIN" devices --build-options --device ""

# ---- bad tunables (environment, read once at start-up) and bench options ----
for kv in BMOJO_GEMV=avx BMOJO_GEMV_WG=3 BMOJO_GEMM=cublas BMOJO_GEMM_SPLITK=0 BMOJO_SCAN=fast \
          BMOJO_SCAN_LANES_CH=0 BMOJO_BMOJO_SPLIT=many BMOJO_DECODE_FUSION=maybe BMOJO_CL_DEFINES=-O3 BMOJO_BBWD=fast \
          BMOJO_SYNC=2 BMOJO_ARENA_SEPARATE=yes BMOJO_STACK_LINEAR=2 BMOJO_COMPACT_HEAD=on; do
  expect_fail "${kv%%=*}" "bad $kv" -- env "$kv" "$BIN" generate -m "$FIX/hf/mamba-0" -p 1
done
expect_fail "needs a value" "bench --ops-filter without its text" -- "$BIN" bench --ops --ops-filter

# ---- bad model folders and weight files ----
expect_fail "m-none" "folder without config or weights" -- "$BIN" generate -m "$TMP/m-none" -p 1
mk; expect_fail "model.safetensors" "config without weights" -- "$BIN" generate -m "$TMP/m" -p 1
mk; head -c 4 "$FIX/hf/mamba-0/model.safetensors" >"$TMP/m/model.safetensors"
expect_fail "safetensors" "weights shorter than 8 bytes" -- "$BIN" generate -m "$TMP/m" -p 1
mk; head -c 5000 "$FIX/hf/mamba-0/model.safetensors" >"$TMP/m/model.safetensors"
expect_fail "safetensors" "truncated weights" -- "$BIN" generate -m "$TMP/m" -p 1
mk; python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<Q', 1<<40) + b'{}')" >"$TMP/m/model.safetensors"
expect_fail "header" "header length past the end" -- "$BIN" generate -m "$TMP/m" -p 1
mk; python3 - "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read()); n = struct.unpack('<Q', b[:8])[0]
h = b[8:8 + n].replace(b'"F32"', b'"Q99"', 1); open(sys.argv[2], 'wb').write(b[:8] + h + b[8 + n:])
PY
expect_fail "dtype" "unknown dtype" -- "$BIN" generate -m "$TMP/m" -p 1
mk; python3 - "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
k = sorted(x for x in h if x != '__metadata__')[1]; h[k]['data_offsets'][1] += 4096
s = json.dumps(h).encode(); s += b' ' * (-len(s) % 8); open(sys.argv[2], 'wb').write(struct.pack('<Q', len(s)) + s + b[8 + n:])
PY
expect_fail "bounds\|overlap\|size" "offsets out of bounds / overlapping" -- "$BIN" generate -m "$TMP/m" -p 1
mk; py drop "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" backbone.layers.1.mixer.x_proj.weight
expect_fail "backbone.layers.1.mixer.x_proj.weight" "missing tensor" -- "$BIN" generate -m "$TMP/m" -p 1
mk; py reshape "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" backbone.layers.0.mixer.D
cp "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors"
py reshape "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" backbone.layers.0.mixer.in_proj.weight
expect_fail "in_proj.weight" "tensor with the wrong shape" -- "$BIN" generate -m "$TMP/m" -p 1
mk; py extra "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" backbone.layers.0.mixer.A_logg
expect_exit 1 "1 tensor the config does not use: backbone.layers.0.mixer.A_logg" "misspelled extra tensor" -- "$BIN" generate -m "$TMP/m" -p 1
"$BIN" generate -m "$TMP/m" -p 1 -n 2 --allow-unused-tensors >/dev/null 2>"$TMP/err" && ok "--allow-unused-tensors loads it" || bad "--allow-unused-tensors: $(cat "$TMP/err")"
mk; py extra "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/model.safetensors" backbone.layers.0.mixer.rotary_emb.inv_freq
"$BIN" generate -m "$TMP/m" -p 1 -n 2 >/dev/null 2>"$TMP/err" && ok "rotary_emb.inv_freq is a harmless extra" || bad "inv_freq extra: $(cat "$TMP/err")"
mk; sed 's/"num_hidden_layers": 2/"num_hidden_layers": 1/' "$FIX/hf/mamba-0/config.json" >"$TMP/m/config.json"
cp "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/"
py rawids "$TMP/ids3.st" I32 3 1 2 3
expect_exit 1 "10 tensors the config does not use: backbone.layers.1." "config with fewer layers than the checkpoint" -- "$BIN" logits -m "$TMP/m" -i "$TMP/ids3.st" -o "$TMP/x.st"
"$BIN" logits -m "$TMP/m" -i "$TMP/ids3.st" -o "$TMP/x.st" --allow-unused-tensors 2>"$TMP/err" && ok "... loads with --allow-unused-tensors" || bad "fewer layers, --allow-unused-tensors: $(cat "$TMP/err")"

# ---- bad configs ----
cfg() { printf '%s\n' "$@" >"$TMP/c.yaml"; }
base='vocab_size: 64
d_model: 32'
cfg "$base" "layers:" "  - {type: transformer, heads: 4}"
expect_fail "transformer" "unknown layer type" -- "$BIN" generate --config "$TMP/c.yaml" -p 1
cfg "$base" "layers:" "  - {type: attention, heads: 6, kv_heads: 4, head_dim: 8}"
expect_fail "kv_heads" "heads not dividing" -- "$BIN" generate --config "$TMP/c.yaml" -p 1
cfg "$base" "layers:" "  - {type: bmojo, window: 0, fading_tokens: 1, eidetic_tokens: 1, heads: 2, head_dim: 16}"
expect_fail "window" "bmojo window 0" -- "$BIN" generate --config "$TMP/c.yaml" -p 1
cfg "$base" "layers:" "  - {type: mlp, intermediate: 64, colour: blue}"
expect_fail "colour" "unknown key" -- "$BIN" generate --config "$TMP/c.yaml" -p 1
cfg "$base" "layers: [ {type: mlp"
expect_fail "c.yaml" "YAML syntax error" -- "$BIN" generate --config "$TMP/c.yaml" -p 1
expect_fail "nope.yaml" "missing config file" -- "$BIN" generate --config "$TMP/nope.yaml" -p 1
mk; sed 's/"num_hidden_layers": 2/"num_hidden_layers": "two"/' "$FIX/hf/mamba-0/config.json" >"$TMP/m/config.json"
cp "$FIX/hf/mamba-0/model.safetensors" "$TMP/m/"
expect_fail "num_hidden_layers" "config.json with a bad value" -- "$BIN" generate -m "$TMP/m" -p 1

# ---- special files never block: each input replaced by a FIFO, a folder, /dev/zero or a socket
# must be refused naming the file and its kind (every run under timeout 20: an open that waits
# for a writer fails the test instead of hanging it) ----
special() { # special KIND PATH: PATH becomes a special file of that kind
  rm -rf "$2"
  case $1 in
    fifo) mkfifo "$2" ;; folder) mkdir "$2" ;; device) ln -s /dev/zero "$2" ;;
    socket) python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$2" ;;
  esac
}
kind_word() { case $1 in fifo) echo "is a FIFO" ;; folder) echo "is a folder" ;; device) echo "is a character device" ;; socket) echo "is a socket" ;; esac; }
for kind in fifo folder device socket; do
  mk; special $kind "$TMP/m/model.safetensors"
  expect_fail "model.safetensors $(kind_word $kind)" "model.safetensors that is a $kind" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
done
for kind in fifo folder; do
  mk; special $kind "$TMP/m/model.safetensors.index.json"
  expect_fail "index.json $(kind_word $kind)" "shard index that is a $kind" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
  mk; echo '{"weight_map": {"backbone.embeddings.weight": "s1.safetensors"}}' >"$TMP/m/model.safetensors.index.json"
  special $kind "$TMP/m/s1.safetensors"
  expect_fail "s1.safetensors $(kind_word $kind)" "shard that is a $kind" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
done
for kind in fifo folder device; do
  mk; special $kind "$TMP/m/config.json"
  expect_fail "config.json $(kind_word $kind)" "config.json that is a $kind" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
  special $kind "$TMP/ids-special.st"
  expect_fail "ids-special.st $(kind_word $kind)" "ids file that is a $kind" -- timeout 20 "$BIN" logits -m "$FIX/hf/mamba-0" -i "$TMP/ids-special.st" -o "$TMP/x.st"
done
mk; special fifo "$TMP/m/config.yaml"  # beside a good config.json: refused, not skipped
expect_fail "config.yaml is a FIFO" "config.yaml that is a FIFO" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
for kind in fifo folder socket; do
  special $kind "$TMP/c-special.yaml"
  expect_fail "c-special.yaml $(kind_word $kind)" "--config that is a $kind" -- timeout 20 "$BIN" generate --config "$TMP/c-special.yaml" -p 1
done
rm -rf "$TMP/c-special.yaml" "$TMP/ids-special.st"

# ---- the golden grad interface (model contract section 6) and bad batches ----
for dir in "$FIX"/grad/*; do
  name=$(basename "$dir")
  if "$BIN" grad -m "$dir" -i "$dir/batch.safetensors" -o "$TMP/g.st" >"$TMP/out" 2>"$TMP/err" &&
     e=$(py gcmp "$TMP/g.st" "$dir/reference.safetensors"); then ok "grad $name: $e"
  else bad "grad $name: $(cat "$TMP/err") $e"; fi
done
gdir="$FIX/grad/mamba"; gb="$gdir/batch.safetensors"
batch() { py batch "$TMP/b.st" "$gb" "$1"; }
batch notargets; expect_fail "no tensor named targets" "grad: batch without targets" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch shape; expect_fail "targets has shape .2, 23., input_ids .2, 24." "grad: targets and input_ids of different shapes" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch target=48; expect_fail "target 48 at .0, 3." "grad: a target equal to the vocabulary size" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch target=-2; expect_fail "target -2 at .0, 3." "grad: a target of -2" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch allneg; expect_fail "scores nothing" "grad: every target -1" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch id=48; expect_fail "token id 48 at .0, 5." "grad: an input id out of range" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch i64target=1099511627776; expect_fail "target 1099511627776" "grad: an I64 target beyond int32, reported as written" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
batch f32targets; expect_fail "targets has dtype F32" "grad: F32 targets" -- "$BIN" grad -m "$gdir" -i "$TMP/b.st" -o "$TMP/g.st"
expect_exit 2 "required" "grad without -o" -- "$BIN" grad -m "$gdir" -i "$gb"
expect_exit 2 "unknown option" "grad with an unknown option" -- "$BIN" grad -m "$gdir" -i "$gb" -o "$TMP/g.st" --frobnicate
[ ! -e "$TMP/g.st.tmp" ] && ok "no temporary file left by the failed grad runs" || bad "a temporary file was left"

# ---- `bmojo memory`: floats per sequence, against counts worked out by hand ----
mem() { "$BIN" memory "$@" -o json 2>"$TMP/err" | python3 -c "import json,sys; d=json.load(sys.stdin); print(' '.join('%s=%s' % (k, d[k]) for k in ('ssm','window_kv','context_kv','fading_kv','eidetic_kv','total','conv')))"; }
# bmojo-2l: 2 x (d_inner 64 * d_state 8; 2 K/V x 2 heads x 16 x (window 8, fading 4, eidetic 8); conv 64 x 3)
want="ssm=1024 window_kv=1024 context_kv=0 fading_kv=512 eidetic_kv=1024 total=3584 conv=384"
got=$(mem --config "$SRC/configs/mqar/bmojo-2l.yaml"); [ "$got" = "$want" ] && ok "memory of bmojo-2l: $got" || bad "memory of bmojo-2l: '$got', expected '$want' $(cat "$TMP/err")"
want="ssm=0 window_kv=0 context_kv=32768 fading_kv=0 eidetic_kv=0 total=32768 conv=0" # 2 x 2 x 2 heads x 16 x 256
got=$(mem --config "$SRC/configs/mqar/attention-2l.yaml" -T 256); [ "$got" = "$want" ] && ok "memory of attention-2l at 256 tokens: $got" || bad "memory of attention-2l: '$got', expected '$want' $(cat "$TMP/err")"
want="ssm=4096 window_kv=0 context_kv=0 fading_kv=0 eidetic_kv=0 total=4096 conv=768" # config.json: 2 x 128 x 16, conv 2 x 128 x 3
got=$(mem -m "$FIX/hf/mamba-0"); [ "$got" = "$want" ] && ok "memory of the mamba-0 fixture: $got" || bad "memory of mamba-0: '$got', expected '$want' $(cat "$TMP/err")"
want="ssm=0 window_kv=2048 context_kv=0 fading_kv=0 eidetic_kv=0 total=2048 conv=0" # 2 x 2 x 2 kv heads x 16 x window 16
got=$(mem -m "$FIX/hf/mistral-0" -T 100000); [ "$got" = "$want" ] && ok "memory of the mistral-0 fixture (windowed: no growth): $got" || bad "memory of mistral-0: '$got', expected '$want' $(cat "$TMP/err")"
"$BIN" memory --config "$SRC/configs/mqar/bmojo-2l.yaml" >"$TMP/out" 2>&1 && grep -q "| \*\*total\*\* | 3584 |" "$TMP/out" && ok "memory's table names the total" || bad "memory's table: $(head -c 300 "$TMP/out")"
expect_exit 2 "give -T" "memory of full attention without -T" -- "$BIN" memory --config "$SRC/configs/mqar/attention-2l.yaml"
expect_exit 2 "-T" "memory with -T 0" -- "$BIN" memory --config "$SRC/configs/mqar/bmojo-2l.yaml" -T 0
expect_exit 2 "md or json" "memory with -o xml" -- "$BIN" memory --config "$SRC/configs/mqar/bmojo-2l.yaml" -o xml
expect_exit 2 "give a model" "memory without a model" -- "$BIN" memory -T 5
expect_exit 1 "nope.yaml" "memory of a missing config" -- "$BIN" memory --config "$TMP/nope.yaml"
printf 'name: x\nvocab_size: 8\nd_model: 4\nlayers:\n  - {type: warp}\n' >"$TMP/warp.yaml"
expect_exit 1 "warp" "memory of a config with an unknown layer type" -- "$BIN" memory --config "$TMP/warp.yaml"

# ---- tokenize / detokenize: the golden interface against Hugging Face's ids (tests/tokenizer) ----
TK="$SRC/tests/tokenizer"
for tk in bytelevel sentencepiece metaspace; do
  same=0 total=0
  for f in "$TK"/corpus/*; do
    b=$(basename "$f"); total=$((total + 3))
    "$BIN" tokenize --tokenizer "$TK/$tk/tokenizer.json" -f "$f" 2>"$TMP/err" | cmp -s - "$TK/$tk/$b.ids" && same=$((same + 1))
    "$BIN" tokenize --tokenizer "$TK/$tk/tokenizer.json" -f "$f" --special 2>>"$TMP/err" | cmp -s - "$TK/$tk/$b.special.ids" && same=$((same + 1))
    "$BIN" detokenize --tokenizer "$TK/$tk/tokenizer.json" -f "$TK/$tk/$b.ids" 2>>"$TMP/err" | cmp -s - "$TK/$tk/$b.decoded" && same=$((same + 1))
  done
  [ $same = $total ] && ok "tokenize/detokenize $tk: $same of $total outputs identical to Hugging Face's" || bad "tokenize/detokenize $tk: $same of $total identical $(head -c 300 "$TMP/err")"
done
mkdir -p "$TMP/tm" && cp "$TK/bytelevel/tokenizer.json" "$TMP/tm/"
out=$("$BIN" tokenize -m "$TMP/tm" -p "Hello world" 2>&1) && back=$("$BIN" detokenize -m "$TMP/tm" --ids "$(echo $out | tr ' ' ,)" 2>&1) &&
  [ "$back" = "Hello world" ] && ok "tokenize -m / detokenize -m: 'Hello world' -> $out -> '$back'" || bad "tokenize -m round trip: $out / $back"
expect_exit 1 "not valid UTF-8" "tokenize -p with invalid UTF-8" -- "$BIN" tokenize --tokenizer "$TK/bytelevel/tokenizer.json" -p $'bad \xff byte'
expect_exit 1 "not in the vocabulary" "detokenize of an id past the vocabulary" -- "$BIN" detokenize --tokenizer "$TK/bytelevel/tokenizer.json" --ids 5,99999
expect_exit 2 "not a token id" "detokenize of a non-number" -- "$BIN" detokenize --tokenizer "$TK/bytelevel/tokenizer.json" --ids 5,x
expect_exit 2 "exactly one of --tokenizer" "tokenize without a tokenizer" -- "$BIN" tokenize -p hi
expect_exit 2 "exactly one of -f" "tokenize without input" -- "$BIN" tokenize --tokenizer "$TK/bytelevel/tokenizer.json"
expect_exit 1 "nope.json" "tokenize with a missing tokenizer.json" -- "$BIN" tokenize --tokenizer "$TMP/nope.json" -p hi
head -c 5000 "$TK/bytelevel/tokenizer.json" >"$TMP/trunc.json"
expect_exit 1 "JSON" "tokenize with a truncated tokenizer.json" -- "$BIN" tokenize --tokenizer "$TMP/trunc.json" -p hi
python3 -c "import json; d=json.load(open('$TK/bytelevel/tokenizer.json')); d['pre_tokenizer']={'type': 'BertPreTokenizer'}; json.dump(d, open('$TMP/bert.json', 'w'))"
expect_exit 1 "BertPreTokenizer" "tokenize with an unsupported pre-tokenizer" -- "$BIN" tokenize --tokenizer "$TMP/bert.json" -p hi

# ---- generate with a tokenizer: text in, streamed text out ----
mkdir -p "$TMP/tg" && cp "$TK/bytelevel/tokenizer.json" "$TMP/tg/"
sed 's/^vocab_size: .*/vocab_size: 3000/' "$SRC/configs/swa-tiny.yaml" >"$TMP/tg/config.yaml"
txt=$("$BIN" generate --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" -p "The B'MOJO layer" -n 24 -q 2>"$TMP/err")
pids=$("$BIN" tokenize --tokenizer "$TMP/tg/tokenizer.json" -p "The B'MOJO layer" --special | tr ' ' ,)
gids=$("$BIN" generate --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" --ids "$pids" -n 24 -q 2>>"$TMP/err")
want=$("$BIN" detokenize --tokenizer "$TMP/tg/tokenizer.json" --ids "$(echo $gids | tr ' ' ,)")
[ -n "$txt" ] && [ "$txt" = "$want" ] && ok "generate -p TEXT streams the text of the ids --ids gives (greedy, 24 tokens)" || bad "generate text: '$txt' vs '$want' $(head -c 300 "$TMP/err")"
echoed=$("$BIN" generate --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" -p "The B'MOJO layer" -n 24 2>/dev/null)
[ "$echoed" = "The B'MOJO layer$want" ] && ok "generate without -q echoes the prompt, then the text" || bad "generate echo: '$echoed'"
expect_exit 1 "more than the model's vocabulary" "generate with a tokenizer larger than the model's vocabulary" -- "$BIN" generate --config "$SRC/configs/swa-tiny.yaml" --tokenizer "$TMP/tg/tokenizer.json" -p hi
expect_exit 1 "not valid UTF-8" "generate with a prompt that is not UTF-8" -- "$BIN" generate --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" -p $'\xff'
expect_exit 2 "empty" "generate with an empty text prompt" -- "$BIN" generate --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" -p ""
expect_exit 2 "exactly one of -p" "generate with both -p and --ids" -- "$BIN" generate --config "$TMP/tg/config.yaml" -p 1 --ids 2

# ---- perplexity: llama.cpp's strided chunks, checked against `bmojo logits` of the same chunks ----
cat "$SRC"/docs/*.md >"$TMP/ppl.txt"
if "$BIN" perplexity --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" -f "$TMP/ppl.txt" -c 64 --chunks 3 --json \
     >"$TMP/ppl.json" 2>"$TMP/err"; then
  "$BIN" tokenize --tokenizer "$TMP/tg/tokenizer.json" -f "$TMP/ppl.txt" >"$TMP/ppl.ids"
  for c in 0 1 2; do
    py rawids "$TMP/chunk$c.st" I32 64 $(tr ' ' '\n' <"$TMP/ppl.ids" | sed -n "$((c * 64 + 1)),$((c * 64 + 64))p")
    "$BIN" logits --config "$TMP/tg/config.yaml" -i "$TMP/chunk$c.st" -o "$TMP/logits$c.st" 2>>"$TMP/err"
  done
  python3 - "$TMP" >"$TMP/pyout" 2>&1 <<'PY' && ok "perplexity: $(cat "$TMP/pyout")" || bad "perplexity: $(cat "$TMP/pyout") $(head -c 300 "$TMP/err")"
import json, math, struct, sys
d = sys.argv[1]
def read(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; raw = b[8 + n + s:8 + n + e]
        out[k] = (v['shape'], list(struct.unpack('<%d%s' % (len(raw) // 4, {'F32': 'f', 'I32': 'i'}[v['dtype']]), raw)))
    return out
ids = list(map(int, open(d + '/ppl.ids').read().split()))
nll = []
for c in range(3):
    shape, l = read('%s/logits%d.st' % (d, c))['logits']
    V = shape[-1]; chunk = ids[c * 64:(c + 1) * 64]
    for j in range(32, 63):  # the second half, as llama.cpp: positions n_ctx/2 .. n_ctx-2 predict the next token
        row = l[j * V:(j + 1) * V]; m = max(row)
        nll.append(math.log(sum(math.exp(x - m) for x in row)) + m - row[chunk[j + 1]])
mean = sum(nll) / len(nll); ppl = math.exp(mean)
var = sum((x - mean) ** 2 for x in nll) / (len(nll) - 1); se = ppl * math.sqrt(var / (len(nll) - 1))
got = json.load(open(d + '/ppl.json'))
assert got['scored'] == len(nll) == 93 and got['chunks'] == 3, got
assert abs(got['ppl'] - ppl) <= 1e-4 * ppl and abs(got['ppl_se'] - se) <= 1e-3 * se, (got, ppl, se)
print('PPL %.3f +/- %.3f over 93 tokens of 3 chunks equals the logits\' (%.3f +/- %.3f)' % (got['ppl'], got['ppl_se'], ppl, se))
PY
else bad "perplexity: $(head -c 300 "$TMP/err")"; fi
expect_exit 2 "fewer than one chunk" "perplexity of a text shorter than a chunk" -- "$BIN" perplexity --config "$TMP/tg/config.yaml" --tokenizer "$TMP/tg/tokenizer.json" -f "$TK/corpus/prose.txt" -c 4096
expect_exit 2 "no tokenizer" "perplexity without a tokenizer" -- "$BIN" perplexity --config "$TMP/tg/config.yaml" -f "$TMP/ppl.txt"
expect_exit 1 "more than the model's vocabulary" "perplexity with a tokenizer larger than the model" -- "$BIN" perplexity --config "$SRC/configs/swa-tiny.yaml" --tokenizer "$TMP/tg/tokenizer.json" -f "$TMP/ppl.txt" -c 64

# ---- every parser linear in its input: inputs that took minutes with quadratic code ----
python3 -c "print('[' * 100000 + ']' * 100000)" >"$TMP/deep.yaml"  # libyaml's loader: 28 s
expect_fail "nesting deeper than 64" "config.yaml nested 100k levels" -- timeout 20 "$BIN" generate --config "$TMP/deep.yaml" -p 1
truncate -s 17M "$TMP/big.yaml"
expect_fail "larger than 16777216 bytes" "config.yaml above the size cap" -- timeout 20 "$BIN" generate --config "$TMP/big.yaml" -p 1
rm -f "$TMP/deep.yaml" "$TMP/big.yaml"
mk; python3 -c "print('{\"a\": ' * 100000 + '1' + '}' * 100000)" >"$TMP/m/config.json"
expect_fail "nesting deeper than 64" "config.json nested 100k levels" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
# 200k entries naming 200k shards (the first one missing): the pairwise shard search took 110 s
mk; python3 -c "import json; json.dump({'weight_map': {'t%d' % i: 's%d.safetensors' % i for i in range(200000)}}, open('$TMP/m/model.safetensors.index.json', 'w'))"
expect_fail "shard 's0.safetensors'" "shard index with 200k entries and shards" -- timeout 30 "$BIN" generate -m "$TMP/m" -p 1
mk; truncate -s 101M "$TMP/m/model.safetensors.index.json"
expect_fail "larger than 104857600 bytes" "shard index above the size cap" -- timeout 20 "$BIN" generate -m "$TMP/m" -p 1
rm -rf "$TMP/m"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]

#!/usr/bin/env bash
# test_memory.sh — the memory budget (src/mem_budget.c) and chunked prefill, through the CLI: a
# model or a run that cannot fit fails with "needs X GiB, ... has Y GiB" and exit 1 (never a
# driver abort or the OOM killer), and a prefill far longer than one chunk runs in a small address
# space (ulimit -v) because its scratch is bounded by the chunk, not by T. Not in the sanitizer
# suite: ASan reserves terabytes of address space, which ulimit -v forbids.
set -u
BIN=${BMOJO_BIN:?BMOJO_BIN must point to the bmojo binary}
SRC=${BMOJO_SOURCE_ROOT:-.}
TMP=$(mktemp -d /tmp/bmojo-mem.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }
# The address space of every run below: a run of bmojo-tiny on POCL maps about 0.6 GiB.
LIMIT_KIB=$((1536 * 1024))

# run_limited KIB CMD...: CMD under ulimit -v KIB, output in $TMP/err; sets rc
run_limited() {
  local kib=$1; shift
  (ulimit -v "$kib" && exec timeout 600 "$@") >"$TMP/out" 2>"$TMP/err"
  rc=$?
}
# expect_budget WORD DESCRIPTION: the last run exited 1 with a budget message naming WORD
expect_budget() {
  if [ $rc -ne 1 ]; then bad "$2: exit $rc, expected 1: $(head -c 300 "$TMP/err")"
  elif ! grep -q "needs [0-9.]* GiB" "$TMP/err" || ! grep -q -- "$1" "$TMP/err"; then
    bad "$2: message lacks 'needs N GiB' or '$1': $(head -c 300 "$TMP/err")"
  else ok "$2: $(head -n 1 "$TMP/err" | cut -c1-220)"; fi
}

# The ulimit -v runs need a device whose driver starts in 1.5 GiB of address space and allocates
# from host RAM: a CPU device (POCL), which CI has. A GPU driver (CUDA's reserves tens of GiB of
# address space) is the default device when present: those runs are then listed as not run, and
# are not counted.
host_device=1
"$BIN" devices 2>/dev/null | grep -q '\[GPU' && host_device=0
not_run() { echo "skip  $* (the default device is a GPU: ulimit -v does not bound its memory)"; }

# tiny(VOCAB, NAME): bmojo-tiny with another vocabulary
tiny() { sed "s/vocab_size: 320/vocab_size: $1/; s/name: bmojo-tiny/name: $2/" "$SRC/configs/bmojo-tiny.yaml" >"$TMP/$2.yaml"; }

# ---- a huge embedding ----
# 16M x 4096 floats = 244 GiB of weights: more than any device this runs on has
sed "s/vocab_size: 320/vocab_size: 16000000/; s/d_model: 64/d_model: 4096/" "$SRC/configs/mamba-tiny.yaml" >"$TMP/huge.yaml"
run_limited unlimited "$BIN" generate --config "$TMP/huge.yaml" -p 1 -n 1
expect_budget "has [0-9.]* GiB" "a 244 GiB embedding is refused against the device's global memory"
# 6M x 64 floats = 1.4 GiB, staged on the host and then copied to the device: over the limit
tiny 6000000 big
if [ $host_device = 1 ]; then
  run_limited $LIMIT_KIB "$BIN" generate --config "$TMP/big.yaml" -p 1 -n 1
  expect_budget "RLIMIT_AS" "a 1.4 GiB embedding under ulimit -v 1.5 GiB is refused against RLIMIT_AS"
else not_run "a 1.4 GiB embedding under ulimit -v 1.5 GiB"; fi

# ---- a huge batch: the state is budgeted before it is allocated ----
# 4096 sequences of bmojo-130m with 2048-token windows hold 403 GiB of state
sed 's/window: 512/window: 2048/' "$SRC/configs/bmojo-130m.yaml" >"$TMP/w2k.yaml"
run_limited unlimited "$BIN" generate --config "$TMP/w2k.yaml" -p 1 -n 1 -b 4096
expect_budget "state of 4096 sequences" "a 403 GiB state (bmojo-130m, window 2048, 4096 sequences) is refused"

# ---- a long prefill: 300,000 tokens in 1.5 GiB of address space ----
# One pass would hold 300k rows of activations (about 2 GiB for bmojo-tiny); chunks of 16384 rows
# hold 110 MiB. The output (300k x 64 floats, 73 MiB) goes out in two chunks of the CLI's 64 MiB.
tiny 64 v64
python3 - "$TMP" <<'PY'
import json, struct, sys
def ids(path, T, seed):
    raw = struct.pack('<%di' % T, *[(i * 7 + seed) % 64 for i in range(T)])
    h = json.dumps({'input_ids': {'dtype': 'I32', 'shape': [T], 'data_offsets': [0, len(raw)]}}).encode()
    h += b' ' * (-len(h) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + raw)
ids(sys.argv[1] + '/long.st', 300000, 3)
ids(sys.argv[1] + '/short.st', 300, 3)   # the long one's first 300 tokens
PY
if [ $host_device = 1 ]; then
  run_limited $LIMIT_KIB "$BIN" logits --config "$TMP/v64.yaml" -i "$TMP/long.st" -o "$TMP/long_out.st"
else
  not_run "300k-token prefill under ulimit -v 1.5 GiB (run without the limit)"
  run_limited unlimited "$BIN" logits --config "$TMP/v64.yaml" -i "$TMP/long.st" -o "$TMP/long_out.st"
fi
if [ $rc -ne 0 ]; then bad "300k-token prefill under ulimit -v 1.5 GiB: exit $rc: $(head -c 300 "$TMP/err")"
else
  "$BIN" logits --config "$TMP/v64.yaml" -i "$TMP/short.st" -o "$TMP/short_out.st" 2>"$TMP/err"
  # the first 300 positions of the long run must match a run of those 300 tokens alone
  if e=$(python3 - "$TMP/long_out.st" "$TMP/short_out.st" <<'PY'
import json, struct, sys
def head(path, n_floats=None):
    f = open(path, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n))
    shape = h['logits']['shape']; count = n_floats or shape[0] * shape[1]
    return shape, struct.unpack('<%df' % count, f.read(4 * count))
ls, _ = head(sys.argv[1], 1); ss, short = head(sys.argv[2])
_, long_ = head(sys.argv[1], len(short))
if ls != [300000, 64]: print('shape', ls); sys.exit(1)
num = sum((a - b) ** 2 for a, b in zip(long_, short)) ** 0.5; den = sum(b * b for b in short) ** 0.5
print('%.2e' % (num / den)); sys.exit(0 if num / den <= 1e-5 else 1)
PY
  ); then ok "300k-token prefill under ulimit -v 1.5 GiB: [300000, 64] logits, first 300 positions match (rel err $e)"
  else bad "300k-token prefill: output differs from the short run: $e $(cat "$TMP/err")"; fi
fi
# ---- a training batch: the backward pass's activations are budgeted before they are allocated ----
# bmojo-130m on 8 x 65536 tokens saves hundreds of GiB of activations
python3 - "$TMP/bigbatch.st" <<'PY'
import json, struct, sys
B, T = 8, 65536
raw = struct.pack('<%di' % (B * T), *([7] * (B * T)))
hdr = {'input_ids': {'dtype': 'I32', 'shape': [B, T], 'data_offsets': [0, len(raw)]},
       'targets': {'dtype': 'I32', 'shape': [B, T], 'data_offsets': [len(raw), 2 * len(raw)]}}
h = json.dumps(hdr).encode(); h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + raw + raw)
PY
run_limited unlimited "$BIN" grad --config "$SRC/configs/bmojo-130m.yaml" -i "$TMP/bigbatch.st" -o "$TMP/g.st"
expect_budget "training pass of 8 x 65536 tokens" "a training batch of 8 x 65536 tokens of bmojo-130m is refused"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

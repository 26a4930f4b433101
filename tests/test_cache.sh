#!/usr/bin/env bash
# test_cache.sh — the kernel program cache as untrusted input, through the `bmojo` command:
# the folder is created 0700 and entries 0600; an entry whose header and checksum are valid but
# whose driver binary is cut short may kill one run, never the next ones (the entry is taken out
# of the cache before the driver sees it); claims left by dead processes are cleaned up; folders
# and entries that are another user's, writable by group or others, symlinks or not what they
# should be are ignored with one warning, and the run still gives the right logits.
set -u
BIN=${BMOJO_BIN:?BMOJO_BIN must point to the bmojo binary}
FIX=${BMOJO_FIXTURES:-../shared/fixtures}
TMP=$(mktemp -d /tmp/bmojo-cache.XXXXXX)
trap 'chmod -R u+rwx "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
unset BMOJO_CACHE
pass=0
fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }
REF=$FIX/hf/mamba-0/reference.safetensors

cat >"$TMP/tool.py" <<'PY'
import json, struct, sys
def tensor(path, name):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])[name]
    s, e = h['data_offsets']; raw = b[8 + n + s:8 + n + e]
    return list(struct.unpack('<%df' % (len(raw) // 4), raw))
def fnv(b):
    h = 0xcbf29ce484222325
    for c in b: h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
    return h
cmd = sys.argv[1]
if cmd == 'cmp':       # cmp OUT REF: relative error of the logits <= 1e-4
    got, ref = tensor(sys.argv[2], 'logits'), tensor(sys.argv[3], 'logits')
    num = sum((a - b) ** 2 for a, b in zip(got, ref)) ** 0.5; den = sum(b * b for b in ref) ** 0.5
    print('%.2e' % (num / den)); sys.exit(0 if len(got) == len(ref) and num / den <= 1e-4 else 1)
elif cmd == 'cut':     # cut ENTRY: the driver binary cut to half, re-wrapped with a valid header and checksum
    b = open(sys.argv[2], 'rb').read(); n = struct.unpack('<Q', b[8:16])[0]
    assert b[:8] == b'BMOJOCL1' and n == len(b) - 24
    binary = b[24:24 + n // 2]
    open(sys.argv[2], 'wb').write(b'BMOJOCL1' + struct.pack('<QQ', len(binary), fnv(binary)) + binary)
elif cmd == 'valid':   # valid ENTRY: header, length and checksum agree
    b = open(sys.argv[2], 'rb').read(); n, c = struct.unpack('<QQ', b[8:24])
    sys.exit(0 if b[:8] == b'BMOJOCL1' and n == len(b) - 24 and fnv(b[24:]) == c else 1)
PY
tool() { python3 "$TMP/tool.py" "$@"; }

# run NAME: a logits run on mamba-0 with the cache in $C; ok when it exits 0 with the right logits
# and no sanitizer report (stderr in $TMP/err)
run() {
  rm -f "$TMP/out.st"
  # (the braces keep the shell's own "Aborted" line off the log: the exit code says it)
  { BMOJO_CACHE_DIR=$C timeout 300 "$BIN" logits -m "$FIX/hf/mamba-0" -i "$REF" -o "$TMP/out.st" >/dev/null 2>"$TMP/err"; } 2>/dev/null
  local rc=$?
  if [ $rc -ne 0 ]; then bad "$1: exit $rc: $(head -c 300 "$TMP/err")"; return 1; fi
  if grep -q "Sanitizer\|runtime error:" "$TMP/err"; then bad "$1: sanitizer report: $(grep -m1 "Sanitizer\|runtime error:" "$TMP/err")"; return 1; fi
  local e
  if ! e=$(tool cmp "$TMP/out.st" "$REF"); then bad "$1: wrong logits (rel err $e)"; return 1; fi
  ok "$1: right logits (rel err $e)"
}
entries() { find "$C" -maxdepth 1 -name '*.bin' | wc -l; }
claims() { find "$C" -maxdepth 1 -name '*.claimed.*' | wc -l; }
warnings() { grep -c "^bmojo: warning: " "$TMP/err"; }
mode() { stat -c %a "$1"; }

# ---- a fresh cache: private folder, private entry, no warning ----
C=$TMP/home/.cache/bmojo
run "first run builds from source" &&
  { [ "$(mode "$C")" = 700 ] && [ "$(mode "$TMP/home/.cache")" = 700 ] && ok "cache folders created 0700" || bad "folder modes $(mode "$TMP/home/.cache") $(mode "$C")"; }
E=$(find "$C" -maxdepth 1 -name '*.bin' | head -1)
[ -n "$E" ] && [ "$(entries)" = 1 ] && [ "$(mode "$E")" = 600 ] && tool valid "$E" && [ "$(ls "$C" | wc -l)" = 1 ] &&
  ok "one valid entry, mode 0600, no temporary file" || bad "entry: $(ls -la "$C")"
[ "$(warnings)" = 0 ] && ok "no warning for a private cache" || bad "unexpected warning: $(cat "$TMP/err")"
run "second run loads the entry"
[ "$(entries)" = 1 ] && [ "$(claims)" = 0 ] && cmp -s "$E" "$C/$(basename "$E")" &&
  ok "a loaded entry is put back (no claimed name left)" || bad "after a cached run: $(ls -la "$C")"

# ---- a driver binary cut short under a valid header and checksum ----
tool cut "$E"
cp "$E" "$TMP/damaged"
{ BMOJO_CACHE_DIR=$C timeout 300 "$BIN" logits -m "$FIX/hf/mamba-0" -i "$REF" -o "$TMP/out.st" >/dev/null 2>"$TMP/err"; } 2>/dev/null
rc=$?
[ $rc -ne 124 ] && ok "damaged entry, first run: exit $rc (the driver may die on it; it must not hang)" || bad "damaged entry: the run hung"
run "damaged entry, second run"
run "damaged entry, third run"
[ "$(entries)" = 1 ] && [ "$(claims)" = 0 ] && tool valid "$E" && ! cmp -s "$E" "$TMP/damaged" &&
  ok "the damaged entry is gone, replaced by a valid one; no claimed name left" || bad "after the damaged entry: $(ls -la "$C")"

# ---- what crashed processes leave ----
K=$(basename "$E")
touch "$C/$K.claimed.999999999.0" "$C/$K.claimed.$$.0" "$C/$K.tmp.fresh1" "$C/$K.tmp.stale1" "$C/unrelated.claimed.999999999.0"
touch -d '2 hours ago' "$C/$K.tmp.stale1"
run "with leftovers in the folder"
[ ! -e "$C/$K.claimed.999999999.0" ] && [ ! -e "$C/$K.tmp.stale1" ] && [ -e "$C/$K.claimed.$$.0" ] &&
  [ -e "$C/$K.tmp.fresh1" ] && [ -e "$C/unrelated.claimed.999999999.0" ] &&
  ok "a claim of a dead process and a temporary file older than an hour are deleted; a live claim, a fresh temporary file, other names kept" ||
  bad "leftovers: $(ls -la "$C")"
rm -f "$C/$K.claimed.$$.0" "$C/$K.tmp.fresh1" "$C/unrelated.claimed.999999999.0"

# ---- untrusted folders and entries: ignored with one warning ----
tool cut "$E"
cp "$E" "$TMP/damaged"
chmod 0777 "$C"
run "group/other-writable cache folder" &&
  { [ "$(warnings)" = 1 ] && grep -q "^bmojo: warning: .*$C.*writable by group or others" "$TMP/err" &&
    ok "one warning: $(head -n 1 "$TMP/err")" || bad "warning: $(cat "$TMP/err")"; }
cmp -s "$E" "$TMP/damaged" && [ "$(ls "$C" | wc -l)" = 1 ] &&
  ok "nothing read from or written into a group/other-writable folder" || bad "folder used: $(ls -la "$C")"
chmod 0700 "$C"
chmod 0664 "$E"
run "group-writable entry" &&
  { [ "$(warnings)" = 1 ] && grep -q "^bmojo: warning: .*$K.*writable by group or others" "$TMP/err" &&
    ok "one warning: $(head -n 1 "$TMP/err")" || bad "warning: $(cat "$TMP/err")"; }
[ "$(mode "$E")" = 600 ] && tool valid "$E" && ! cmp -s "$E" "$TMP/damaged" &&
  ok "an untrusted entry is not read; the new entry replaces it (0600)" || bad "entry: $(ls -la "$C")"
echo keep >"$TMP/outside"
rm -f "$E"
ln -s "$TMP/outside" "$E"
run "entry that is a symlink" &&
  { [ "$(warnings)" = 1 ] && grep -q "^bmojo: warning: .*$K.*symlink" "$TMP/err" &&
    ok "one warning: $(head -n 1 "$TMP/err")" || bad "warning: $(cat "$TMP/err")"; }
[ "$(cat "$TMP/outside")" = keep ] && [ ! -L "$E" ] && tool valid "$E" &&
  ok "the symlink's target untouched, the link replaced by an entry" || bad "symlink: $(ls -la "$C")"
if [ "$(id -u)" = 0 ]; then
  chown 65534 "$E"
  run "entry owned by another user" &&
    { [ "$(warnings)" = 1 ] && grep -q "^bmojo: warning: .*$K.*owned by uid 65534" "$TMP/err" &&
      ok "one warning: $(head -n 1 "$TMP/err")" || bad "warning: $(cat "$TMP/err")"; }
  chown -R 65534 "$C"
  run "cache folder owned by another user" &&
    { [ "$(warnings)" = 1 ] && grep -q "^bmojo: warning: .*$C.*owned by uid 65534" "$TMP/err" &&
      ok "one warning: $(head -n 1 "$TMP/err")" || bad "warning: $(cat "$TMP/err")"; }
  chown -R 0 "$C"
else
  echo "skip  entries and folders owned by another user (needs root to make one; not counted)"
fi
C=$TMP/outside
run "BMOJO_CACHE_DIR naming a file" &&
  { [ "$(warnings)" = 1 ] && grep -q "^bmojo: warning: .*not a folder" "$TMP/err" &&
    ok "one warning: $(head -n 1 "$TMP/err")" || bad "warning: $(cat "$TMP/err")"; }

echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]

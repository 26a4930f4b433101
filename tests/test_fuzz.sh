#!/usr/bin/env bash
# test_fuzz.sh — robustness of the file parsers: builds the libFuzzer targets in tests/fuzz/ with
# clang (ASan + UBSan) and runs each for a fixed number of inputs from a fixed seed (deterministic,
# a few seconds), each seeded from its committed corpus tests/fuzz/corpus/<target>/ (when there is
# one) and from seeds generated here (fixtures, configs, small safetensors). Any crash, sanitizer
# report or leak fails. Longer runs: FUZZ_RUNS=0 FUZZ_SECONDS=600 tests/test_fuzz.sh.
set -u
SRC=${BMOJO_SOURCE_ROOT:?}
FIX=${BMOJO_FIXTURES:-$SRC/../shared/fixtures}
RUNS=${FUZZ_RUNS:-30000}
SECONDS_MAX=${FUZZ_SECONDS:-60}
CLANG=$(command -v clang-14 || command -v clang || true)
pass=0 fail=0
if [ -z "$CLANG" ]; then echo "FAIL  no clang to build the fuzz targets (Debian: clang-14)"; echo "0 passed, 1 failed"; exit 1; fi
TMP=$(mktemp -d /tmp/bmojo-fuzz.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/json" "$TMP/st" "$TMP/cfg" "$TMP/tok"
# tokenizer seeds: the test tokenizer.json files (a leading even byte: load them) and corpus texts (odd: encode)
k=0
for f in "$SRC"/tests/tokenizer/*/tokenizer.json; do k=$((k + 1)); { printf '\x00'; cat "$f"; } >"$TMP/tok/t$k"; done
for f in "$SRC"/tests/tokenizer/corpus/*; do k=$((k + 1)); { printf '\x01'; head -c 3000 "$f"; } >"$TMP/tok/c$k"; done
i=0
for f in "$FIX"/hf/*/config.json; do i=$((i + 1)); cp "$f" "$TMP/json/c$i.json"; cp "$f" "$TMP/cfg/c$i.json"; done
for f in "$SRC"/configs/*tiny.yaml "$FIX"/bmojo/*/config.yaml; do i=$((i + 1)); cp "$f" "$TMP/cfg/y$i.yaml"; done
python3 - "$TMP/st" <<'PY'
import json, struct, sys
for k, (dt, shape, raw) in enumerate([('F32', [2, 3], struct.pack('<6f', *range(6))),
                                      ('F16', [4], struct.pack('<4H', *[0x3c00] * 4)),
                                      ('BF16', [3], struct.pack('<3H', *[0x3f80] * 3))]):
    h = json.dumps({'a': {'dtype': dt, 'shape': shape, 'data_offsets': [0, len(raw)]}, '__metadata__': {'x': 'y'}}).encode()
    h += b' ' * (-len(h) % 8)
    open('%s/s%d.st' % (sys.argv[1], k), 'wb').write(struct.pack('<Q', len(h)) + h + raw)
PY
common=("$SRC/src/json.c" "$SRC/src/half.c" "$SRC/src/safetensors.c" "$SRC/src/safetensors_index.c" "$SRC/src/error.c" "$SRC/src/file_read.c" "$SRC/src/file_write.c" "$SRC/src/config.c"
        "$SRC/src/config_yaml.c" "$SRC/src/config_hf.c" "$SRC/src/cache_entry.c"
        "$SRC/src/cli/ids_file.c" "$SRC/src/cli/batch_file.c" "$SRC/src/data_tokens.c"
        "$SRC/src/tokenizer/tokenizer.c" "$SRC/src/tokenizer/bpe.c" "$SRC/src/tokenizer/pretokenize.c"
        "$SRC/src/tokenizer/unicode.c" "$SRC/src/tokenizer/unicode_data.c")
# One line per target: the name (tests/fuzz/fuzz_<name>.c) and the folder of seeds generated above
# ("-" for none). New inputs go to a scratch folder, never into the committed corpus.
targets=(
  "json json"
  "safetensors st"
  "config cfg"
  "cache_entry -"
  "shard_index -"
  "ids -"
  "batch -"
  "tokens -"
  "tokenizer tok"
)
for t in "${targets[@]}"; do
  read -r name gen <<<"$t"
  corpus=("$TMP/work_$name")
  mkdir -p "$TMP/work_$name"
  [ -d "$SRC/tests/fuzz/corpus/$name" ] && corpus+=("$SRC/tests/fuzz/corpus/$name")
  [ "$gen" != - ] && corpus+=("$TMP/$gen")
  if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
       -DBMOJO_VERSION='"fuzz"' -I"$SRC/include" -I"$SRC/src" "$SRC/tests/fuzz/fuzz_$name.c" "${common[@]}" \
       -lyaml -lm -o "$TMP/fuzz_$name" 2>"$TMP/cc.log"; then
    echo "FAIL  building fuzz_$name: $(head -c 400 "$TMP/cc.log")"; fail=$((fail + 1)); continue
  fi
  if "$TMP/fuzz_$name" -seed=1 -runs="$RUNS" -max_total_time="$SECONDS_MAX" -max_len=4096 \
       -artifact_prefix="$TMP/" "${corpus[@]}" >"$TMP/$name.log" 2>&1; then
    echo "ok    fuzz_$name: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$TMP/$name.log" | head -1)"; pass=$((pass + 1))
  else
    echo "FAIL  fuzz_$name: $(grep -m1 -E 'ERROR|SUMMARY|runtime error' "$TMP/$name.log")"; fail=$((fail + 1))
    for a in "$TMP"/crash-* "$TMP"/leak-*; do [ -e "$a" ] && echo "      input: $(od -A x -t x1z -N 128 "$a" | head -4)"; done
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

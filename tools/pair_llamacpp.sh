#!/bin/bash
# pair_llamacpp.sh — bmojo against llama.cpp's CPU backend on the same shapes (issue 15), in turn so
# that machine noise hits both: for each round, mamba-130m and swa-130m with F32 then F16 weights
# (llama-bench on the peer's GGUF files, `bmojo bench --weights f32|f16` on the configs), then
# bmojo-130m alone (llama.cpp has no B'MOJO). JSONL on stdout, each line prefixed "A WT " (llama.cpp)
# or "B WT " (bmojo). Build the peer first with ../shared/peers/llamacpp/setup.sh; run on an idle
# machine (llama.cpp's threads spin at barriers and collapse when a core is shared).
# Decoding on a machine whose rate swings between runs: tools/pair_decode.sh (many short alternating runs).
# Usage: tools/pair_llamacpp.sh [BMOJO_BIN] [ROUNDS] [PEER_DIR] > pair.jsonl
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bm=${1:-$root/build/bmojo} rounds=${2:-2} dir=${3:-/tmp/llamacpp-peer}
lb=$dir/src/vendor/llama.cpp/build/bin/llama-bench
[ -x "$lb" ] || { echo "pair_llamacpp: no llama-bench at $lb (run ../shared/peers/llamacpp/setup.sh)" >&2; exit 2; }
cd "$root"
export BMOJO_COMMIT=${BMOJO_COMMIT:-$(git rev-parse --short=10 HEAD 2>/dev/null)}
for r in $(seq "$rounds"); do
  for m in mamba swa; do
    for wt in f32 f16; do
      "$lb" -m "$dir/gguf/$m-130m-$wt.gguf" -p 512 -n 128 -t "$(nproc)" -r 3 -o jsonl 2>/dev/null | sed "s/^/A $wt /"
      "$bm" bench --config "configs/$m-130m.yaml" --weights "$wt" -p 512 -n 128 -r 3 -o jsonl 2>/dev/null | sed "s/^/B $wt /"
    done
  done
done
for wt in f32 f16; do
  "$bm" bench --config configs/bmojo-130m.yaml --weights "$wt" -p 512 -n 128 -r 3 -o jsonl 2>/dev/null | sed "s/^/B $wt /"
done

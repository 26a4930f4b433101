#!/bin/bash
# pair_decode.sh — decoding speed of bmojo against llama.cpp's CPU backend on one shape (issue 15),
# as many short runs alternating the two programs: on a shared machine the decoding rate swings
# by a third between identical runs (docs/performance.md), so a pair of single runs cannot tell
# 0.8x from 1x; N alternations give each program's median and the median of the N ratios.
# Each run: llama-bench -p 0 -n 128 -r 1 on the peer's GGUF file, then `bmojo bench -p 0 -n 128
# -r 1 --weights WT` on the config. JSONL of every run on stdout ("A " llama.cpp, "B " bmojo),
# the summary on stderr. Build the peer first with ../shared/peers/llamacpp/setup.sh.
# Usage: tools/pair_decode.sh MODEL(mamba|swa) WT(f32|f16) [N=10] [BMOJO_BIN] [PEER_DIR] > runs.jsonl
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
m=${1:?model: mamba or swa} wt=${2:?weights: f32 or f16} n=${3:-10}
bm=${4:-$root/build/bmojo} dir=${5:-/tmp/llamacpp-peer}
lb=$dir/src/vendor/llama.cpp/build/bin/llama-bench
[ -x "$lb" ] || { echo "pair_decode: no llama-bench at $lb (run ../shared/peers/llamacpp/setup.sh)" >&2; exit 2; }
case "$m/$wt" in mamba/f32 | mamba/f16 | swa/f32 | swa/f16) ;; *) echo "pair_decode: bad model/weights $m/$wt" >&2; exit 2 ;; esac
cd "$root"
export BMOJO_COMMIT=${BMOJO_COMMIT:-$(git rev-parse --short=10 HEAD 2>/dev/null)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$n"); do
  "$lb" -m "$dir/gguf/$m-130m-$wt.gguf" -p 0 -n 128 -t "$(nproc)" -r 1 -o jsonl 2>/dev/null | sed "s/^/A /" | tee -a "$out"
  "$bm" bench --config "configs/$m-130m.yaml" --weights "$wt" -p 0 -n 128 -r 1 -o jsonl 2>/dev/null | sed "s/^/B /" | tee -a "$out"
done
python3 - "$out" "$m-130m $wt" <<'EOF' >&2
import json, statistics, sys
a, b = [], []
for line in open(sys.argv[1]):
    who, js = line.split(' ', 1)
    (a if who == 'A' else b).append(json.loads(js)['avg_ts'])
k = min(len(a), len(b))
if k == 0:
    sys.exit('pair_decode: no runs completed')
r = sorted(b[i] / a[i] for i in range(k))
print(f'{sys.argv[2]} tg128, {k} alternations: llama.cpp median {statistics.median(a):.1f} '
      f'(min {min(a):.1f}, max {max(a):.1f}), bmojo median {statistics.median(b):.1f} '
      f'(min {min(b):.1f}, max {max(b):.1f}) tokens/s; ratio of medians '
      f'{statistics.median(b) / statistics.median(a):.2f}, median of ratios {statistics.median(r):.2f} '
      f'(range {r[0]:.2f}-{r[-1]:.2f})')
EOF

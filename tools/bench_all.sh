#!/usr/bin/env bash
# bench_all.sh — the measurements behind docs/performance.md: `bmojo bench --ops` and the five
# 130M-scale configs (pp512, pp2048 and tg128 at each depth), as jsonl and markdown, plus the plot
# of decoding speed against depth; on POCL also tools/cpu_yardsticks.py (OpenBLAS SGEMM, copy).
# Usage: tools/bench_all.sh OUT_DIR [DEPTHS] [REPS] [extra bench args] (default depths
# 0,4096,16384,32768, 3 repetitions). Set BMOJO_BIN to use another binary.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: bench_all.sh OUT_DIR [DEPTHS] [REPS]}
depths=${2:-0,4096,16384,32768}
reps=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
bin=${BMOJO_BIN:-$root/build/bmojo}
export BMOJO_COMMIT=${BMOJO_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$out"
"$bin" bench --ops "$@" >"$out/ops.md" && "$bin" bench --ops -o jsonl "$@" >"$out/ops.jsonl"
# on POCL (the CPU), what the CPU itself reaches beside it: OpenBLAS SGEMM at the same shapes and a
# plain copy, through numpy (issue 15's yardsticks), when numpy is there
# (the first python3 on PATH, else Debian's, may be the one with numpy)
if grep -q '"driver": "Portable Computing Language' "$out/ops.jsonl"; then
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import numpy' 2>/dev/null; then
      "$py" "$root/tools/cpu_yardsticks.py" -o md >"$out/cpu_yardsticks.md"
      break
    fi
  done
fi
: >"$out/models.jsonl"
for c in bmojo-130m bmojo-f-130m mamba-130m swa-130m jamba-130m; do
  "$bin" bench --config "$root/configs/$c.yaml" -p 512,2048 -n 128 -d "$depths" -r "$reps" -o jsonl "$@" >>"$out/models.jsonl"
done
python3 "$root/tools/plot_bench.py" "$out/decode_vs_depth.svg" "$out/models.jsonl"
echo "commit $BMOJO_COMMIT; results in $out"

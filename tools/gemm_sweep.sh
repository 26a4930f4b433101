#!/usr/bin/env bash
# gemm_sweep.sh — compares bm_gemm's kernels on the model's shapes, for choosing the own GEMM's
# tiles (cl/gemm_nt.cl) and the auto rule (src/gemm.c use_own_gemm) on a GPU in one run:
# `bmojo bench --ops` with CLBlast, then with our kernel under each variant below (BMOJO_GEMM,
# BMOJO_GEMM_SPLITK, BMOJO_CL_DEFINES), keeping the sgemm (M=N=K=4096 through the same path) and
# gemm rows; then a bmojo-130m prefill of 2048 tokens with each kernel.
# Usage: tools/gemm_sweep.sh [path/to/bmojo] (default build/bmojo). Compiled programs are cached
# per option string, so a rerun skips the builds.
set -u
BIN=${1:-build/bmojo}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$BIN" ] || { echo "usage: $0 path/to/bmojo" >&2; exit 2; }

ops() { # label, then env assignments
    local label=$1; shift
    echo "== $label"
    env "$@" "$BIN" bench --ops --ops-filter gemm 2>&1 | grep -E '^\| (sgemm|gemm )|rror' || echo "(failed)"
}

ops "CLBlast" BMOJO_GEMM=clblast
ops "own, auto tiles and split-K" BMOJO_GEMM=own
ops "own, big tiles only, no split" BMOJO_GEMM=own-big BMOJO_GEMM_SPLITK=1
ops "own, thin tiles only, no split" BMOJO_GEMM=own-thin BMOJO_GEMM_SPLITK=1
ops "own, auto, no split-K" BMOJO_GEMM=own BMOJO_GEMM_SPLITK=1
ops "own, auto, split-K 4" BMOJO_GEMM=own BMOJO_GEMM_SPLITK=4
ops "own, big BK 8" BMOJO_GEMM=own BMOJO_CL_DEFINES="-DBM_GEMM_BK=8"
ops "own, big 128x64 (8x4 per item)" BMOJO_GEMM=own BMOJO_CL_DEFINES="-DBM_GEMM_BN=64 -DBM_GEMM_TN=4"
ops "own, big 64x128 (4x8 per item)" BMOJO_GEMM=own BMOJO_CL_DEFINES="-DBM_GEMM_BM=64 -DBM_GEMM_TM=4"
ops "own, big 128x128 (8x8, 256 items) BK 32, thin BK 32" BMOJO_GEMM=own \
    BMOJO_CL_DEFINES="-DBM_GEMM_BK=32 -DBM_GEMM_S_BK=32" # big needs 67 KB local: falls back to thin where < 48 KB
ops "own, thin 64x32 (128 items)" BMOJO_GEMM=own BMOJO_CL_DEFINES="-DBM_GEMM_S_BN=32"
ops "own, thin 32x64 (128 items)" BMOJO_GEMM=own BMOJO_CL_DEFINES="-DBM_GEMM_S_BM=32"
ops "own, thin 64x64 with 8x4 per item (128 items)" BMOJO_GEMM=own BMOJO_CL_DEFINES="-DBM_GEMM_S_TM=8"

for g in clblast own; do
    echo "== bmojo-130m prefill 2048, BMOJO_GEMM=$g"
    BMOJO_GEMM=$g "$BIN" bench --config "$ROOT/configs/bmojo-130m.yaml" -p 2048 -n 0 -r 3 2>&1 | grep -E '^\|' || echo "(failed)"
done

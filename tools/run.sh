#!/usr/bin/env bash
# run.sh — the main job: builds bmojo, then generates 32 tokens with the 130M B'MOJO config
# (seeded random weights) on the default OpenCL device (first GPU, else POCL's CPU device),
# printing the device, a model summary, memory use, tokens/s and the generated ids.
# Extra arguments go to `bmojo generate` (e.g. --device 0:1, -n 64, --config configs/mamba-130m.yaml).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/bootstrap.sh" build
cd "$root"
exec build/bmojo generate --config configs/bmojo-130m.yaml -p 1,2,3,4,5,6,7,8 -n 32 "$@"

#!/usr/bin/env bash
# run.sh — the main job: builds bmojo, then generates 32 tokens of text with the 130M B'MOJO config
# (seeded random weights, so the text is gibberish; configs/bmojo-130m-text.yaml has the vocabulary of
# the committed byte-level tokenizer configs/tokenizers/bytelevel-4k.json) on the default OpenCL
# device (first GPU, else POCL's CPU device), printing the device, a model summary, memory use and
# tokens/s on stderr and the prompt and the generated text on stdout.
# Extra arguments go to `bmojo generate` (e.g. --device 0:1, -n 64); given a model of their own
# (--config FILE or -m DIR) they replace the default model, prompt and tokenizer entirely.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/bootstrap.sh" build
cd "$root"
for a in "$@"; do
  case "$a" in --config | -m) exec build/bmojo generate "$@" ;; esac
done
exec build/bmojo generate --config configs/bmojo-130m-text.yaml --tokenizer configs/tokenizers/bytelevel-4k.json \
  -p "The B'MOJO layer keeps two memories:" -n 32 "$@"

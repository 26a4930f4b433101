#!/usr/bin/env bash
# mqar_slice.sh — one slice of the recall study on a machine lent for a limited time (the device
# tool's calls): runs tools/mqar_sweep.py, starting no run after STOP seconds, then packs what the
# next slice needs and the record keeps — every run's train.jsonl, config.yaml and stderr.txt and
# OUT/results.jsonl, not the checkpoints — into one archive. Unpacked into the same OUT on the next
# machine (`tar xzf ARCHIVE -C OUT`), the sweep skips every finished run; a run cut by the machine
# going away starts again from its beginning.
# Usage: tools/mqar_slice.sh STUDY.json OUT STOP_SECONDS ARCHIVE.tar.gz [BMOJO_BIN]
set -uo pipefail
if [ $# -lt 4 ]; then
  echo "usage: tools/mqar_slice.sh STUDY.json OUT STOP_SECONDS ARCHIVE.tar.gz [BMOJO_BIN]" >&2
  exit 2
fi
study=$1 out=$2 stop=$3 archive=$4 bin=${5:-bmojo}
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/mqar_sweep.py" "$study" -o "$out" --bmojo "$bin" --stop-after "$stop"
rc=$?
(cd "$out" && find . \( -name train.jsonl -o -name config.yaml -o -name stderr.txt \) -not -path "*/step-*" \
   -not -path "*/latest/*" -print0 | tar czf - --null -T - results.jsonl) >"$archive"
echo "mqar_slice: $(tar tzf "$archive" | grep -c train.jsonl) run logs in $archive"
exit $rc

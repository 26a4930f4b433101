#!/usr/bin/env bash
# mqar_slice.sh — one slice of the recall study on a machine lent for a limited time (the device
# tool's calls): runs tools/mqar_sweep.py, starting no run after STOP seconds, then packs what the
# next slice needs and the record keeps — every run's train.jsonl (thinned: tools/thin_train_log.py),
# config.yaml and stderr.txt and
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
# the record keeps every evaluation and every 10th step: about a tenth of the log
find "$out" -name train.jsonl -not -path "*/step-*" -print0 | xargs -0 -r python3 "$here/thin_train_log.py"
# the folders of runs that started: their log, config and stderr, not their checkpoints
(cd "$out" && find . -name train.jsonl -not -path "*/step-*" -not -path "*/latest/*" | while read -r log; do
   d=$(dirname "$log"); echo "$log"; for f in config.yaml stderr.txt; do [ -s "$d/$f" ] && echo "$d/$f"; done
 done | tar czf - -T - results.jsonl) >"$archive"
echo "mqar_slice: $(tar tzf "$archive" | grep -c train.jsonl) run logs in $archive"
exit $rc

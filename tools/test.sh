#!/usr/bin/env bash
# test.sh — builds bmojo and runs the whole test suite: every op against its C reference on every
# OpenCL device, the golden fixtures, decoding and state tests, the CLI's bad-input tests and the
# offline kernel compiles for AMD and SPIR; then the non-device tests again under ASan/UBSan.
# Ends with one line "N passed, N failed" (checks summed over all test programs; a program that
# crashes or exits non-zero without failed checks counts as one failure).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/tools/bootstrap.sh" build clang-14 libclang-rt-14-dev || { echo "0 passed, 1 failed"; exit 1; }
# compiled kernels are cached for the whole run (and across runs on this machine)
export BMOJO_CACHE_DIR=${BMOJO_CACHE_DIR:-$root/build/kernel-cache}
status=0
meson test -C build --print-errorlogs --num-processes 1 || status=1
# sanitizer pass: parsers, configs, CLI bad input and the state tests on POCL
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbuildtype=debug >/dev/null
if ninja -C build-asan >/dev/null; then
  # use_tls=0: GCC 12's LeakSanitizer crashes ("Tracer caught signal 11") walking a bogus dynamic
  # TLS block of a library POCL loads; not scanning TLS only makes it stricter (objects reachable
  # from TLS alone would be reported), and bmojo keeps nothing on the heap through TLS.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0:use_tls=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 1 --suite sanitize || status=1
else
  echo "FAIL  the sanitizer build did not compile"; status=1
fi
python3 "$root/tools/test_summary.py" build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
rc=$?
[ $status -ne 0 ] && rc=1
exit $rc

#!/usr/bin/env bash
# test_install.sh — `meson install` into a staging folder, then build a program outside the tree
# with `pkg-config --cflags --libs bmojo` and run it and the installed `bmojo` binary from an
# unrelated folder (the kernels are embedded, so no source tree is needed).
set -u
BUILD=${BMOJO_BUILD_ROOT:?}
FIX=${BMOJO_FIXTURES:-../shared/fixtures}
TMP=$(mktemp -d /tmp/bmojo-install.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

if DESTDIR="$TMP/stage" meson install -C "$BUILD" --no-rebuild >"$TMP/log" 2>&1; then ok "meson install"; else bad "meson install: $(tail -5 "$TMP/log")"; fi
pc=$(dirname "$(find "$TMP/stage" -name bmojo.pc | head -n 1)")
lib=$(dirname "$(find "$TMP/stage" -name 'libbmojo.so*' | head -n 1)")
bin=$(find "$TMP/stage" -type f -name bmojo | head -n 1)
[ -n "$pc" ] && [ -n "$lib" ] && [ -n "$bin" ] && [ -n "$(find "$TMP/stage" -name bmojo.h)" ] &&
  ok "installed: library, bmojo.h, bmojo.pc, bmojo binary" || bad "install is missing files: $(find "$TMP/stage" -type f)"

cat >"$TMP/app.c" <<'C'
#include <bmojo.h>
#include <stdio.h>
int main(int argc, char **argv) {
    bmojo_runtime *rt = NULL; bmojo_model *m = NULL; bmojo_state *s = NULL;
    float logits[320]; int32_t ids[3] = {1, 2, 3};
    int st = bmojo_runtime_create(NULL, &rt);
    if (!st) st = bmojo_model_load(rt, argv[1], &m);
    if (!st) st = bmojo_state_create(m, 1, &s);
    if (!st) st = bmojo_forward(m, s, ids, 3, BMOJO_LOGITS_LAST, logits);
    if (st) fprintf(stderr, "%s: %s\n", bmojo_strerror(st), bmojo_last_error());
    else printf("bmojo %s ok %f\n", bmojo_version(), logits[0]);
    bmojo_state_free(s); bmojo_model_free(m); bmojo_runtime_free(rt);
    (void)argc; return st ? 1 : 0;
}
C
flags=$(PKG_CONFIG_SYSROOT_DIR="$TMP/stage" PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs bmojo 2>&1)
if cc -std=c11 -Wall -Wextra -Werror "$TMP/app.c" -o "$TMP/app" $flags 2>"$TMP/cc.log"; then ok "an outside program builds with pkg-config ($flags)"
else bad "building against the install: $(cat "$TMP/cc.log")"; fi
cd "$TMP"
out=$(LD_LIBRARY_PATH="$lib" BMOJO_CACHE=0 ./app "$FIX/hf/mamba-0" 2>&1) && ok "it runs a model: $out" || bad "app: $out"
out=$(LD_LIBRARY_PATH="$lib" BMOJO_CACHE=0 "$bin" generate -m "$FIX/hf/mistral-0" -p 1,2,3 -n 4 -q 2>&1) &&
  ok "the installed bmojo runs from $TMP: $out" || bad "installed bmojo: $out"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

#!/usr/bin/env bash
# test_offline_compile.sh — compiles the kernel program offline with clang as OpenCL C 1.2, the
# way the runtime builds it (cl/common.cl first, then the other cl/ files in meson.build's
# cl_sources order, each after a `#line 1 "<name>"` marker), for AMD gfx90a and gfx1030 and
# for SPIR (syntax only). Each variant is built with the -D options of a typical GPU and, when
# $BMOJO_BIN works, with the options of the default device of this machine (POCL's CPU device).
# This catches non-portable OpenCL that one driver (POCL) happens to accept. Needs Debian's
# clang-14 package (clang-14 or clang on PATH); installs nothing. Warnings fail too, unless
# BMOJO_OFFLINE_WERROR=0. Also checked: no printf/double/extension pragmas, and no helper
# function left without a definition when nothing is inlined (plain C99 `inline`).
set -u

root=${BMOJO_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
die() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }
cd "$root" || die "cannot enter source root $root"

clang=""
for c in clang-14 clang; do
    if command -v "$c" >/dev/null 2>&1; then clang=$c; break; fi
done
if [ -z "$clang" ]; then
    die "clang-14 not found: install Debian's clang-14 package (apt-get install clang-14); this test installs nothing"
fi

# The source list, in meson.build order (common.cl is listed first there; force it first anyway).
list=$(sed -n '/^cl_sources[[:space:]]*=[[:space:]]*files(/,/)/p' meson.build | grep -o "'cl/[^']*\.cl'" | tr -d "'")
if [ -z "$list" ]; then
    die "could not read cl_sources from meson.build"
fi
ordered="cl/common.cl $(printf '%s\n' $list | grep -vx 'cl/common.cl')"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bmojo-offline-XXXXXX") || die "mktemp"
trap 'rm -rf "$tmp"' EXIT
src="$tmp/program.cl"
: >"$src"
for f in $ordered; do
    [ -f "$f" ] || die "missing kernel source $f"
    printf '#line 1 "%s"\n' "$(basename "$f")" >>"$src"
    cat "$f" >>"$src"
    printf '\n' >>"$src"
done

# Option sets: a typical GPU, and the default device's (from the CLI) when that works.
sets=("-DBM_WG=256 -DBM_LOCAL_MEM=65536 -DBM_IS_GPU=1")
names=("gpu")
if [ -n "${BMOJO_BIN:-}" ] && [ -x "$BMOJO_BIN" ]; then
    line=$("$BMOJO_BIN" devices --build-options 2>/dev/null | grep -m1 -- '-DBM_WG=')
    dev_opts=$(printf '%s\n' "$line" | grep -o -- '-D[A-Za-z_][A-Za-z0-9_]*=[^[:space:]]*' | tr '\n' ' ')
    if [ -n "$dev_opts" ]; then
        sets+=("${dev_opts% }")
        names+=("device")
    else
        echo "note: \`$BMOJO_BIN devices --build-options\` gave no options; checking the GPU set only"
    fi
else
    echo "note: BMOJO_BIN not set or not executable; checking the GPU option set only"
fi

# Warnings fail the test (the kernels are held to the C code's zero-warning rule);
# BMOJO_OFFLINE_WERROR=0 only reports them.
werror="-Werror"
[ "${BMOJO_OFFLINE_WERROR:-1}" = 0 ] && werror=""
# -cl-ext=-all: no extension is assumed (clang enables cl_khr_fp64 for these targets otherwise,
# and `double` would slip through on devices without it). +cl_khr_fp16 only because clang-14's
# header hides the core OpenCL 1.2 vload_half*/vstore_half* builtins (the f16 weight kernels')
# when that extension is off; half values (variables, arithmetic, direct loads) still need
# `#pragma OPENCL EXTENSION cl_khr_fp16 : enable` in clang, which the lint below refuses.
base=(-x cl -cl-std=CL1.2 -Xclang -finclude-default-header -Xclang -cl-ext=-all,+cl_khr_fp16 -Wall $werror)
npass=0 nfail=0

# Portability lint on the preprocessed program (comments gone): no printf, no double, no
# extension pragmas. The compiler accepts printf in OpenCL C 1.2, but the kernels must not use it.
read -r -a gpu_defs <<<"${sets[0]}"
if pre=$("$clang" -x cl -cl-std=CL1.2 -E "${gpu_defs[@]}" "$src" 2>&1); then
    # Only lines of our files (clang's implicit OpenCL base header declares printf and double);
    # line markers `# N "file"` say where each line came from.
    bad=$(printf '%s\n' "$pre" | awk '
        /^# [0-9]+ "/ { line = $2 - 1; file = $3; gsub(/"/, "", file); ours = file ~ /\.cl$/ && file !~ /\//; next }
        { line++ }
        ours && (/(^|[^A-Za-z0-9_])(printf|double)([^A-Za-z0-9_]|$)/ || /#[[:space:]]*pragma[[:space:]]+OPENCL[[:space:]]+EXTENSION/) {
            print file ":" line ": " $0 }')
    if [ -n "$bad" ]; then
        echo "FAIL lint: printf, double or an extension pragma in the kernels (preprocessed lines):"
        printf '%s\n' "$bad" | sed 's/^/    /' | head -20
        nfail=$((nfail + 1))
    else
        echo "ok   lint (no printf, double or extension pragmas)"
        npass=$((npass + 1))
    fi
else
    echo "FAIL preprocessing the program"
    printf '%s\n' "$pre" | sed 's/^/    /' | head -40
    nfail=$((nfail + 1))
fi
# Unoptimized (as with -cl-opt-disable, or when the optimizer declines to inline a big helper),
# a helper declared plain `inline` has no definition in C99 / OpenCL C and the program fails to
# link on the device. Any call to an unmangled, undefined function in the -O0 IR is such a case
# (builtins are mangled `_Z...` overloads).
if ir=$("$clang" "${base[@]}" "${gpu_defs[@]}" -target spir64-unknown-unknown -O0 -S -emit-llvm -o - "$src" 2>&1); then
    undef=$(printf '%s\n' "$ir" | grep -E '^declare ' | grep -oE '@[A-Za-z_][A-Za-z0-9_.]*\(' |
        grep -vE '^@(_Z|llvm\.|__)' | tr -d '@(' | sort -u | tr '\n' ' ')
    if [ -n "$undef" ]; then
        echo "FAIL helpers without a definition at -O0: ${undef% } (declare them \`static inline\` or without \`inline\`)"
        nfail=$((nfail + 1))
    else
        echo "ok   every helper has a definition at -O0"
        npass=$((npass + 1))
    fi
else
    echo "FAIL emitting unoptimized IR"
    printf '%s\n' "$ir" | sed 's/^/    /' | head -40
    nfail=$((nfail + 1))
fi

for i in "${!sets[@]}"; do
    read -r -a defs <<<"${sets[$i]}"
    for target in gfx90a gfx1030 spir64; do
        if [ "$target" = spir64 ]; then
            args=("${base[@]}" -target spir64-unknown-unknown -fsyntax-only)
        else
            args=("${base[@]}" -target amdgcn-amd-amdhsa -mcpu="$target" -nogpulib -c -o "$tmp/$target.o")
        fi
        what="$target ${names[$i]} (${sets[$i]})"
        if out=$("$clang" "${args[@]}" "${defs[@]}" "$src" 2>&1) &&
            ! printf '%s\n' "$out" | grep -q 'double precision constant requires'; then
            nwarn=$(printf '%s\n' "$out" | grep -c 'warning:')
            if [ "$nwarn" -gt 0 ]; then
                echo "ok   $what ($nwarn warnings)"
                npass=$((npass + 1))
                printf '%s\n' "$out" | sed 's/^/    /'
            else
                echo "ok   $what"
                npass=$((npass + 1))
            fi
        else
            echo "FAIL $what (errors, or a double literal such as 1.0 where 1.0f is meant)"
            printf '%s\n' "$out" | sed 's/^/    /' | head -60
            nfail=$((nfail + 1))
        fi
    done
done
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]

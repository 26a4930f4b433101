#!/usr/bin/env python3
"""cpu_yardsticks.py — what this CPU itself reaches, to judge bmojo's POCL numbers by (issue 15,
docs/performance.md "POCL"): SGEMM through numpy's BLAS (OpenBLAS on Debian with
libopenblas0-pthread; all cores) at the model's GEMM shapes in bmojo's NT layout (C = A W^T), and
memory bandwidth (numpy copyto of 256 MiB: read + write bytes, one thread). Best of R runs.

    /usr/bin/python3 tools/cpu_yardsticks.py [-r 5] [-o md|jsonl]

Needs numpy (Debian: python3-numpy); the BLAS numpy uses is printed, so a table that says
"OpenBLAS" can be checked.
"""
import argparse
import json
import os
import time

# (name, M, N, K) of bmojo bench --ops (src/cli/bench_ops.c), T 2048 and the square probe
SHAPES = [("square", 1024, 1024, 1024), ("in_proj", 2048, 3072, 768), ("x_proj", 2048, 80, 1536),
          ("dt_proj", 2048, 1536, 48), ("out_proj", 2048, 768, 1536), ("q|k|v", 2048, 1280, 768),
          ("mlp gate|up", 2048, 4096, 768), ("mlp down", 2048, 768, 2048)]


def blas_name(np):
    try:
        cfg = np.show_config(mode="dicts")
        return cfg.get("Build Dependencies", {}).get("blas", {}).get("name", "?")
    except Exception:
        pass
    for lib in ("openblas", "blis", "mkl"):
        try:
            with open("/proc/self/maps") as f:
                if lib in f.read():
                    return lib
        except OSError:
            pass
    return "?"


def best(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-o", choices=["md", "jsonl"], default="md")
    args = ap.parse_args()
    import numpy as np

    rng = np.random.default_rng(1)
    rows = []
    for name, M, N, K in SHAPES:
        A = rng.random((M, K), dtype=np.float32)
        W = rng.random((N, K), dtype=np.float32)
        C = np.empty((M, N), dtype=np.float32)
        s = best(lambda: np.matmul(A, W.T, out=C), args.r)
        rows.append(dict(op=f"sgemm {name}", shape=f"M {M}, N {N}, K {K}", us=s * 1e6, rate=2 * M * N * K / s / 1e9,
                         unit="GFLOP/s"))
    n = 256 << 20 >> 2
    src = rng.random(n, dtype=np.float32)
    dst = np.empty_like(src)
    s = best(lambda: np.copyto(dst, src), args.r)
    rows.append(dict(op="copy", shape="256 MiB -> 256 MiB", us=s * 1e6, rate=2 * n * 4 / s / 1e9, unit="GB/s"))
    head = f"numpy {np.__version__}, BLAS {blas_name(np)}, {os.cpu_count()} CPUs"
    if args.o == "jsonl":
        for r in rows:
            print(json.dumps(dict(r, yardstick=head)))
        return
    print(head + "\n")
    print("| op | shape | time us | rate |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['op']} | {r['shape']} | {r['us']:.1f} | {r['rate']:.2f} {r['unit']} |")


if __name__ == "__main__":
    main()

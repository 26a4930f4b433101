#!/usr/bin/env python3
"""bench_table.py — turns `bmojo bench -o jsonl` records of several models into the tables of
docs/performance.md: one row per model, with prefill (pp) and decoding (tg) tokens/s at each depth,
and the state memory of each model at the deepest depth measured.

Usage: bench_table.py MODELS.jsonl"""
import json
import sys


def mib(b):
    return "%.1f MiB" % (b / 1048576.0)


def main():
    recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
    models, tests, depths = [], [], []
    cell = {}
    for r in recs:
        m = r["model_filename"].rsplit("/", 1)[-1].replace(".yaml", "")
        t = "pp%d" % r["n_prompt"] if r["n_prompt"] else "tg%d" % r["n_gen"]
        if m not in models: models.append(m)
        if t not in tests: tests.append(t)
        if r["n_depth"] not in depths: depths.append(r["n_depth"])
        cell[(m, t, r["n_depth"])] = r
    depths.sort()
    cols = [(t, d) for t in tests for d in depths]
    head = ["model"] + ["%s @ %s" % (t, "d%d" % d if d else "d0") for t, d in cols]
    print("| " + " | ".join(head) + " |")
    print("| --- " + "| ---: " * len(cols) + "|")
    for m in models:
        row = [m]
        for t, d in cols:
            r = cell.get((m, t, d))
            row.append("%.0f ± %.0f" % (r["avg_ts"], r["stddev_ts"]) if r else "—")
        print("| " + " | ".join(row) + " |")
    print()
    print("| model | weights | attention K/V | eidetic | SSM | scratch (at depth %d) | params |" % depths[-1])
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in models:
        rs = [cell[k] for k in cell if k[0] == m and k[2] == depths[-1] and k[1].startswith("tg")] or \
             [cell[k] for k in cell if k[0] == m]
        r = rs[0]
        print("| %s | %s | %s | %s | %s | %s | %.1f M |" % (m, mib(r["mem_weights"]), mib(r["mem_attention_kv"]),
              mib(r["mem_eidetic"]), mib(r["mem_ssm"]), mib(r["mem_scratch"]), r["model_n_params"] / 1e6))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""plot_eidetic.py — what B'MOJO's eidetic memory holds, from `bmojo eval --eidetic FILE.jsonl`
(one object per evaluated row and B'MOJO sublayer: the positions held at each chunk start, and
MQAR's key, value and query positions):

    tools/plot_eidetic.py EIDETIC.jsonl -o eidetic.png [--row 0] [--title TEXT]

Per sublayer, two panels: left, one example (--row): the positions held at each chunk start (dots),
the key-value context shaded (keys at even positions, values at odd ones), the queries (x) at the
chunk they fall in; right, over every row: the share of filled slots holding a key, a value or a
filler token at each chunk start, against the share a uniformly random choice of earlier positions
would give (dashed: keys + values). Prints the same shares as a table.
"""
import argparse
import collections
import json
import sys
import textwrap


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--row", type=int, default=0)
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    objs = [json.loads(l) for l in open(args.dump) if l.strip()]
    head = next((o for o in objs if o.get("event") == "start"), {})
    rows = [o for o in objs if "row" in o]
    if not rows or "pairs" not in rows[0]:
        sys.exit("plot_eidetic: no MQAR rows in " + args.dump)
    layers = sorted({r["layer"] for r in rows})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(layers), 2, figsize=(11, 3.6 * len(layers)), squeeze=False)
    print("| sublayer | chunk start | filled slots | on keys | on values | on filler | keys + values if random |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for li, layer in enumerate(layers):
        lr = [r for r in rows if r["layer"] == layer]
        w, P = lr[0]["chunk_len"], lr[0]["pairs"]
        ex = next((r for r in lr if r["row"] == args.row), lr[0])
        ax = axes[li][0]
        ax.axhspan(-0.5, 2 * P - 0.5, color="tab:orange", alpha=0.12, label="key-value context")
        for c, held in enumerate(ex["chunks"]):
            ax.scatter([c * w] * len(held), held, s=8, color="tab:blue")
        ax.scatter([q - q % w for q in ex["queries"]], [2 * j for j in ex["query_pairs"]], marker="x", color="tab:red",
                   s=18, label="query (at its key's position)")
        ax.set_xlabel("chunk start (position)")
        ax.set_ylabel("position held")
        ax.set_title(f"sublayer {layer}: row {ex['row']}")
        ax.legend(fontsize=7, loc="upper left")
        # shares over all rows per chunk
        tally = collections.defaultdict(lambda: [0, 0, 0, 0, 0.0])  # filled, keys, values, filler, random share
        for r in lr:
            for c, held in enumerate(r["chunks"]):
                if not held:
                    continue
                t = tally[c * w]
                t[0] += len(held)
                t[1] += sum(1 for p in held if p < 2 * P and p % 2 == 0)
                t[2] += sum(1 for p in held if p < 2 * P and p % 2 == 1)
                t[3] += sum(1 for p in held if p >= 2 * P)
                t[4] += len(held) * min(1.0, 2 * P / (c * w))
        starts = sorted(tally)
        share = lambda k: [tally[s][k] / tally[s][0] for s in starts]
        ax = axes[li][1]
        ax.plot(starts, share(1), marker="o", label="keys")
        ax.plot(starts, share(2), marker="o", label="values")
        ax.plot(starts, share(3), marker="o", label="filler")
        ax.plot(starts, share(4), linestyle="--", color="gray", label="keys + values, random choice")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("chunk start (position)")
        ax.set_ylabel("share of filled eidetic slots")
        ax.set_title(f"sublayer {layer}: {len(lr)} rows, {P} pairs, chunks of {w}")
        ax.legend(fontsize=7)
        for s in starts:
            t = tally[s]
            print(f"| {layer} | {s} | {t[0]} | {t[1] / t[0]:.3f} | {t[2] / t[0]:.3f} | {t[3] / t[0]:.3f} | {t[4] / t[0]:.3f} |")
    if args.title:
        fig.suptitle(args.title, fontsize=9)
    footer = textwrap.wrap(f"commit {head.get('commit', '?')}; device {head.get('device', '?')}; data {head.get('data', '?')}; "
                           f"{head.get('command', '')}", width=150, subsequent_indent="    ")
    fig.text(0.01, 0.005, "\n".join(footer), fontsize=6, va="bottom", family="monospace")
    fig.tight_layout(rect=(0, 0.012 * len(footer) / len(layers) + 0.01, 1, 1))
    fig.savefig(args.out, dpi=110)
    print("plot_eidetic: wrote " + args.out)


if __name__ == "__main__":
    main()

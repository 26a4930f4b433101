#!/usr/bin/env python3
"""plot_mqar.py — the recall study's figures from tools/mqar_sweep.py's results.jsonl
(docs/experiments/mqar.md):

    tools/plot_mqar.py OUT/results.jsonl [MORE/results.jsonl ...] -o mqar.png
                       [--ablation mqar-eidetic.png] [--table] [--runs] [--panels 8,16] [--families a,b]

mqar.png: one panel per number of key-value pairs; MQAR test accuracy against each model's
recurrent memory in floats per sequence (`bmojo memory`, log scale), one line per family through
its widths. ablation: accuracy against B'MOJO's eidetic tokens at one width. Each point: for each
seed the best accuracy over the learning rates, then the mean over seeds (bars: the seeds' min and
max). --table prints every point as a Markdown table instead of (or besides) plotting; --runs
prints every run as one (config, memory, rate, seed, accuracy, steps, time, device, commit). The footer
records the commits, devices and seeds, so a figure stays reproducible. --panels keeps only the
runs of those pair counts (a grid still under way: its finished panels), --families those families
(a comparison across studies: several results files are read as one).
"""
import argparse
import collections
import json
import sys
import textwrap

FAMILY_ORDER = ["bmojo", "bmojo-rope", "bmojo-f", "mamba", "swa", "hybrid", "hybrid-nope", "attention"]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def points(rows, key):
    """(group key) -> list of (x, mean, lo, hi, n_seeds, best_lr per seed) over rows grouped by key."""
    best = collections.defaultdict(dict)  # (key..., seed) -> (accuracy, lr)
    for r in rows:
        k = key(r)
        cur = best[k].get(r["seed"])
        if cur is None or r.get("accuracy", 0) > cur[0]:
            best[k][r["seed"]] = (r.get("accuracy", 0.0), r["lr"])
    out = {}
    for k, seeds in best.items():
        accs = [a for a, _ in seeds.values()]
        out[k] = dict(mean=sum(accs) / len(accs), lo=min(accs), hi=max(accs), seeds=sorted(seeds),
                      lrs=[seeds[s][1] for s in sorted(seeds)])
    return out


def print_runs(rows):
    """Every run, one line each, ordered by group, panel, family, eidetic tokens, width, rate, seed."""
    def order(r):
        fam = r["family"]
        return (r["group"] != "main", r["panel"], FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else 99,
                r.get("eidetic_tokens", 0), r.get("width", 0), r["lr"], r["seed"])
    print("| run (its folder holds config.yaml and train.jsonl) | memory (floats) | parameters | lr | seed "
          "| accuracy | best step | steps | train s | device | commit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in sorted(rows, key=order):
        run = r.get("run", "?")
        parts = run.split("/")
        if r["group"] in parts:  # relative to the sweep's output folder, wherever it ran
            run = "/".join(parts[parts.index(r["group"]):])
        print(f"| {run} | {r['memory_floats']} | {r.get('params', '?')} "
              f"| {r['lr']:g} | {r['seed']} | {r.get('accuracy', 0.0):.4f} | {r.get('best_step', '?')} "
              f"| {r.get('steps', '?')} | {r.get('train_s', 0.0):.1f} | {r.get('device', '?')} "
              f"| {r.get('commit', '?')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+")
    ap.add_argument("-o", "--out", help="accuracy against memory, one panel per pairs count")
    ap.add_argument("--ablation", help="accuracy against eidetic tokens")
    ap.add_argument("--table", action="store_true", help="print the points as Markdown tables")
    ap.add_argument("--runs", action="store_true", help="print every run as a Markdown table")
    ap.add_argument("--panels", help="comma-separated pair counts to keep (default: every panel)")
    ap.add_argument("--families", help="comma-separated families to keep (default: every family)")
    args = ap.parse_args()
    rows = [r for path in args.results for r in load(path)]
    sources = " + ".join(args.results)
    if args.panels:
        keep = {int(x) for x in args.panels.split(",")}
        rows = [r for r in rows if r["panel"] in keep]
    if args.families:
        keep_f = set(args.families.split(","))
        rows = [r for r in rows if r["family"] in keep_f]
    if not rows:
        sys.exit("plot_mqar: no finished runs in " + sources)
    main_rows = [r for r in rows if r["group"] == "main"]
    abl_rows = [r for r in rows if r["group"] == "ablation"]
    pts = points(main_rows, lambda r: (r["panel"], r["family"], r["model"], r["memory_floats"]))
    apts = points(abl_rows, lambda r: (r["panel"], r["model"], r.get("eidetic_tokens", 0), r["memory_floats"],
                                       r["family"]))
    commits = sorted({r.get("commit", "?") for r in rows})
    devices = sorted({r.get("device", "?") for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    footer_text = ("commits " + ", ".join(commits) + "; devices " + "; ".join(devices) + "; seeds "
                   + ", ".join(map(str, seeds)) + f"; {len(rows)} runs from {sources}"
                   + (f" (pairs {args.panels})" if args.panels else "")
                   + (f" (families {args.families})" if args.families else ""))

    def footer(fig_width_in, fontsize):
        """The footer wrapped to the figure's width (a monospace character is ~0.6 of the font size)."""
        return textwrap.wrap(footer_text, width=int(fig_width_in * 72 / (0.6 * fontsize)) - 2, subsequent_indent="    ")

    if args.table:
        print("| pairs | model | memory (floats) | accuracy (mean over seeds) | min | max | best lr per seed |")
        print("|---:|---|---:|---:|---:|---:|---|")
        for (panel, fam, model, mem), p in sorted(pts.items()):
            print(f"| {panel} | {model} | {mem} | {p['mean']:.4f} | {p['lo']:.4f} | {p['hi']:.4f} | "
                  + ", ".join(f"{lr:g}" for lr in p["lrs"]) + " |")
        if apts:
            print("\n| pairs | model | eidetic tokens | memory (floats) | accuracy (mean) | min | max | best lr per seed |")
            print("|---:|---|---:|---:|---:|---:|---:|---|")
            for (panel, model, me, mem, _), p in sorted(apts.items(), key=lambda kv: (kv[0][0], kv[0][4], kv[0][2])):
                print(f"| {panel} | {model} | {me} | {mem} | {p['mean']:.4f} | {p['lo']:.4f} | {p['hi']:.4f} | "
                      + ", ".join(f"{lr:g}" for lr in p["lrs"]) + " |")
    if args.runs:
        print_runs(rows)
    if not args.out and not args.ablation:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.out:
        panels = sorted({k[0] for k in pts})
        fams = sorted({k[1] for k in pts}, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99, f))
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False, sharey=True)
        for ax, panel in zip(axes[0], panels):
            for fam in fams:
                series = sorted((k[3], p) for k, p in pts.items() if k[0] == panel and k[1] == fam)
                if not series:
                    continue
                xs = [m for m, _ in series]
                ys = [p["mean"] for _, p in series]
                err = [[p["mean"] - p["lo"] for _, p in series], [p["hi"] - p["mean"] for _, p in series]]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=fam)
            ax.set_xscale("log")
            ax.set_title(f"{panel} key-value pairs")
            ax.set_xlabel("recurrent memory (floats per sequence)")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("MQAR test accuracy")
        axes[0][0].set_ylim(-0.02, 1.02)
        axes[0][-1].legend(fontsize=8)
        lines = footer(fig.get_figwidth(), 6)
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=6, va="bottom", family="monospace")
        fig.tight_layout(rect=(0, 0.03 + 0.025 * len(lines), 1, 1))
        fig.savefig(args.out, dpi=120)
        print("plot_mqar: wrote " + args.out)
    if args.ablation:
        if not apts:
            sys.exit("plot_mqar: no ablation runs in " + sources)
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        curves = sorted({(k[0], k[4]) for k in apts})  # one curve per panel and family
        for panel, fam in curves:
            series = sorted((k[2], p) for k, p in apts.items() if k[0] == panel and k[4] == fam)
            xs = [me for me, _ in series]
            ys = [p["mean"] for _, p in series]
            err = [[p["mean"] - p["lo"] for _, p in series], [p["hi"] - p["mean"] for _, p in series]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3,
                        label=f"{panel} pairs" if len({f for _, f in curves}) == 1 else f"{fam}, {panel} pairs")
        ax.set_xscale("symlog", linthresh=1)
        ticks = sorted({k[2] for k in apts})
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("eidetic tokens per B'MOJO sublayer")
        ax.set_ylabel("MQAR test accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        lines = footer(fig.get_figwidth(), 6)
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=6, va="bottom", family="monospace")
        fig.tight_layout(rect=(0, 0.03 + 0.025 * len(lines), 1, 1))
        fig.savefig(args.ablation, dpi=120)
        print("plot_mqar: wrote " + args.ablation)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""plot_train.py — loss and evaluation curves of one or several `bmojo train` runs.

usage: tools/plot_train.py RUN/train.jsonl [RUN2/train.jsonl ...] [-o curves.png] [--x step|tokens|time]
                           [--smooth N] [--label NAME ...]

Reads the JSONL logs `bmojo train` writes (docs/training.md, "The log") and draws two panels: the
training loss (a running mean over --smooth steps) and the evaluation metric (accuracy where the
data is MQAR, else the evaluation loss). Each run is labelled by its folder (or --label) and the
figure's footer records every run's command, commit and device, so a plot stays reproducible.
A resumed run appends to its log: the steps of every segment are drawn as one curve.
"""
import argparse
import json
import os
import sys
import textwrap


def read_log(path):
    starts, steps, evals = [], [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit("plot_train.py: %s line %d is not JSON: %s" % (path, n, e))
            if r.get("event") == "start":
                starts.append(r)
            elif "loss" in r:
                steps.append(r)
            elif "eval_loss" in r:
                evals.append(r)
    if not steps and not evals:
        sys.exit("plot_train.py: %s has no steps or evaluations: is it a bmojo train log?" % path)
    # a resume re-runs nothing, but a run stopped between a step and its checkpoint repeats the
    # steps after the checkpoint: keep the last record of each step
    steps = sorted({r["step"]: r for r in steps}.values(), key=lambda r: r["step"])
    evals = sorted({r["step"]: r for r in evals}.values(), key=lambda r: r["step"])
    return starts, steps, evals


def running_mean(values, n):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def main():
    ap = argparse.ArgumentParser(description="Plot bmojo train logs (JSONL).")
    ap.add_argument("logs", nargs="+", help="train.jsonl files (or run folders holding one)")
    ap.add_argument("-o", "--out", default="train_curves.png", help="image to write (default train_curves.png)")
    ap.add_argument("--x", choices=["step", "tokens", "time"], default="step", help="x axis")
    ap.add_argument("--smooth", type=int, default=20, help="running mean of the training loss over N steps")
    ap.add_argument("--label", action="append", help="a label per log, in order (default: the run folder)")
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("plot_train.py needs matplotlib: apt-get install python3-matplotlib (or pip install matplotlib)\n")
        return 2
    if a.smooth < 1:
        ap.error("--smooth must be >= 1")
    if a.label and len(a.label) != len(a.logs):
        ap.error("give one --label per log (%d logs, %d labels)" % (len(a.logs), len(a.label)))

    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(12, 4.6))
    footer, eval_kind = [], None
    for i, path in enumerate(a.logs):
        if os.path.isdir(path):
            path = os.path.join(path, "train.jsonl")
        starts, steps, evals = read_log(path)
        label = a.label[i] if a.label else os.path.basename(os.path.dirname(os.path.abspath(path)))
        key = {"step": "step", "tokens": "tokens", "time": "elapsed_s"}[a.x]
        if steps:
            xs = [r[key] for r in steps]
            line, = ax_loss.plot(xs, running_mean([r["loss"] for r in steps], a.smooth), label=label, lw=1.2)
            color = line.get_color()
        else:
            color = None
        if evals:
            # eval records carry step and elapsed; tokens follow from the step's record
            tok = {r["step"]: r["tokens"] for r in steps}
            xs = [r["step"] if a.x == "step" else r["elapsed_s"] if a.x == "time" else tok.get(r["step"], float("nan"))
                  for r in evals]
            mqar = any(s.get("data", "").startswith("mqar") for s in starts)
            kind = "accuracy" if mqar else "loss"
            eval_kind = kind if eval_kind in (None, kind) else "mixed"
            ys = [r["eval_accuracy"] if mqar else r["eval_loss"] for r in evals]
            ax_eval.plot(xs, ys, "o-", ms=3, label=label, color=color)
        if starts:
            s = starts[0]
            # who, where and what first; the command wrapped, never cut, so the run can be repeated
            head = "%s: commit %s, %s, seed %s: " % (label, s.get("commit", "?"), s.get("device", "?"), s.get("seed", "?"))
            footer.extend(textwrap.wrap(head + s.get("command", "?"), width=170, subsequent_indent="    ",
                                        break_on_hyphens=False))
    xlabel = {"step": "optimizer step", "tokens": "tokens", "time": "training time (s)"}[a.x]
    ax_loss.set_xlabel(xlabel)
    ax_loss.set_ylabel("training loss (running mean of %d steps)" % a.smooth)
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    ax_eval.set_xlabel(xlabel)
    ax_eval.set_ylabel({"accuracy": "test accuracy", "loss": "evaluation loss"}.get(eval_kind, "evaluation metric"))
    ax_eval.grid(alpha=0.3)
    if ax_eval.lines:
        ax_eval.legend(fontsize=8)
    fig.text(0.01, 0.005, "\n".join(footer), fontsize=6, va="bottom", family="monospace")
    fig.tight_layout(rect=(0, 0.04 + 0.018 * len(footer), 1, 1))
    fig.savefig(a.out, dpi=130)
    print("wrote %s (%d runs)" % (a.out, len(a.logs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

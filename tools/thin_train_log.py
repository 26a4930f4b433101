#!/usr/bin/env python3
"""thin_train_log.py — shortens `bmojo train` JSONL logs for the record: keeps the start event, every
note, every evaluation, the last step and every Nth step line (default 10), in their order; drops
the other step lines. A thinned log still tells tools/mqar_sweep.py that a run finished and still
plots with tools/plot_train.py. Files are rewritten in place (atomically).

    tools/thin_train_log.py [--every N] LOG.jsonl...
"""
import argparse
import json
import os


def thin(lines, every):
    rows = [(line, json.loads(line)) for line in lines if line.strip()]
    last_step = max((i for i, (_, r) in enumerate(rows) if "loss" in r), default=-1)
    out = []
    for i, (line, r) in enumerate(rows):
        is_step = "loss" in r and "eval_accuracy" not in r and "eval_loss" not in r
        if not is_step or i == last_step or r.get("step", 0) % every == 0 or r.get("step") == 1:
            out.append(line.rstrip("\n") + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("logs", nargs="+")
    args = ap.parse_args()
    if args.every < 1:
        ap.error("--every must be >= 1")
    for path in args.logs:
        with open(path) as f:
            kept = thin(f.readlines(), args.every)
        with open(path + ".tmp", "w") as f:
            f.writelines(kept)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""plot_bench.py — decoding speed against depth from `bmojo bench -o jsonl` output.

Usage: plot_bench.py OUT.(png|svg) IN.jsonl [IN.jsonl ...]

Draws tokens/s of the decoding (tg) tests against the depth (tokens already in the state), one
line per model (model_type, else model_filename; the batch size and test length are added to the
label when a file mixes several), with the standard deviation as error bars. Uses matplotlib
when it can be imported; otherwise (or with BMOJO_PLOT_NO_MPL=1) it writes an SVG by hand with
the standard library only — a .png output name then becomes .svg, since PNG needs a rasterizer.
"""
import json
import math
import os
import sys
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]


def read_records(paths):
    recs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"plot_bench.py: {path}:{lineno}: not a JSON object ({e})")
                if isinstance(r, dict):
                    recs.append(r)
    return recs


def series(recs):
    """{label: [(depth, t/s, stddev)]} of the tg records, sorted by depth."""
    tg = [r for r in recs if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0 and "avg_ts" in r]
    batches = {r.get("n_batch", 1) for r in tg}
    gens = {r["n_gen"] for r in tg}
    out = {}
    for r in tg:
        label = str(r.get("model_type") or r.get("model_filename") or "model")
        if len(batches) > 1:
            label += f" b{r.get('n_batch', 1)}"
        if len(gens) > 1:
            label += f" tg{r['n_gen']}"
        out.setdefault(label, []).append((int(r.get("n_depth", 0)), float(r["avg_ts"]),
                                          float(r.get("stddev_ts") or 0.0)))
    for pts in out.values():
        pts.sort()
    return out


def plot_mpl(path, data, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (label, pts) in enumerate(sorted(data.items())):
        xs, ys, es = zip(*pts)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label, color=COLORS[i % len(COLORS)])
    ax.set_xlabel("depth (tokens in the state)")
    ax.set_ylabel("decoding tokens/s")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def nice_ticks(lo, hi, n=5):
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(v)
        v += step
    return ticks


def fmt(v):
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def plot_svg(path, data, title):
    W, H = 800, 500
    L, R, T, B = 80, 200, 50, 60  # margins; the legend sits in the right one
    pw, ph = W - L - R, H - T - B
    xs = [p[0] for pts in data.values() for p in pts]
    ys = [p[1] + p[2] for pts in data.values() for p in pts]
    xt = nice_ticks(min(xs), max(xs))
    yt = nice_ticks(0, max(ys) if max(ys) > 0 else 1)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def X(v):
        return L + (v - x0) / (x1 - x0) * pw if x1 > x0 else L + pw / 2

    def Y(v):
        return T + ph - (v - y0) / (y1 - y0) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L + pw / 2}" y="25" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for v in xt:
        o.append(f'<line x1="{X(v):.1f}" y1="{T}" x2="{X(v):.1f}" y2="{T + ph}" stroke="#ddd"/>')
        o.append(f'<text x="{X(v):.1f}" y="{T + ph + 18}" text-anchor="middle">{fmt(v)}</text>')
    for v in yt:
        o.append(f'<line x1="{L}" y1="{Y(v):.1f}" x2="{L + pw}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 15}" text-anchor="middle">depth (tokens in the state)</text>')
    o.append(f'<text x="20" y="{T + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 20 {T + ph / 2})">decoding tokens/s</text>')
    for i, (label, pts) in enumerate(sorted(data.items())):
        c = COLORS[i % len(COLORS)]
        poly = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y, _ in pts)
        o.append(f'<polyline points="{poly}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y, e in pts:
            if e > 0:
                o.append(f'<line x1="{X(x):.1f}" y1="{Y(max(y - e, y0)):.1f}" x2="{X(x):.1f}" '
                         f'y2="{Y(y + e):.1f}" stroke="{c}"/>')
            o.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3.5" fill="{c}"/>')
        ly = T + 10 + 20 * i
        o.append(f'<line x1="{L + pw + 15}" y1="{ly}" x2="{L + pw + 40}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{L + pw + 45}" y="{ly + 4}">{escape(label)}</text>')
    o.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out, inputs = argv[1], argv[2:]
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".svg"):
        print(f"plot_bench.py: {out}: the output must end in .png or .svg", file=sys.stderr)
        return 2
    data = series(read_records(inputs))
    if not data:
        print("plot_bench.py: no decoding (tg) results in " + ", ".join(inputs), file=sys.stderr)
        return 1
    title = "bmojo bench: decoding speed vs depth"
    use_mpl = os.environ.get("BMOJO_PLOT_NO_MPL", "") in ("", "0")
    if use_mpl:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            use_mpl = False
    if use_mpl:
        plot_mpl(out, data, title)
    else:
        if ext == ".png":
            out = out[: -len(ext)] + ".svg"
            print(f"plot_bench.py: matplotlib not available, wrote an SVG instead: {out}", file=sys.stderr)
        plot_svg(out, data, title)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

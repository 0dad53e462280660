#!/usr/bin/env python3
"""Draws the benchmark plots from the summary that bench/report.py writes.

    plot.py DATA.json OUT_DIR

Prints `name=path` for every image written: w4 (efficiency against grain size, W4 and W4n),
w5 (wake-up latency percentiles), throughput (W1, W2, W3, W8a, W8b).
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "muster": "#d62728", "tbb-arena": "#1f77b4", "tbb-taskgroup": "#17becf", "asio": "#2ca02c",
    "std-async": "#7f7f7f", "py-tpe": "#9467bd", "py-ppe": "#8c564b", "py-mp-tpool": "#e377c2",
}


def color(p):
    return COLORS.get(p, None)


def us_label(us):
    return ("%.0f us" % us) if us >= 10 else ("%.2g us" % us)


def plot_w4(data, path):
    grains = data["grains"]
    nspe = data.get("ns_per_elem")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    top = max([1.1] + [v[2] * 1.05 for w in ("W4", "W4n") for byg in data[w].values()
                       for v in byg.values() if v])
    for ax, w, title in ((axes[0], "W4", "W4: one posted task per chunk"),
                         (axes[1], "W4n", "W4n: the library's parallel loop")):
        for p, byg in data[w].items():
            xs, ys, lo, hi = [], [], [], []
            for g in grains:
                v = byg.get(str(g))
                if v:
                    xs.append(g)
                    ys.append(v[0])
                    lo.append(v[0] - v[1])
                    hi.append(v[2] - v[0])
            if not xs:
                continue
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=4, capsize=3, label=p, color=color(p),
                        lw=2.4 if p == "muster" else 1.4)
        ax.axhline(0.5, color="black", ls="--", lw=0.8)
        ax.text(grains[0], 0.52, "METG-50 threshold", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(grains)
        if nspe:
            ax.set_xticklabels(["%d\n%s" % (g, us_label(g * nspe / 1e3)) for g in grains], fontsize=8)
        else:
            ax.set_xticklabels([str(g) for g in grains], fontsize=8)
        ax.set_xlabel("grain G, elements per task (and task duration)")
        ax.set_title(title)
        ax.set_ylim(0, top)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("efficiency T_seq / (2 T_par)  (median, min-max bars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_w5(data, path):
    metrics = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("max_us", "max")]
    peers = list(data["W5"].keys())
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / max(1, len(peers))
    for i, p in enumerate(peers):
        xs, ys, lo, hi = [], [], [], []
        for j, (m, _lbl) in enumerate(metrics):
            v = data["W5"][p].get(m)
            if v:
                xs.append(j + (i - (len(peers) - 1) / 2) * width)
                ys.append(v[0])
                lo.append(v[0] - v[1])
                hi.append(v[2] - v[0])
        ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=2, label=p, color=color(p))
        for x, y in zip(xs, ys):
            ax.text(x, y * 1.08, "%.3g" % y, ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.set_yscale("log")
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([lbl for _m, lbl in metrics])
    ax.set_ylabel("start - submit, microseconds (log; median, min-max bars)")
    ax.set_title("W5 wake-up latency from idle (one task per ms, 2000 samples, 2 workers)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(peers))
    lo_lim, hi_lim = ax.get_ylim()
    ax.set_ylim(lo_lim, hi_lim * 4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(data, path):
    ws = [w for w in ("W1", "W2", "W3", "W8a", "W8b") if data["throughput"].get(w)]
    peers = []
    for w in ws:
        for p in data["throughput"][w]:
            if p not in peers:
                peers.append(p)
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / max(1, len(peers))
    for i, p in enumerate(peers):
        xs, ys, lo, hi = [], [], [], []
        for j, w in enumerate(ws):
            v = data["throughput"][w].get(p)
            if v:
                xs.append(j + (i - (len(peers) - 1) / 2) * width)
                ys.append(v[0])
                lo.append(v[0] - v[1])
                hi.append(v[2] - v[0])
        ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=2, label=p, color=color(p))
    ax.set_yscale("log")
    ax.set_xticks(range(len(ws)))
    ax.set_xticklabels(["W1 submit", "W2 post", "W3 2 producers", "W8a submit 100k", "W8b post 100k"][:len(ws)]
                       if ws == ["W1", "W2", "W3", "W8a", "W8b"] else ws)
    ax.set_ylabel("tasks per second (log; median, min-max bars)")
    ax.set_title("Task throughput, 2 workers")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=4)
    lo_lim, hi_lim = ax.get_ylim()
    ax.set_ylim(lo_lim, hi_lim * 3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    with open(argv[1]) as f:
        data = json.load(f)
    out = argv[2]
    os.makedirs(out, exist_ok=True)
    if data["W4"] or data["W4n"]:
        p = os.path.join(out, "w4_efficiency.png")
        plot_w4(data, p)
        print("w4=" + p)
    if data["W5"]:
        p = os.path.join(out, "w5_latency.png")
        plot_w5(data, p)
        print("w5=" + p)
    if any(data["throughput"].values()):
        p = os.path.join(out, "throughput.png")
        plot_throughput(data, p)
        print("throughput=" + p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Charts of the buyer's sections: latency CDFs and throughput against batch size with the
knee and the largest batch marked. Each returns a Figure (Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cnnbench.report.charts import WIDTH_IN, finish, plt, short


def latency_cdf(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str) -> Any:
    """One empirical CDF per (label, ms sorted, probability); the x axis is logarithmic so
    the body and the tail are both readable, with the p99 line drawn."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.75, 4.2))
    for label, xs, ps in curves:
        ax.step(xs, ps, where="post", label=short(label, 50))
    ax.axhline(0.99, ls=":", color="grey", lw=1)
    ax.text(ax.get_xlim()[0], 0.99, " p99", va="bottom", fontsize="small", color="grey")
    ax.set_xscale("log")
    return finish(fig, ax, "step latency (ms, log scale)", "fraction of steps at or below",
                   title)


def fit_curves(curves: pd.DataFrame, title: str) -> Any:
    """Throughput against batch size per configuration (ok tries), the knee ringed and the
    first batch that did not fit crossed."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.75, 4.2))
    for label, g in curves.groupby("label", sort=True):
        ok = g[g["status"] == "ok"].sort_values("batch_size")
        line = ax.plot(ok["batch_size"], ok["images_per_s"], marker="o", label=short(label, 50))
        color = line[0].get_color()
        kn = ok[ok["knee"]]
        ax.scatter(kn["batch_size"], kn["images_per_s"], s=160, facecolors="none",
                   edgecolors=color, linewidths=2)
        bad = g[g["status"] == "oom"]
        if not bad.empty and not ok.empty:
            ax.scatter(bad["batch_size"], [ok["images_per_s"].max()] * len(bad), marker="x",
                       color=color)
    ax.set_xscale("log", base=2)
    return finish(fig, ax, "batch size (log 2)", "images/s", title)


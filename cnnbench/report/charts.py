"""The report's matplotlib charts. Each function returns a Figure (Agg backend) and draws
every interval it is given; labels are cut to a readable length, never dropped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

WIDTH_IN = 9.5  # 950 px at the report's 100 dpi: inside a 1366 px laptop screen


def short(text: Any, n: int = 48) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def grouped_bars(df: pd.DataFrame, group: str, series: str, value: str, low: str, high: str,
                 title: str, xlabel: str) -> Any:
    """Horizontal grouped bars: one group of bars per ``group`` value, one bar per ``series``
    value, with whiskers [low, high]; log scale when the values span over 20x."""
    groups = list(dict.fromkeys(df[group]))
    names = list(dict.fromkeys(df[series]))
    h = 0.8 / max(1, len(names))
    rows = len(groups) * max(1.0, len(names) * 0.45)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, min(40.0, 0.35 * rows + 1.6)))
    colors = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
        sub = df[df[series] == name]
        ys = [groups.index(g) + i * h for g in sub[group]]
        v = sub[value].to_numpy(float)
        err = np.vstack([np.clip(v - sub[low].to_numpy(float), 0, None),
                         np.clip(sub[high].to_numpy(float) - v, 0, None)])
        ax.barh(ys, v, height=h, xerr=np.nan_to_num(err), capsize=2, label=short(name, 60),
                color=colors(i % colors.N))
    ax.set_yticks([j + 0.4 - h / 2 for j in range(len(groups))], [short(g) for g in groups])
    ax.invert_yaxis()
    vals = df[value].to_numpy(float)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size:
        # Whiskers of a few runs can be very wide: keep the bars readable, never cut a bar.
        top = min(np.nanmax(df[high].to_numpy(float), initial=vals.max()), 4 * vals.max())
        if vals.max() / vals.min() > 20:
            ax.set_xscale("log")
            xlabel += " (log scale)"
            ax.set_xlim(vals.min() / 2, top * 1.1)
        else:
            ax.set_xlim(0, top * 1.05)
    ax.set_xlabel(xlabel)
    ax.set_title(short(title, 100))
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def forest(labels: Sequence[str], ratio: Sequence[float], low: Sequence[float],
           high: Sequence[float], significant: Sequence[bool], title: str,
           xlabel: str = "ratio (95% CI); 1 = no change") -> Any:
    """Ratios with their intervals as points and bars around a line at 1: filled where the
    interval excludes 1, hollow where it reads "no clear difference"."""
    n = len(labels)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, min(40.0, 0.3 * n + 1.4)))
    y = np.arange(n)
    r, lo, hi = (np.asarray(a, dtype=float) for a in (ratio, low, high))
    sig = np.asarray(significant, dtype=bool)
    ax.errorbar(r, y, xerr=[np.clip(r - lo, 0, None), np.clip(hi - r, 0, None)], fmt="none",
                ecolor="#555", capsize=2, lw=1)
    ax.scatter(r[sig], y[sig], color="#1f77b4", zorder=3, label="clear difference")
    ax.scatter(r[~sig], y[~sig], facecolors="white", edgecolors="#1f77b4", zorder=3,
               label="no clear difference")
    ax.axvline(1.0, color="#b00020", lw=1)
    ax.set_yticks(y, [short(s, 60) for s in labels])
    ax.invert_yaxis()
    if np.nanmax(hi) / max(np.nanmin(lo), 1e-12) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(short(title, 70), loc="left")
    ax.grid(axis="x", which="both", alpha=0.3)
    # above the axes, right of the title, not inside: any corner of the plot can hold a point
    ax.legend(fontsize="small", loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2,
              frameon=False)
    return fig


def heatmap(matrix: pd.DataFrame, notes: pd.DataFrame, title: str, cbar: str) -> Any:
    """A rows x columns heatmap of ratios (log colour scale centred on 1), each cell annotated
    with ``notes`` (the ratio and its interval); blank where there is no value."""
    from matplotlib.colors import LogNorm

    vals = matrix.to_numpy(float)
    fig, ax = plt.subplots(figsize=(min(WIDTH_IN, 1.6 * matrix.shape[1] + 3),
                                    0.6 * matrix.shape[0] + 1.8))
    from matplotlib.ticker import FuncFormatter

    finite = vals[np.isfinite(vals) & (vals > 0)]
    lo = min(0.5, float(finite.min())) if finite.size else 0.5
    hi = max(1.0, float(finite.max())) if finite.size else 1.0
    norm = LogNorm(vmin=lo, vmax=hi)
    im = ax.imshow(np.where(np.isfinite(vals), vals, np.nan), cmap="RdYlGn", norm=norm,
                   aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), [short(c, 20) for c in matrix.columns],
                  rotation=30, ha="right")
    ax.set_yticks(range(matrix.shape[0]), [short(c, 30) for c in matrix.index])
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            text = notes.iat[i, j]
            if isinstance(text, str) and text:
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
    bar = fig.colorbar(im, ax=ax, label=cbar)
    bar.set_ticks(list(np.geomspace(lo, hi, 5)))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
    bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_title(short(title, 100))
    return fig


def lines(df: pd.DataFrame, x: str, y: str, low: str, high: str, series: str, title: str,
          xlabel: str, ylabel: str, ideal: pd.DataFrame | None = None) -> Any:
    """One line with error bars per ``series`` against ``x``; an ``ideal`` frame (same
    columns) is drawn dotted and labelled "ideal"."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.75, 4.2))
    for name, sub in df.groupby(series, sort=True):
        sub = sub.sort_values(x)
        v = sub[y].to_numpy(float)
        err = [np.clip(v - sub[low].to_numpy(float), 0, None),
               np.clip(sub[high].to_numpy(float) - v, 0, None)]
        line = ax.errorbar(sub[x], v, yerr=np.nan_to_num(err), marker="o", capsize=3,
                           label=short(name, 50))
        if ideal is not None:
            ide = ideal[ideal[series] == name].sort_values(x)
            ax.plot(ide[x], ide[y], ls=":", color=line[0].get_color(), label=f"ideal ({short(name, 30)})")
    ys = df[y].to_numpy(float)
    if ideal is not None:
        ys = np.concatenate([ys, ideal[y].to_numpy(float)])
    if np.isfinite(ys).any():
        ax.set_ylim(0, 1.6 * np.nanmax(ys))  # wide whiskers of a few runs run off the top
    return finish(fig, ax, xlabel, ylabel, title)


def finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str) -> Any:
    """Labels, title, grid and the legend outside the plot, as the report's charts have them."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(short(title, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def ladder(df: pd.DataFrame, levels: Sequence[str], panels: Sequence[str], title: str,
           missing: dict[str, str] | None = None) -> Any:
    """Throughput against the ISA ladder: one panel per ``panels`` value (column ``panel``),
    one line per framework (column ``series``), x the ladder's ``levels`` in order, y
    ``ratio`` to the default build with whiskers [``low``, ``high``]; a line at 1 (the
    default build). ``missing``: tick label notes (e.g. "not on this CPU") by level."""
    fig, axes = plt.subplots(1, len(panels), figsize=(WIDTH_IN, 4.0), sharey=True,
                             squeeze=False)
    pos = {lv: i for i, lv in enumerate(levels)}
    names = sorted(set(df["series"]))
    colors = plt.get_cmap("tab10")
    top = np.nanmax(df["high"].to_numpy(float), initial=1.0)
    for ax, panel in zip(axes[0], panels, strict=True):
        sub = df[df["panel"] == panel]
        for i, name in enumerate(names):
            s = sub[sub["series"] == name].copy()
            s["x"] = s["level"].map(pos)
            s = s.dropna(subset=["x", "ratio"]).sort_values("x")
            if s.empty:
                continue
            v = s["ratio"].to_numpy(float)
            err = [np.clip(v - s["low"].to_numpy(float), 0, None),
                   np.clip(s["high"].to_numpy(float) - v, 0, None)]
            ax.errorbar(s["x"] + (i - (len(names) - 1) / 2) * 0.06, v,
                        yerr=np.nan_to_num(err), marker="o", capsize=3,
                        label=short(name, 30), color=colors(i % colors.N))
        ax.axhline(1.0, color="#b00020", lw=1, ls="--")
        ax.set_xticks(range(len(levels)), [
            lv + (f"\n({missing[lv]})" if missing and lv in missing else "") for lv in levels],
            rotation=30, ha="right", fontsize="small")
        ax.set_title(short(panel, 40))
        ax.set_ylim(0, min(max(1.3, 1.1 * top), 4.0))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("images/s ÷ default build (95% CI)")
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       frameon=False)
    fig.suptitle(short(title, 100))
    fig.tight_layout()
    return fig

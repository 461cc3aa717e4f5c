"""Throughput: every cell's images/s with its interval, charted per machine and device, and
the full table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import compare as an
from cnnbench.analyse.pairs import best_per
from cnnbench.core.keys import SYSTEM
from cnnbench.report import charts
from cnnbench.report.htmlkit import Section, details, figure, table
from cnnbench.report.sections.base import (
    MAX_CHART_BARS,
    MAX_CHARTS,
    Inputs,
    ci,
    labels_of,
    num,
    system,
)
from cnnbench.report.sections.registry import section


def _histogram(best: pd.DataFrame, title: str) -> Markup:
    fig = charts.plt.figure(figsize=(charts.WIDTH_IN, 3.5))
    ax = fig.add_subplot()
    v = best["ips"].to_numpy(float)
    ax.hist(np.log10(v[v > 0]), bins=40)
    ax.set_xlabel("log10 images/s of the best configuration per workload and mode")
    ax.set_ylabel("groups")
    ax.set_title(f"{title}: distribution over {len(best):,} workload groups")
    return figure(fig, title)


def _chart(sec: Section, mid: Any, dev: Any, sub: pd.DataFrame) -> None:
    """One machine/device's bars; past MAX_CHART_BARS the best per workload and mode, past
    that again a histogram of those."""
    sub = sub.assign(series=an.config_labels(sub, fields=[f for f in an.CONFIG
                                                           if f not in ("batch_size",)]),
                     group=sub["workload"] + " " + sub["mode"] + " b"
                     + sub["batch_size"].astype(int).astype(str))
    title = f"Throughput on {system(mid, dev)}"
    if len(sub) > MAX_CHART_BARS:
        best = best_per(sub, ["workload", "mode"])
        if len(best) > MAX_CHART_BARS:
            sec.add(_histogram(best, title))
            return
        best = best.assign(series="best configuration", group=best["group"] + " " + best["label"])
        sec.add(f"{system(mid, dev)}: {len(sub):,} cells; the chart shows the best "
                "configuration of each workload and mode.")
        sub = best
    fig = charts.grouped_bars(sub, "group", "series", "ips", "low", "high", title,
                              "images/s (95% CI)")
    sec.add(figure(fig, title))


def _main_table(cells: pd.DataFrame) -> pd.DataFrame:
    t = pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(cells["machine_id"], cells["device"],
                                                         strict=True)],
        "workload": cells["workload"], "mode": cells["mode"],
        "batch": cells["batch_size"].astype(int), "configuration": labels_of(cells),
        "img/s": cells["ips"].map(num), "95% CI": [ci(a, b) for a, b in zip(
            cells["low"], cells["high"], strict=True)],
        "runs": cells["runs"].astype(int),
        "flags": cells["flags"].map(lambda f: ", ".join(f) if isinstance(f, list) else ""),
    })
    return t.drop(columns="machine / device") if t["machine / device"].nunique() == 1 else t


def _more_table(cells: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "cell_id": cells["cell_id"], "framework version": cells["framework_version"],
        "variant": cells["variant"],
        "threads in force": cells["threads_set"].map(
            lambda d: f"{d.get('intra_op')}/{d.get('inter_op')}" if isinstance(d, dict) else ""),
        "MFU %": (100 * cells["mfu"].astype(float)).map(num),
        "first step s": cells["first_step_s"].map(num),
        "spread %": np.where(cells["runs"] > 1, (100 * cells["spread"].astype(float)).map(num), ""),
        "±% (one run)": (100 * cells["rel_ci"].astype(float)).map(num),
    })


@section("throughput", "Throughput", order=20)
def throughput(inp: Inputs, sec: Section) -> None:
    cells = inp.cells
    if cells.empty:
        sec.empty = "No successful cells to chart."
        return
    sec.add("Images/s of each cell: the median step time of its rounds (several runs: the "
            "geometric mean of the runs' medians), with its 95% interval as whiskers. Series "
            "labels name everything that differs between the cells of a chart.")
    systems = list(cells.groupby(SYSTEM, sort=False))
    for i, ((mid, dev), sub) in enumerate(systems):
        if i >= MAX_CHARTS:
            sec.add(f"{len(systems) - MAX_CHARTS} more machines/devices are in the table only.")
            break
        _chart(sec, mid, dev, sub)
    sec.add(table(_main_table(cells), numeric=["batch", "img/s", "runs"], download="cells.csv.gz"))
    sec.add(details("More columns: cell id, version, threads in force, MFU, first step, spread",
                    table(_more_table(cells), numeric=["MFU %", "first step s", "spread %",
                                                       "±% (one run)"],
                          download="cells-more.csv.gz")))

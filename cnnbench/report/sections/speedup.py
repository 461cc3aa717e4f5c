"""Speedup: each cell against its baseline (each framework's own default configuration, or
``--baseline``), and each framework's best against the fastest framework's
(``analyse.pairs``)."""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import pairs
from cnnbench.report import charts
from cnnbench.report.htmlkit import Section, figure, para, table
from cnnbench.report.sections.base import (
    MAX_CHARTS,
    MAX_COMPARISONS,
    MODE_NAMES,
    Inputs,
    forest,
    fw,
    notes_of,
    short_labels,
    speedup_rows,
    system,
)
from cnnbench.report.sections.registry import section


def _against_baseline(inp: Inputs, sec: Section) -> None:
    rows, total = pairs.speedups(inp.records, inp.bank, inp.baseline, MAX_COMPARISONS)
    if inp.baseline:
        what = ", ".join(f"{k}={v}" for k, v in inp.baseline.items())
        sec.add(f"Against the baseline {what}: every other cell that differs from it only in "
                f"{', '.join(inp.baseline)}, on the same machine and device.")
    else:
        sec.add("Against each framework's own default configuration (its default execution "
                "mode, the default build, all threads): what each other setting of the same "
                "framework gains. Choose another baseline with --baseline, e.g. "
                "--baseline framework=pytorch,exec_mode=eager.")
    if rows.empty:
        sec.add("No cell has a baseline to compare with in its group (a speedup needs the "
                "baseline configuration measured at the same workload, mode, batch and "
                "precision).")
        return
    sec.add(forest(rows, short_labels(rows), "Speedup over the baseline (see the table)"))
    sec.add(table(speedup_rows(rows), numeric=["img/s"], download="speedup.csv.gz"))
    if total > len(rows):
        sec.add(f"{len(rows)} of {total:,} comparisons computed (the first in key order).")
    for n in notes_of(rows):
        sec.add(para(n, "note"))


def _heatmap(h: pairs.Heatmap) -> Markup:
    """Framework x workload: each framework's best over the fastest, with its interval."""
    notes = pd.DataFrame("", index=h.ratio.index, columns=h.ratio.columns)
    for (f, wl), cmp in h.cmps.items():
        notes.loc[f, wl] = "fastest" if cmp is None else (
            f"{cmp.ratio:.2f}\n[{cmp.low:.2f}, {cmp.high:.2f}]"
            + ("" if cmp.significant else "\nno clear diff."))
    mode = MODE_NAMES.get(str(h.mode), str(h.mode)).capitalize()
    title = f"{mode} on {system(h.machine_id, h.device)}: each framework's best / the fastest"
    mat, notes = h.ratio.rename(index=fw), notes.rename(index=fw)
    return figure(charts.heatmap(mat, notes, title, "ratio to the fastest"), title)


def _against_fastest(inp: Inputs, sec: Section) -> None:
    best = pairs.best_per_framework(inp.cells)
    fast = pairs.against_fastest(best, inp.bank, MAX_COMPARISONS)
    sec.add(Markup("<h3>Against the fastest framework on the same device</h3>"))
    if fast.empty:
        sec.add("Only one framework was measured per workload: nothing to rank.")
        return
    sec.add("Each framework's best configuration as a fraction of the fastest framework's, at "
            "the same workload, mode, batch and precision (1 = as fast as the fastest).")
    sec.add(table(speedup_rows(fast), numeric=["img/s"], download="vs-fastest.csv.gz"))
    for h in pairs.heatmaps(best, inp.bank, MAX_CHARTS):
        sec.add(_heatmap(h))


@section("speedup", "Speedup", order=30)
def speedup(inp: Inputs, sec: Section) -> None:
    if inp.cells.empty:
        sec.empty = "No successful cells: no speedups."
        return
    _against_baseline(inp, sec)
    _against_fastest(inp, sec)

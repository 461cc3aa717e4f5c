"""Execution mode and precision: each execution mode over the framework's default mode, each
precision over fp32, all else equal (``analyse.pairs``)."""

from __future__ import annotations

from markupsafe import Markup

from cnnbench.analyse import pairs
from cnnbench.report.htmlkit import Section, esc, table
from cnnbench.report.sections.base import (
    MAX_COMPARISONS,
    Inputs,
    forest,
    short_labels,
    speedup_rows,
)
from cnnbench.report.sections.registry import section


@section("modes", "Execution mode and precision", order=40)
def modes(inp: Inputs, sec: Section) -> None:
    if inp.cells.empty:
        sec.empty = "No successful cells."
        return
    parts = []
    rows_e, tot_e = pairs.exec_mode_speedups(inp.records, inp.bank, MAX_COMPARISONS)
    rows_p, tot_p = pairs.precision_speedups(inp.records, inp.bank, MAX_COMPARISONS)
    for rows, total, what, name in (
            (rows_e, tot_e, "each execution mode over the framework's default mode", "modes"),
            (rows_p, tot_p, "each precision over fp32, in the same execution mode",
             "precision")):
        if rows.empty:
            continue
        parts.append(what)
        sec.add(Markup(f"<h3>{esc(what.capitalize())}</h3>"))
        sec.add(forest(rows, short_labels(rows), what.capitalize()))
        sec.add(table(speedup_rows(rows), numeric=["img/s"], download=f"{name}.csv.gz"))
        if total > len(rows):
            sec.add(f"{len(rows)} of {total:,} comparisons shown.")
    if not parts:
        sec.empty = ("No cell was measured in two execution modes or two precisions with all "
                     "else equal (use --exec-modes eager,compiled or --precisions fp32,bf16).")

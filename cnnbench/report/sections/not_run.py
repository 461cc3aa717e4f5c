"""Cells that did not run: every row whose status is not ok, by status."""

from __future__ import annotations

from cnnbench.report.htmlkit import Section, table
from cnnbench.report.sections.base import Inputs
from cnnbench.report.sections.registry import section


@section("not-run", "Cells that did not run", order=120)
def not_run(inp: Inputs, sec: Section) -> None:
    df = inp.df
    failed = df[df["status"] != "ok"] if not df.empty else df
    if failed.empty:
        sec.empty = "Every cell ran."
        return
    counts = failed["status"].value_counts()
    sec.add(f"{len(failed):,} cell(s) did not run; by status: "
            + ", ".join(f"{s} {n:,}" for s, n in counts.items()) + ".")
    t = failed.sort_values("started_at", na_position="last")[
        ["framework", "variant", "device", "workload", "mode", "batch_size", "precision",
         "exec_mode", "status", "error"]].rename(columns={"batch_size": "batch"})
    sec.add(table(t, download="not-run.csv.gz"))

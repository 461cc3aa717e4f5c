"""Peak memory against batch size, per framework, and the largest-batch searches."""

from __future__ import annotations

import pandas as pd

from cnnbench.analyse import buyer
from cnnbench.report import buyer_charts
from cnnbench.report.htmlkit import Section, figure, table
from cnnbench.report.sections.base import Inputs
from cnnbench.report.sections.registry import section


def _label(df: pd.DataFrame) -> pd.Series:
    return (df["framework"] + " " + df["workload"] + " " + df["mode"] + " "
            + df["exec_mode"] + " " + df["device"])


@section("memory", "Peak memory and the largest batch", order=85)
def memory(inp: Inputs, sec: Section) -> None:
    mem = buyer.memory_table(inp.df)
    curves = buyer.fit_curves(inp.df)
    if mem.empty and curves.empty:
        sec.empty = "No row records its peak memory (rows written before cnnbench measured it)."
        return
    if not mem.empty:
        sec.add("The worker's peak resident memory (the kernel's high-water mark, reset after "
                "the framework's import, read after the timed rounds), what the cell added over "
                "the process after import, and on GPUs the framework's own peak of allocated "
                "device memory.")
        shown = mem.rename(columns={"peak_rss_mb": "peak RSS MB", "rss_added_mb": "added MB",
                                    "device_peak_mb": "device peak MB",
                                    "peak_vm_mb": "address space MB"})
        sec.add(table(shown, numeric=["batch_size", "peak RSS MB", "added MB", "device peak MB",
                                      "address space MB"], download="memory.csv"))
    if not curves.empty:
        summary = buyer.fit_summary(curves)
        sec.add("Largest batch that fits: doubling, then bisection, each try a fresh worker; "
                "the knee is the smallest batch within 5% of the best throughput.")
        sec.add(table(pd.DataFrame(summary), numeric=["largest_batch", "knee_batch", "limit_mb"]))
        c = curves.copy()
        c["label"] = _label(c)
        sec.add(figure(buyer_charts.fit_curves(c, "Throughput against batch size (knee ringed, "
                                                  "first batch that did not fit crossed)"),
                       "throughput against batch size"))

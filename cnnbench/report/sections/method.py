"""Method: how cells are measured and compared, the reference bundles read, the software and
variants that ran, and the measured GEMM peaks (``analyse.inventory``)."""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import inventory
from cnnbench.report.htmlkit import Section, bullets, table
from cnnbench.report.sections.base import Inputs, num
from cnnbench.report.sections.registry import section

HOW = [
    "Each cell runs in a fresh worker process in its framework's own environment, with "
    "synthetic data and generated weights. The first step (compilation, graph capture) "
    "is timed apart; warm-up runs until the step time stops drifting; then timed rounds "
    "of several steps, each ended by a device sync, until the median's 95% interval "
    "reaches its target or the cell's budget (warm-up plus rounds) runs out.",
    "A cell's images/s is batch size ÷ median step time; its interval is the "
    "distribution-free interval of the median (one run) or the hierarchical bootstrap "
    "over runs then rounds with Student's t (several runs).",
    "A comparison of two cells is the ratio of their throughputs with a 95% interval: "
    "between runs, Welch's t on the log of each run's median with a resample of runs then "
    "rounds; one run a side, a bootstrap of the ratio of medians and Mann–Whitney U on the "
    "rounds, which does not cover the noise between processes. A ratio whose interval "
    "crosses 1 reads \"no clear difference\". Geometric means resample the cells and each "
    "cell's own interval.",
    "Flags: ci_wide, above_peak (faster than the device's measured GEMM peak), "
    "time_not_growing, warmup_unsteady, busy_machine, over_budget, threads_mismatch; see "
    "the README's schema.",
    "Every figure traces to its results row by cell_id (the Throughput section's "
    "More columns, and the downloads).",
]


def _peaks(sec: Section, df: pd.DataFrame) -> None:
    pk = inventory.peaks(df)
    if not pk:
        return
    t = pd.DataFrame(pk)
    t.insert(list(t.columns).index("n"), "gflops", t["flops"].map(lambda v: format(v / 1e9, ".1f")))
    sec.add(Markup("<h3>Measured peaks</h3>"))
    sec.add("Each device's peak is the fastest round of any framework's n×n GEMM probe at "
            "that thread count and precision; MFU = achieved FLOP/s ÷ peak.")
    sec.add(table(t.drop(columns=["flops"]), numeric=["gflops", "n"]))


@section("method", "Method", order=110)
def method(inp: Inputs, sec: Section) -> None:
    df = inp.df
    sec.add(bullets(HOW))
    if inp.notes:
        sec.add(Markup("<h3>Results read</h3>"))
        sec.add(bullets(inp.notes))
    if df.empty:
        sec.add("No rows.")
        return
    sw = inventory.software(df)
    sec.add(Markup("<h3>Software and variants</h3>"))
    sw["budget_s"] = sw["budget_s"].map(num)
    sec.add(table(sw.rename(columns={"budget_s": "budget s", "machine_id": "machine",
                                     "framework_version": "version"}),
                  numeric=["cells", "budget s"]))
    _peaks(sec, df)

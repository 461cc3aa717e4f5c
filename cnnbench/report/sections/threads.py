"""Thread scaling: throughput and efficiency against the CPU thread count
(``analyse.scaling.thread_scaling``)."""

from __future__ import annotations

from cnnbench.analyse.scaling import thread_scaling
from cnnbench.report.htmlkit import Section, table
from cnnbench.report.sections.base import Inputs, curves, scaling_rows, scaling_table
from cnnbench.report.sections.registry import section

EMPTY = ("No cell was run at two or more thread counts with all else equal "
         "(use --threads 1,2,…).")
INTRO = ("Throughput and efficiency against the CPU thread count, each against the same "
         "cell at the fewest threads (efficiency = speedup ÷ (threads ÷ fewest)), with the "
         "ideal line and a projection past the largest count (dashed: a fit, not a "
         "measurement).")


@section("threads", "Thread scaling", order=60)
def threads(inp: Inputs, sec: Section) -> None:
    t = scaling_rows(inp, sec, thread_scaling, EMPTY, INTRO)
    if t is None:
        return
    curves(sec, t, ["machine_id", "workload", "mode", "batch_size"], "Thread scaling")
    sec.add(table(scaling_table(t, "threads"), numeric=["threads"], download="threads.csv.gz"))

"""Data-parallel scaling: throughput and efficiency against the number of devices, hardware
and simulated devices apart (``analyse.scaling``)."""

from __future__ import annotations

from markupsafe import Markup

from cnnbench.analyse.scaling import SEED_LABEL, device_scaling
from cnnbench.report.htmlkit import Section, table
from cnnbench.report.sections.base import Inputs, curves, scaling_rows, scaling_table
from cnnbench.report.sections.registry import section

EMPTY = ("No data-parallel cells with their one-device baseline in these results "
         "(use --devices cpu,cpu*2 or gpu:0,gpu:0+1 with --scaling weak,strong).")
INTRO = ("Weak scaling keeps the per-device batch fixed, strong scaling the global batch; "
         "efficiency is t1 / (N·tN) against the same framework's one-device run in the same "
         "results, with the comparison layer's interval. Simulated devices (cpu*N) share "
         "the same cores: they measure the overhead of the data-parallel path, never "
         "hardware scaling, and are kept apart. The seed's claim, drawn as a star on "
         f"hardware GPUs' charts of training with weak scaling: "
         f"{SEED_LABEL.removeprefix('seed claim: ')}.")


@section("scaling", "Data-parallel scaling", order=70)
def scaling(inp: Inputs, sec: Section) -> None:
    t = scaling_rows(inp, sec, device_scaling, EMPTY, INTRO)
    if t is None:
        return
    for sim in (False, True):
        part = t[t["simulated"] == sim]
        if part.empty:
            continue
        sec.add(Markup(f"<h3>{'Simulated devices' if sim else 'Hardware devices'}</h3>"))
        curves(sec, part, ["machine_id", "workload", "mode", "scaling", "simulated"],
               "Data-parallel scaling")
        sec.add(table(scaling_table(part, "devices"), numeric=["devices"],
                      download=f"scaling-{'simulated' if sim else 'hardware'}.csv.gz"))

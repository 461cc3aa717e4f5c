"""Energy: images per joule, measured where the machine exposes counters."""

from __future__ import annotations

from cnnbench.analyse import buyer
from cnnbench.report.htmlkit import Section, table
from cnnbench.report.sections.base import Inputs
from cnnbench.report.sections.registry import section


@section("energy", "Energy", order=87)
def energy(inp: Inputs, sec: Section) -> None:
    en = buyer.energy_table(inp.df, inp.prices)
    if en.empty:
        sec.empty = "No ok rows."
        return
    if (en["source"] == "none").all():
        reasons = sorted({str(r) for r in en["reason"].dropna()})
        sec.empty = ("No energy counter was readable and no prices file declares watts: "
                     + ("; ".join(reasons) if reasons else "rows written before cnnbench measured energy"))
        return
    sec.add("Images per joule over the timed rounds: RAPL (package + DRAM) on CPUs, NVML's "
            "energy counter on GPUs where readable ('measured'), else the prices file's "
            "declared watts and the measured throughput ('declared').")
    sec.add(table(en.drop(columns=["reason"]), numeric=["batch_size", "images_per_joule", "watts"],
                  download="energy.csv"))

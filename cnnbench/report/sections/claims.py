"""The seeds' claims checked: each claim of ``analyse.claims.CLAIMS`` beside what these
results show, like for like."""

from __future__ import annotations

from cnnbench.analyse.claims import check_claims
from cnnbench.analyse.scaling import device_scaling
from cnnbench.report.htmlkit import Section, table
from cnnbench.report.sections.base import Inputs
from cnnbench.report.sections.registry import section


@section("claims", "The seeds' claims checked", order=100)
def claims(inp: Inputs, sec: Section) -> None:
    scaling = device_scaling(inp.df) if not inp.cells.empty else None
    t = check_claims(inp.df, inp.cells, scaling, inp.machines)
    sec.add("Each claim from the seeds beside what these results show, like for like: one GPU "
            "against the CPU at the same framework, batch, precision and execution mode, "
            "builds that differ in one thing only, two GPUs training with weak scaling; and "
            "this CPU's own figures beside the seeds', with what is not like for like. A ratio "
            "whose interval crosses 1 reads \"no clear difference\".")
    sec.add(table(t))

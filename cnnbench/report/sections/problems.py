"""Problems reading results: every line of every results file that could not be read."""

from __future__ import annotations

from cnnbench.report.htmlkit import Section, bullets
from cnnbench.report.sections.base import Inputs
from cnnbench.report.sections.registry import section

MAX_PROBLEMS = 200  # listed; the rest are counted


@section("problems", "Problems reading results", order=130)
def problems(inp: Inputs, sec: Section) -> None:
    if not inp.problems:
        sec.empty = "None: every line of every results file was read."
        return
    sec.add(bullets(inp.problems[:MAX_PROBLEMS]))
    if len(inp.problems) > MAX_PROBLEMS:
        sec.add(f"… and {len(inp.problems) - MAX_PROBLEMS} more.")

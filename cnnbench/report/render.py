"""The HTML report: pandas tables and matplotlib charts, rebuilt entirely from JSON Lines.

Self-contained (charts are embedded PNG data URIs, styles inline), and every string taken
from results goes through Jinja2's autoescaping, so a shared results file cannot inject
markup or script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cnnbench.core.files import write_atomic
from cnnbench.core.prices import Price
from cnnbench.core.results import load_results
from cnnbench.report.htmlkit import Section
from cnnbench.report.sections.base import Inputs, Job
from cnnbench.report.sections.registry import load_all


def build_sections(df: pd.DataFrame, problems: list[str], machines: dict[str, dict[str, Any]],
                   prices: list[Price] | None = None, *, baseline: dict[str, str] | None = None,
                   reference_machine: str | None = None, job: Any = None,
                   notes: list[str] | None = None) -> list[Section]:
    """Every registered section of the report, in order (``registry.load_all``): each is a
    ``<section id>`` with an ``<h2>``; one without data says so in a line, never left out."""
    inp = Inputs(df, problems, machines, prices or [], baseline, reference_machine,
                 job or Job(), notes or [])
    return [e.render(inp) for e in load_all()]


def render(df: pd.DataFrame, problems: list[str], sections: list[Section]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("cnnbench.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    runs = sorted(set(df["run_id"].dropna())) if len(df) else []
    return env.get_template("report.html.j2").render(
        generated=datetime.now(UTC).isoformat(timespec="seconds"), n_rows=len(df),
        n_ok=int((df["status"] == "ok").sum()) if len(df) else 0, runs=runs,
        machines=sorted(set(df["machine_id"].dropna())) if len(df) else [],
        sections=sections, n_problems=len(problems))


def write_report(paths: list[Path], output: Path, prices: list[Price] | None = None, *,
                 baseline: dict[str, str] | None = None, reference_machine: str | None = None,
                 job: Any = None, with_reference: bool = False,
                 warn: Callable[[str], None] | None = None, notes: Sequence[str] = ()) -> Path:
    """Read results, build every section, and write exactly one file: ``output``
    (atomically). ``warn`` gets the problems met reading (the first few) and the reference
    bundles read or left out (with ``notes``, shown in the Method section), a line each."""
    notes = list(notes)
    df, problems, machines = load_results([Path(p) for p in paths],
                                          with_reference=with_reference, notes=notes)
    if warn is not None:
        for line in problems[:_WARN_LINES]:
            warn(f"warning: {line}")
        if len(problems) > _WARN_LINES:
            warn(f"warning: {len(problems) - _WARN_LINES:,} more problems: see the report's "
                 "\"Problems reading results\"")
        for line in notes:
            warn(f"note: {line}")
    secs = build_sections(df, problems, machines, prices, baseline=baseline,
                          reference_machine=reference_machine, job=job, notes=notes)
    return write_atomic(Path(output), render(df, problems, secs))


_WARN_LINES = 5  # problems repeated on stderr; the report lists them all

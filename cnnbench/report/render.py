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
from cnnbench.core.keys import peak_key, probe_peak
from cnnbench.core.prices import Price
from cnnbench.core.results import load_results

# The report's sections, in order: (HTML id, heading). Each is a <section id=...> with an <h2>;
# a section without data says so in one line, it is never left out.
SECTIONS = (
    ("summary", "Summary"),
    ("throughput", "Throughput"),
    ("speedup", "Speedup"),
    ("modes", "Execution mode and precision"),
    ("builds", "What a build for your CPU buys you"),
    ("threads", "Thread scaling"),
    ("scaling", "Data-parallel scaling"),
    ("machines", "Machines compared"),
    ("memory", "Peak memory and the largest batch"),  # issue 24 (registry modules)
    ("latency", "Latency"),
    ("energy", "Energy"),
    ("buyers", "Buyer's view"),
    ("claims", "The seeds' claims checked"),
    ("method", "Method"),
    ("not-run", "Cells that did not run"),
    ("problems", "Problems reading results"),
)
SECTION_IDS = tuple(s for s, _ in SECTIONS)


def peaks(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The measured GEMM peak per machine, device, threads and precision (best probe)."""
    probes = df[(df["status"] == "ok") & (df["mode"] == "peak")]
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in probes.to_dict("records"):
        r = {str(k): v for k, v in row.items()}
        flops = probe_peak(r)
        if flops is None:
            continue
        key = peak_key(r)
        if key not in best or flops > best[key]["flops"]:
            best[key] = {"machine": r["machine_id"], "device": r["device"],
                         "threads": r["threads"], "precision": r["precision"],
                         "framework": r["framework"], "flops": flops,
                         "gflops": _fmt(flops / 1e9), "n": int(r["batch_size"])}
    return [best[k] for k in sorted(best, key=str)]


def _fmt(v: Any, spec: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return format(v, spec)


def build_sections(df: pd.DataFrame, problems: list[str], machines: dict[str, dict[str, Any]],
                   prices: list[Price] | None = None, *, baseline: dict[str, str] | None = None,
                   reference_machine: str | None = None, job: Any = None,
                   notes: list[str] | None = None) -> list[Any]:
    """Every section of the report, in SECTIONS order (a section without data says so)."""
    from cnnbench.report import sections as S
    from cnnbench.report.sections.base import Inputs, Job
    from cnnbench.report.sections.registry import load_all

    inp = Inputs(df, problems, machines, prices or [], baseline, reference_machine,
                 job or Job(), notes or [])
    # The built-in sections (orders 10, 20, ... 130) and every registered one, by order.
    entries = load_all()
    built = [(10.0 * (i + 1), build(inp)) for i, build in enumerate(S.BUILDERS)]
    built += [(e.order, e.render(inp)) for e in entries]
    out = [sec for _, sec in sorted(built, key=lambda t: t[0])]
    return out


def render(df: pd.DataFrame, problems: list[str], sections: list[Any]) -> str:
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

"""The HTML report: pandas tables and matplotlib charts, rebuilt entirely from JSON Lines.

Self-contained (charts are embedded PNG data URIs, styles inline), and every string taken
from results goes through Jinja2's autoescaping, so a shared results file cannot inject
markup or script.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .files import write_atomic
from .prices import Price
from .schema import REQUIRED, iter_rows, result_files
from .validity import peak_key, probe_peak

# What makes two rows the same cell: everything in its cell_id except the repeat index.
# Adapter options are a dict, so they take part as their canonical JSON (options_key).
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
    ("buyers", "Buyer's view"),
    ("claims", "The seeds' claims checked"),
    ("method", "Method"),
    ("not-run", "Cells that did not run"),
    ("problems", "Problems reading results"),
)
SECTION_IDS = tuple(s for s, _ in SECTIONS)

KEY = ["machine_id", "framework", "variant", "device", "workload", "mode", "batch_size",
       "precision", "exec_mode", "threads", "options_key"]


# Row fields that repeat across the rows of a sweep (dicts and lists of strings).
_SHARED = ("build", "env", "options", "threads_set", "kernels", "busy", "flags", "python",
           "device_name", "framework_version")


def _canonical(value: Any) -> bytes | None:
    if isinstance(value, str):
        return value.encode()
    try:
        import orjson

        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (ImportError, TypeError):
        try:
            return json.dumps(value, sort_keys=True).encode()
        except (TypeError, ValueError):
            return None


def load_results(paths: list[Path]) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, Any]]]:
    """(all rows as a DataFrame, problems met while reading, machine records by id)."""
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    machines: dict[str, dict[str, Any]] = {}
    chunks: list[pd.DataFrame] = []

    def flush() -> None:  # rows become columns 20,000 at a time: dicts cost 5x the memory
        if rows:
            chunks.append(pd.DataFrame(rows, columns=list(REQUIRED)))
            rows.clear()

    shared: dict[bytes, Any] = {}

    def share(value: Any) -> Any:
        """One object for equal build facts, environments...: 100,000 rows of one sweep
        hold a handful of distinct ones, and a dict per row would be most of the memory."""
        key = _canonical(value)
        return shared.setdefault(key, value) if key is not None else value

    for f in result_files(paths):
        for row in iter_rows(f, problems):
            for col in _SHARED:
                v = row.get(col)
                if v:
                    row[col] = share(v)
            rows.append(row)
            if len(rows) >= 20_000:
                flush()
        flush()
        mfile = f.parent / "machine.json"
        if mfile.is_file() and str(mfile) not in machines:
            try:
                rec = json.loads(mfile.read_text(encoding="utf-8"))
                if isinstance(rec, dict):
                    machines[str(mfile)] = rec
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                problems.append(f"{mfile}: unreadable machine record ({exc})")
    df = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(REQUIRED))
    by_id = {str(m.get("machine_id")): m for m in machines.values()}
    return df, problems, by_id


def latest_ok(df: pd.DataFrame) -> pd.DataFrame:
    """The newest ok row per cell key, with how many ok runs (repeats) that key has and the
    spread of their images/s: (max - min) / median (``analysis.cells_table``)."""
    from .analysis import cells_table

    cells = cells_table(df)
    return cells.sort_values(["machine_id", "device", "workload", "mode", "framework"])


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
                   reference_machine: str | None = None, job: Any = None) -> list[Any]:
    """Every section of the report, in SECTIONS order (a section without data says so)."""
    from . import sections as S

    inp = S.Inputs(df, problems, machines, prices or [], baseline, reference_machine,
                   job or S.Job())
    out = [build(inp) for build in S.BUILDERS]
    assert [s.id for s in out] == list(SECTION_IDS), "sections out of order"
    return out


def render(df: pd.DataFrame, problems: list[str], sections: list[Any]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("cnnbench", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    runs = sorted(set(df["run_id"].dropna())) if len(df) else []
    return env.get_template("report.html.j2").render(
        generated=datetime.now(UTC).isoformat(timespec="seconds"), n_rows=len(df),
        n_ok=int((df["status"] == "ok").sum()) if len(df) else 0, runs=runs,
        machines=sorted(set(df["machine_id"].dropna())) if len(df) else [],
        sections=sections, n_problems=len(problems))


def write_report(paths: list[Path], output: Path, prices: list[Price] | None = None, *,
                 baseline: dict[str, str] | None = None, reference_machine: str | None = None,
                 job: Any = None) -> Path:
    """Read results, build every section, and write exactly one file: ``output``
    (atomically)."""
    df, problems, machines = load_results([Path(p) for p in paths])
    secs = build_sections(df, problems, machines, prices, baseline=baseline,
                          reference_machine=reference_machine, job=job)
    return write_atomic(Path(output), render(df, problems, secs))

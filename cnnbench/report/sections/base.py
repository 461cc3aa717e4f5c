"""What every section shares: the report's inputs (rows, cells, samples), the job the
buyer's view prices, and the formatting of numbers, labels and intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import compare as an
from cnnbench.analyse.pairs import SampleBank, records
from cnnbench.core.keys import KEY, WORKLOAD
from cnnbench.core.prices import Price
from cnnbench.report import charts
from cnnbench.report.htmlkit import Section, details, figure, table

MAX_FINDINGS = 120  # summary sentences (groups) computed and shown
MAX_COMPARISONS = 400  # comparisons per section
MAX_CHART_BARS = 60  # bars in one throughput chart before it charts the best per group
MAX_CHARTS = 8  # charts of one kind in a section

FRAMEWORK_NAMES, MODE_NAMES = an.FRAMEWORK_NAMES, an.MODE_NAMES


@dataclass(frozen=True)
class Job:
    """The training job the buyer's view prices: ``images`` per epoch x ``epochs``."""

    workload: str = "resnet50"
    epochs: int = 90
    images: int = 1_281_167

    @property
    def total(self) -> int:
        return self.epochs * self.images

    def text(self) -> str:
        return f"{self.workload}, {self.epochs} epochs of {self.images:,} images"


@dataclass
class Inputs:
    # Every row read, less the ok rows of the tuner's rungs: those are screening runs (a
    # shorter protocol, candidates sharing a process) that only rank the search's candidates,
    # so no section counts them as runs of a cell (the ceiling's final rows stay).
    df: pd.DataFrame
    problems: list[str]
    machines: dict[str, dict[str, Any]]
    prices: list[Price] = field(default_factory=list)
    baseline: dict[str, str] | None = None
    reference_machine: str | None = None
    job: Job = field(default_factory=Job)
    notes: list[str] = field(default_factory=list)  # reference bundles read or left out
    cells: pd.DataFrame = field(init=False)
    hardware: pd.DataFrame = field(init=False)  # cells on a machine's own devices
    searched: pd.DataFrame = field(init=False)  # every row of the tuner, rungs included
    _bank: SampleBank | None = field(init=False, default=None, repr=False)
    _records: list[dict[str, Any]] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        stage = self.df["stage"] if "stage" in self.df else pd.Series(None, index=self.df.index)
        self.searched = self.df[stage.notna()]
        screening = stage.astype(str).str.startswith("rung") & (self.df.get("status") == "ok")
        if screening.any():
            self.df = self.df[~screening]
            self.notes = [*self.notes, (
                f"{int(screening.sum())} screening runs of cnnbench tune's rungs are left out "
                "of every section but The ceiling: they only rank the search's candidates "
                "(a shorter protocol, candidates sharing a process)")]
        self.cells = an.cells_table(self.df)
        if not self.cells.empty:
            # Batch, device and machine have columns of their own wherever a label is shown.
            self.cells["label"] = an.config_labels(self.cells, fields=[
                f for f in an.CONFIG if f not in ("batch_size", "device", "machine_id")])
            self.cells = self.cells.sort_values(
                [*WORKLOAD, "batch_size", "framework", "label"], kind="stable").reset_index(drop=True)
        # Simulated device sets measure overhead: they are no machine to answer with.
        self.hardware = self.cells[~an.simulated(self.cells)]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The cells' main columns, as dicts (made on first use)."""
        if self._records is None:
            cols = [c for c in [*KEY, "label", "ips", "low", "high", "runs", "cell_id",
                                "framework_version", "n_devices"] if c in self.cells]
            self._records = records(self.cells[cols])
        return self._records

    @property
    def bank(self) -> SampleBank:
        """The cells' raw samples, for comparisons (keyed on first use)."""
        if self._bank is None:
            self._bank = SampleBank(self.df)
        return self._bank


# ------------------------------------------------------------------- formatting


def fw(name: Any) -> str:
    return FRAMEWORK_NAMES.get(str(name), str(name))


def num(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    if v != v or v in (math.inf, -math.inf):
        return ""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def nice(framework: Any, label: Any) -> str:
    """A configuration label with the framework's proper name first."""
    f, lab = str(framework), str(label)
    return fw(f) + lab[len(f):] if lab.startswith(f) else lab


def labels_of(cells: pd.DataFrame, label: str = "label", framework: str = "framework") -> list[str]:
    """nice_label for every row, without a per-row pandas apply."""
    return [nice(f, lab) for f, lab in zip(cells[framework].astype(str).tolist(),
                                           cells[label].astype(str).tolist(), strict=True)]


def ci(lo: Any, hi: Any) -> str:
    a, b = num(lo), num(hi)
    return f"[{a}, {b}]" if a and b else ""


def system(machine: Any, device: Any) -> str:
    return f"{machine} {'CPU' if device == 'cpu' else device}"


def nice_label(row: Mapping[Any, Any]) -> str:
    """A cell's label with the framework's proper name first."""
    return nice(row.get("framework"), row.get("label") or row.get("framework"))


def forest(rows: pd.DataFrame, labels: Sequence[str], title: str) -> Markup:
    rows = rows.head(40)
    fig = charts.forest(list(labels)[:40], rows["ratio"].tolist(), rows["low"].tolist(),
                        rows["high"].tolist(), rows["significant"].astype(bool).tolist(), title)
    return figure(fig, title)


def short_labels(rows: pd.DataFrame) -> list[str]:
    """Chart labels of compared cells: the workload, then the contender (the table beside the
    chart names the baseline)."""
    return [f"{w} {m} b{int(b)}: {lab}" for w, m, b, lab in zip(
        rows["workload"], rows["mode"], rows["batch_size"], labels_of(rows), strict=True)]


def notes_of(rows: pd.DataFrame) -> list[str]:
    notes = sorted({n for n in rows.get("note", pd.Series(dtype=str)) if n})
    return [f"Note: {n}." for n in notes]


def simulated_note(inp: Inputs) -> str:
    n = len(inp.cells) - len(inp.hardware)
    return (f"{n:,} cells on simulated device sets (cpu*N: devices sharing the same cores) are "
            "left out here: they measure data-parallel overhead, not a machine (see "
            "Data-parallel scaling)." if n else "")


def speedup_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The table of compared cells (``analyse.pairs``' rows): system, work, the contender,
    the baseline, the contender's images/s and the ratio with its interval."""
    return pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(rows["machine_id"], rows["device"],
                                                         strict=True)],
        "workload": rows["workload"] + " " + rows["mode"] + " b"
        + rows["batch_size"].astype(int).astype(str) + " " + rows["precision"],
        "configuration": labels_of(rows),
        "baseline": labels_of(rows, "base_label", "base_framework"),
        "img/s": rows["ips"].map(num),
        "ratio [95% CI]": rows["text"],
    })


# ------------------------------------------------------------------- scaling (threads, devices)


def scaling_table(t: pd.DataFrame, what: str) -> pd.DataFrame:
    """A ``device_scaling`` or ``thread_scaling`` table as the report shows it."""
    return pd.DataFrame({
        "cell": [f"{r['machine_id']} {r['workload']} {r['mode']} {fw(r['framework'])} "
                 f"{r['exec_mode']}" + (f" {r['variant']}" if r["variant"] != "default" else "")
                 for r in records(t)],
        what: t["n"].astype(int),
        "batch (global / per device)": [f"{int(b)} / {int(p)}" for b, p in zip(
            t["batch_size"], t["per_device_batch"], strict=True)],
        "img/s [95% CI]": [f"{num(v)} {ci(lo, hi)}" for v, lo, hi in zip(
            t["images_per_s"], t["ips_low"], t["ips_high"], strict=True)],
        "speedup [95% CI]": [f"{v:.2f} [{lo:.2f}, {hi:.2f}]" for v, lo, hi in zip(
            t["speedup"], t["speedup_low"], t["speedup_high"], strict=True)],
        "efficiency [95% CI]": t["text"],
        "verdict": [("baseline" if n == b else v) for n, b, v in zip(
            t["n"], t["baseline_n"], t["verdict"], strict=True)],
    })


def curves(sec: Any, table_: pd.DataFrame, by: list[str], what: str) -> None:
    """A scaling chart per group of ``by`` (the first MAX_CHARTS), then the projections'
    fitted parameters."""
    from cnnbench.analyse.scaling import projections, scaling_figure

    for i, (k, sub) in enumerate(table_.groupby(by, sort=False, dropna=False)):
        if i >= MAX_CHARTS:
            sec.add(f"{table_.groupby(by).ngroups - MAX_CHARTS} more curves are in the table.")
            break
        # scaling_figure says "simulated" in the title itself
        title = " ".join(str(v) for v in k if v not in ("", None, False, True))
        fig = scaling_figure(sub, title=f"{what}: {title}",
                             seed_claim=what == "Data-parallel scaling")
        sec.add(figure(fig, f"{what} {title}"))
    proj = projections(table_)
    if not proj.empty:
        sec.add(details("Projections: fitted parameters", table_of_projections(proj)))


def table_of_projections(proj: pd.DataFrame) -> Markup:
    t = pd.DataFrame({
        "curve": [f"{r['workload']} {r['mode']} {fw(r['framework'])} {r['exec_mode']}"
                  + (f" {r['scaling']}" if r["scaling"] else "")
                  + (" simulated" if r["simulated"] else "") for r in records(proj)],
        "model": proj["model"], "fit": proj["label"],
        "measured up to": proj["n_max"].astype(int),
    })
    return table(t, numeric=["measured up to"])


def scaling_rows(inp: Inputs, sec: Section, compute: Callable[[pd.DataFrame], pd.DataFrame],
                 empty: str, intro: str) -> pd.DataFrame | None:
    """A scaling table (``analyse.scaling``) of the rows, introduced by ``intro``; or None
    with ``sec`` marked ``empty``."""
    t = compute(inp.df) if not inp.cells.empty else pd.DataFrame()
    if t.empty:
        sec.empty = empty
        return None
    sec.add(intro)
    return t

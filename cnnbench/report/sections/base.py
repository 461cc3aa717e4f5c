"""What every section shares: the report's inputs (rows, cells, samples), the job the
buyer's view prices, and the formatting of numbers, labels and intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import compare as an
from cnnbench.core.keys import KEY
from cnnbench.core.prices import Price
from cnnbench.report import charts
from cnnbench.report.htmlkit import figure

MAX_FINDINGS = 120  # summary sentences (groups) computed and shown
MAX_COMPARISONS = 400  # comparisons per section
MAX_CHART_BARS = 60  # bars in one throughput chart before it charts the best per group
MAX_CHARTS = 8  # charts of one kind in a section

FRAMEWORK_NAMES, MODE_NAMES = an.FRAMEWORK_NAMES, an.MODE_NAMES
SYSTEM = ["machine_id", "device"]
GROUP = ["machine_id", "device", "workload", "mode"]
LIKE = ["machine_id", "device", "workload", "mode", "batch_size", "precision"]


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
    df: pd.DataFrame  # every row read
    problems: list[str]
    machines: dict[str, dict[str, Any]]
    prices: list[Price] = field(default_factory=list)
    baseline: dict[str, str] | None = None
    reference_machine: str | None = None
    job: Job = field(default_factory=Job)
    notes: list[str] = field(default_factory=list)  # reference bundles read or left out
    cells: pd.DataFrame = field(init=False)
    hardware: pd.DataFrame = field(init=False)  # cells on a machine's own devices
    _samples: an.CellRuns | None = field(init=False, default=None, repr=False)
    _records: list[dict[str, Any]] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.cells = an.cells_table(self.df)
        if not self.cells.empty:
            # Batch, device and machine have columns of their own wherever a label is shown.
            self.cells["label"] = an.config_labels(self.cells, fields=[
                f for f in an.CONFIG if f not in ("batch_size", "device", "machine_id")])
            self.cells = self.cells.sort_values(
                [*GROUP, "batch_size", "framework", "label"], kind="stable").reset_index(drop=True)
        # Simulated device sets measure overhead: they are no machine to answer with.
        self.hardware = self.cells[~an.simulated(self.cells)]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The cells' main columns, as dicts (made on first use)."""
        if self._records is None:
            cols = [c for c in [*KEY, "label", "ips", "low", "high", "runs", "cell_id",
                                "framework_version", "n_devices"] if c in self.cells]
            self._records = recs_of(self.cells[cols])
        return self._records

    @property
    def samples(self) -> an.CellRuns:
        """Per cell key, each run's per-step seconds (``analyse.compare.CellRuns``): keyed
        on first use, and a cell's arrays made when a section compares it."""
        if self._samples is None:
            self._samples = an.CellRuns(self.df)
        return self._samples

    def per_image(self, row: Mapping[Any, Any]) -> list[np.ndarray]:
        """A cell's runs as seconds per image: comparable across batch sizes."""
        k = tuple(row[f] for f in KEY)
        return [a / float(row["batch_size"]) for a in self.samples.get(k, [])]


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


def labels_of(cells: pd.DataFrame) -> list[str]:
    """nice_label for every row, without a per-row pandas apply."""
    return [fw(f) + lab[len(f):] if lab.startswith(f) else lab
            for f, lab in zip(cells["framework"].astype(str).tolist(),
                              cells["label"].astype(str).tolist(), strict=True)]


def ci(lo: Any, hi: Any) -> str:
    a, b = num(lo), num(hi)
    return f"[{a}, {b}]" if a and b else ""


def system(machine: Any, device: Any) -> str:
    return f"{machine} {'CPU' if device == 'cpu' else device}"


def nice_label(row: Mapping[Any, Any]) -> str:
    """A cell's label with the framework's proper name first."""
    label = str(row.get("label") or row.get("framework"))
    f = str(row.get("framework"))
    return fw(f) + label[len(f):] if label.startswith(f) else label


def _compare(inp: Inputs, base: Mapping[Any, Any], cont: Mapping[Any, Any]) -> an.Comparison | None:
    b, c = inp.per_image(base), inp.per_image(cont)
    if not b or not c:
        return None
    return an.compare_cells(b, c)


def recs_of(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts with str keys, as ``to_dict("records")`` gives them (Python
    scalars) but from whole columns: several times faster on 100,000 cells."""
    cols = [str(c) for c in df.columns]
    if not cols or len(set(cols)) < len(cols):  # no column, or a repeated name: pandas' rules
        return cast(list[dict[str, Any]], df.to_dict("records"))
    values = [_natives(df[c]) for c in df.columns]
    return [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]


def _natives(col: pd.Series) -> list[Any]:
    """A column's values as ``to_dict`` gives them: a nullable column's NA is None."""
    values = col.tolist()
    if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
            col.dtype, pd.StringDtype):
        return [None if v is pd.NA else v for v in values]
    return values


def _forest(rows: pd.DataFrame, labels: Sequence[str], title: str) -> Markup:
    rows = rows.head(40)
    fig = charts.forest(list(labels)[:40], rows["ratio"].tolist(), rows["low"].tolist(),
                        rows["high"].tolist(), rows["significant"].astype(bool).tolist(), title)
    return figure(fig, title)


def _short_labels(rows: pd.DataFrame) -> list[str]:
    """Chart labels of compared cells: the workload, then the contender (the table beside the
    chart names the baseline)."""
    return [f"{w} {m} b{int(b)}: {lab}" for w, m, b, lab in zip(
        rows["workload"], rows["mode"], rows["batch_size"], labels_of(rows), strict=True)]


def _notes(rows: pd.DataFrame) -> list[str]:
    notes = sorted({n for n in rows.get("note", pd.Series(dtype=str)) if n})
    return [f"Note: {n}." for n in notes]


# ------------------------------------------------------------------- 1 summary


def _simulated_note(inp: Inputs) -> str:
    n = len(inp.cells) - len(inp.hardware)
    return (f"{n:,} cells on simulated device sets (cpu*N: devices sharing the same cores) are "
            "left out here: they measure data-parallel overhead, not a machine (see "
            "Data-parallel scaling)." if n else "")

"""Which cells the report compares, and the comparisons: each cell against a baseline of its
group, the fastest configuration against the runner-up, every framework against the fastest.

Pure functions from the report's cells (``compare.cells_table``) and their raw samples
(``SampleBank``) to records and DataFrames; every ratio comes from ``compare.compare_cells``
on the two cells' raw rounds. No HTML, no formatting: the report's sections choose, format
and draw. Comparisons are computed for the first ``limit`` pairs only (a section shows no
more), and the total is returned beside them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from adapters import ADAPTERS
from cnnbench.analyse import compare as an
from cnnbench.core.keys import KEY, LIKE, WORKLOAD

Record = dict[str, Any]
IsBase = Callable[[Mapping[Any, Any]], bool]


def records(df: pd.DataFrame) -> list[Record]:
    """A frame's rows as dicts with str keys, as ``to_dict("records")`` gives them (Python
    scalars) but from whole columns: several times faster on 100,000 cells."""
    cols = [str(c) for c in df.columns]
    if not cols or len(set(cols)) < len(cols):  # no column, or a repeated name: pandas' rules
        return cast(list[Record], df.to_dict("records"))
    values = [_natives(df[c]) for c in df.columns]
    return [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]


def _natives(col: pd.Series) -> list[Any]:
    """A column's values as ``to_dict`` gives them: a nullable column's NA is None."""
    values = col.tolist()
    if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
            col.dtype, pd.StringDtype):
        return [None if v is pd.NA else v for v in values]
    return values


class SampleBank:
    """Each ok cell's runs (the rows' ``samples_s``), by cell key: keyed once
    (``compare.CellRuns``), and only the cells a section compares become arrays."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.runs = an.CellRuns(df)

    def per_image(self, row: Mapping[Any, Any]) -> list[np.ndarray]:
        """A cell's runs as seconds per image: comparable across batch sizes."""
        k = tuple(row[f] for f in KEY)
        return [a / float(row["batch_size"]) for a in self.runs.get(k, [])]

    def compare(self, base: Mapping[Any, Any], cont: Mapping[Any, Any]) -> an.Comparison | None:
        """``cont`` over ``base`` per image (None where either has no samples)."""
        b, c = self.per_image(base), self.per_image(cont)
        if not b or not c:
            return None
        return an.compare_cells(b, c)


def cmp_fields(cmp: an.Comparison) -> Record:
    return {"ratio": cmp.ratio, "low": cmp.low, "high": cmp.high,
            "significant": cmp.significant, "text": cmp.text(), "note": cmp.note,
            "baseline_ips": float("nan"), "contender_ips": float("nan"),
            "runs_baseline": cmp.runs_baseline, "runs_contender": cmp.runs_contender}


def compared(cont: Record, base: Mapping[Any, Any], cmp: an.Comparison) -> Record:
    """``cont``'s fields, the comparison's, and the baseline's label and framework."""
    return {**cont, **cmp_fields(cmp), "base_label": base.get("label"),
            "base_framework": base.get("framework")}


def best_per(cells: pd.DataFrame, by: Sequence[str], score: str = "ips") -> pd.DataFrame:
    """The highest ``score`` of each group of ``by``, groups in order of their best."""
    return cells.sort_values(score, ascending=False).groupby(list(by), sort=False).head(1)


# ------------------------------------------------------------------- against a baseline


def against(cells: Sequence[Record], group: Sequence[str], is_base: IsBase, bank: SampleBank,
            limit: int) -> tuple[pd.DataFrame, int]:
    """Each cell against the one baseline cell of its ``group`` (none or several: the group
    is skipped), the first ``limit`` comparisons, and how many there are in all. Plain dicts,
    not a pandas groupby: 100,000 cells make as many groups."""
    groups: dict[Any, list[Record]] = {}
    get = operator.itemgetter(*group)
    for r in cells:
        groups.setdefault(get(r), []).append(r)
    rows: list[Record] = []
    total = 0
    for recs in groups.values():
        bases = [r for r in recs if is_base(r)]
        if len(recs) < 2 or len(bases) != 1:
            continue
        for r in recs:
            if r is bases[0]:
                continue
            total += 1
            if len(rows) < limit:
                cmp = bank.compare(bases[0], r)
                if cmp is not None:
                    rows.append(compared(r, bases[0], cmp))
    return pd.DataFrame(rows), total


def default_config(row: Mapping[Any, Any]) -> bool:
    """A framework's own default: the default build, no options, its default execution mode."""
    info = ADAPTERS.get(str(row["framework"]))
    return (row["variant"] == "default" and row["options_key"] in ("{}", "")
            and info is not None and row["exec_mode"] == info.default_exec_mode)


def parse_baseline(text: str) -> dict[str, str]:
    """'framework=pytorch,exec_mode=eager' -> a dict of cell key fields (ValueError else)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        k = k.strip()
        if not sep or not v.strip():
            raise ValueError(f"--baseline: expected FIELD=VALUE, got {part!r}")
        if k not in KEY or k == "machine_id":
            raise ValueError(f"--baseline: {k!r} is not a cell field (use "
                             f"{', '.join(f for f in KEY if f not in ('machine_id', 'options_key'))})")
        out[k] = v.strip()
    if not out:
        raise ValueError("--baseline: give at least one FIELD=VALUE")
    return out


def speedups(cells: Sequence[Record], bank: SampleBank, baseline: Mapping[str, str] | None,
             limit: int) -> tuple[pd.DataFrame, int]:
    """Every cell against ``baseline`` (cell fields and values, e.g. ``{"framework":
    "pytorch", "exec_mode": "eager"}``) in its group: the cells that differ from it only in
    the fields it names, on the same machine and device. Without one, against each
    framework's own default configuration (``default_config``), the same but for variant,
    execution mode and options. A group with no baseline, or with several, is left out."""
    if not baseline:
        return against(cells, [f for f in KEY if f not in ("variant", "exec_mode", "options_key")],
                       default_config, bank, limit)
    unknown = set(baseline) - set(KEY)
    if unknown:
        raise ValueError(f"baseline fields are not cell key fields: {sorted(unknown)}")
    want = {k: str(v) for k, v in baseline.items()}

    def is_base(r: Mapping[Any, Any]) -> bool:
        return all(str(r[k]) == v for k, v in want.items())

    # Like with like: everything the baseline does not name is the same on both sides.
    return against(cells, [f for f in KEY if f not in want], is_base, bank, limit)


def exec_mode_speedups(cells: Sequence[Record], bank: SampleBank,
                       limit: int) -> tuple[pd.DataFrame, int]:
    """Each execution mode over the framework's default mode, all else equal."""
    def is_base(r: Mapping[Any, Any]) -> bool:
        info = ADAPTERS.get(str(r["framework"]))
        return bool(r["exec_mode"] == (info.default_exec_mode if info else ""))

    return against(cells, [f for f in KEY if f != "exec_mode"], is_base, bank, limit)


def precision_speedups(cells: Sequence[Record], bank: SampleBank,
                       limit: int) -> tuple[pd.DataFrame, int]:
    """Each precision over fp32, all else equal (the same execution mode)."""
    return against(cells, [f for f in KEY if f != "precision"],
                   lambda r: r["precision"] == "fp32", bank, limit)


# ------------------------------------------------------------------- the fastest


@dataclass
class Podium:
    """One summary group (``keys.WORKLOAD``): its cells fastest first (``label`` names what
    differs within the group), the fastest, the runner-up and the runner-up compared with
    the fastest (None: not computed, one cell, or no samples)."""

    group: tuple[Any, ...]
    cells: pd.DataFrame
    top: Record
    second: Record | None
    cmp: an.Comparison | None


def podiums(cells: pd.DataFrame, bank: SampleBank, limit: int) -> list[Podium]:
    """The fastest configuration of every machine, device, workload and mode, and (for the
    first ``limit`` groups) its comparison with the runner-up."""
    out = []
    for i, (g, sub) in enumerate(cells.groupby(WORKLOAD, sort=False)):
        sub = sub.assign(label=an.config_labels(sub)).sort_values("ips", ascending=False)
        top = records(sub.iloc[[0]])[0]
        second = records(sub.iloc[[1]])[0] if len(sub) > 1 else None
        cmp = bank.compare(second, top) if second is not None and i < limit else None
        out.append(Podium(tuple(g), sub, top, second, cmp))
    return out


def best_per_framework(cells: pd.DataFrame) -> pd.DataFrame:
    """Each framework's fastest cell of each like-for-like group (``keys.LIKE``), in the
    groups that more than one framework ran."""
    best = best_per(cells, [*LIKE, "framework"])
    return best[best.groupby(LIKE, sort=False)["framework"].transform("nunique") > 1]


def against_fastest(best: pd.DataFrame, bank: SampleBank, limit: int) -> pd.DataFrame:
    """Each framework's best (``best_per_framework``) against the fastest framework's, at
    the same workload, mode, batch and precision on the same system."""
    recs: list[Record] = []
    for _, sub in best.groupby(LIKE, sort=False):
        if len(recs) >= limit:
            break
        sub = sub.sort_values("ips", ascending=False)
        top = records(sub.iloc[[0]])[0]
        for r in records(sub.iloc[1:]):
            if len(recs) >= limit:
                break
            cmp = bank.compare(top, r)
            if cmp is not None:
                recs.append(compared(r, top, cmp))
    return pd.DataFrame(recs)


@dataclass
class Heatmap:
    """Framework x workload on one machine, device and mode: each framework's best over the
    fastest's (``ratio``: 1.0 for the fastest), with the comparisons (None: the fastest)."""

    machine_id: Any
    device: Any
    mode: Any
    ratio: pd.DataFrame
    cmps: dict[tuple[str, str], an.Comparison | None]


def heatmaps(best: pd.DataFrame, bank: SampleBank, limit: int) -> Iterator[Heatmap]:
    """One ``Heatmap`` per machine, device and mode that two frameworks ran (the first
    ``limit``), at one batch per workload: the one most frameworks ran (ties: the larger),
    16 workloads at most (a readable heatmap)."""
    n = 0
    for (mid, dev, mode), sub in best.groupby(["machine_id", "device", "mode"], sort=False):
        if sub["framework"].nunique() < 2 or n >= limit:
            continue
        n += 1
        cnt = sub.groupby(["workload", "batch_size", "precision"]).size().reset_index(name="n")
        pick = cnt.sort_values(["n", "batch_size"], ascending=False).groupby("workload").head(1)
        wls = list(dict.fromkeys(pick["workload"]))[:16]
        mat = pd.DataFrame(np.nan, index=sorted(sub["framework"].unique()), columns=wls)
        cmps: dict[tuple[str, str], an.Comparison | None] = {}
        for p in records(pick[pick["workload"].isin(wls)]):
            s = sub[(sub["workload"] == p["workload"]) & (sub["batch_size"] == p["batch_size"])
                    & (sub["precision"] == p["precision"])]
            top = records(s.sort_values("ips", ascending=False).iloc[[0]])[0]
            for r in records(s):
                at = (str(r["framework"]), str(p["workload"]))
                cmp = None if r["cell_id"] == top["cell_id"] else bank.compare(top, r)
                if cmp is not None or r["cell_id"] == top["cell_id"]:
                    mat.loc[at] = 1.0 if cmp is None else cmp.ratio
                    cmps[at] = cmp
        yield Heatmap(mid, dev, mode, mat, cmps)

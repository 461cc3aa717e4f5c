"""The ceiling: each framework's fastest configuration found by ``cnnbench tune``, from its rows.

Only the rows of the search's final comparison count (``stage`` ``final`` or
``final:default``, the default configuration's runs): fresh processes, interleaved, the full
budget. Candidates may differ in batch size, so every comparison here is of seconds per
image (a run's per-step seconds over its batch): the ratio is one of images/s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cnnbench.analyse.compare import (
    FRAMEWORK_NAMES,
    MODE_NAMES,
    Comparison,
    cell_estimate,
    compare_cells,
    rel_half_width,
)
from cnnbench.analyse.compare import rounds as runs
from cnnbench.core.keys import TUNE_GROUP as GROUP
from cnnbench.core.keys import TUNE_KNOBS as CONFIG
from cnnbench.core.keys import options_key

FINAL, FINAL_DEFAULT = "final", "final:default"


def per_image_runs(rows: Iterable[Mapping[Any, Any]]) -> list[np.ndarray]:
    """One array of seconds per image per ok run (its rounds' per-step seconds / batch)."""
    out = []
    for r in rows:
        s = runs(r.get("samples_s"))
        s = s[np.isfinite(s) & (s > 0)]
        if r.get("status") == "ok" and s.size:
            out.append(s / float(r["batch_size"]))
    return out


def half_width(cmp: Comparison) -> float:
    """The relative half-width of a ratio's interval (0.05: about +-5%)."""
    return float(rel_half_width(cmp.low, cmp.high))


def config_label(row: Mapping[Any, Any]) -> str:
    """A configuration in words: b64 bf16 compiled t2 memory_format=channels_last."""
    opts = row.get("options") or {}
    parts = [f"b{row['batch_size']}", str(row["precision"]), str(row["exec_mode"])]
    if row.get("threads"):
        parts.append(f"t{int(row['threads'])}")
    parts += [f"{k}={v}" for k, v in sorted(opts.items())]
    return " ".join(parts)


@dataclass(frozen=True)
class Ceiling:
    """One group's ceiling: the best configuration, its images/s with interval, the
    configurations it cannot be told apart from, and its gain over the default."""

    key: dict[str, Any]
    best: str
    images_per_s: float
    low: float
    high: float
    runs: int
    ties: tuple[str, ...]  # other configurations not significantly slower than the best
    vs_next: Comparison | None  # best over the runner-up
    gain: Comparison | None  # best over the default
    default: str | None
    default_images_per_s: float | None

    @property
    def named(self) -> bool:
        """Whether a winner can be named: its interval excludes every other configuration."""
        return not self.ties


def _configs(rows: pd.DataFrame) -> dict[str, tuple[str, list[np.ndarray], bool]]:
    """Per configuration (by CONFIG): its label, per-image runs, and whether it is the default."""
    out: dict[str, tuple[str, list[np.ndarray], bool]] = {}
    for _, sub in rows.groupby(CONFIG, dropna=False, sort=False):
        recs = sub.to_dict("records")
        runs = per_image_runs(recs)
        if runs:
            is_default = bool((sub["stage"] == FINAL_DEFAULT).any())
            out[config_label(recs[0])] = (config_label(recs[0]), runs, is_default)
    return out


def _keyed(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.copy()
    rows["options_key"] = rows["options"].map(options_key)
    rows["threads"] = rows["threads"].fillna(0).astype(int)
    return rows


def group_ceiling(key: dict[str, Any], rows: pd.DataFrame) -> Ceiling | None:
    """The ceiling of one group's final-comparison rows."""
    configs = _configs(_keyed(rows))
    if not configs:
        return None
    mean_log = {k: float(np.mean([np.log(np.median(r)) for r in runs]))
                for k, (_, runs, _) in configs.items()}
    order = sorted(configs, key=lambda k: mean_log[k])  # least seconds per image first
    best = order[0]
    best_runs = configs[best][1]
    others = {k: compare_cells(configs[k][1], best_runs) for k in order[1:]}
    ties = tuple(k for k, c in others.items() if not c.significant)
    default = next((k for k, v in configs.items() if v[2]), None)
    gain = None if default is None or default == best else others[default]
    ips = cell_estimate(best_runs).images_per_s(1.0)  # runs of seconds per image
    d_ips = None
    if default is not None:
        d_ips = 1.0 / math.exp(mean_log[default])
    return Ceiling(key, best, ips[0], ips[1], ips[2], len(best_runs), ties,
                   others[order[1]] if len(order) > 1 else None, gain, default, d_ips)


def tune_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The final-comparison rows of the tuner (empty when there are none)."""
    if df.empty or "stage" not in df:
        return df.iloc[0:0]
    return _keyed(df[df["stage"].isin([FINAL, FINAL_DEFAULT])])


def ceilings(df: pd.DataFrame) -> list[Ceiling]:
    """Every group's ceiling, in the order the groups first appear."""
    rows = tune_rows(df)
    out = []
    for values, sub in rows.groupby(GROUP, sort=False):
        c = group_ceiling(dict(zip(GROUP, values, strict=True)), sub)
        if c is not None:
            out.append(c)
    return out


def ranking(df: pd.DataFrame, ceils: Sequence[Ceiling] | None = None
            ) -> list[tuple[dict[str, Any], list[tuple[str, Ceiling, Comparison | None]]]]:
    """Per workload, mode and device: the frameworks ranked at their ceilings, fastest first,
    each with its ratio over the next one down (None for the last)."""
    ceils = list(ceilings(df) if ceils is None else ceils)
    rows = tune_rows(df)
    by: dict[tuple[Any, ...], list[Ceiling]] = {}
    for c in ceils:
        by.setdefault((c.key["machine_id"], c.key["workload"], c.key["mode"], c.key["device"]),
                      []).append(c)
    out = []
    for (mid, wl, mode, dev), cs in by.items():
        cs = sorted(cs, key=lambda c: -c.images_per_s)
        runs = [_best_runs(rows, c) for c in cs]
        ranked = []
        for i, c in enumerate(cs):
            nxt = compare_cells(runs[i + 1], runs[i]) if i + 1 < len(cs) else None
            ranked.append((c.key["framework"], c, nxt))
        out.append(({"machine_id": mid, "workload": wl, "mode": mode, "device": dev}, ranked))
    return out


def _best_runs(rows: pd.DataFrame, c: Ceiling) -> list[np.ndarray]:
    sub = rows[(rows[GROUP] == pd.Series(c.key)).all(axis=1)]
    recs = [r for r in sub.to_dict("records") if config_label(r) == c.best]
    return per_image_runs(recs)


@dataclass(frozen=True)
class PrecisionGain:
    """bf16 over fp32 in one group: the same configuration but for its precision (the best
    bf16 candidate's, and its fp32 twin), or why there is no such figure."""

    key: dict[str, Any]
    config: str | None  # the bf16 configuration; None with a reason
    gain: Comparison | None
    source: str  # where the runs come from: the final comparison, or a rung
    reason: str | None = None


def _stage_rank(stage: Any) -> int:
    """Later is better: a rung's index, the final above every rung."""
    text = str(stage)
    if text.startswith(FINAL):
        return 10_000
    return int(text[4:]) if text.startswith("rung") and text[4:].isdigit() else -1


def _twin_rows(rows: pd.DataFrame, low: str, high: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``high`` precision's best configuration that has an ok ``low`` twin (same knobs
    otherwise), and that twin: their rows at the latest stage both reached."""
    ok = rows[rows["status"] == "ok"].copy()
    ok["rank"] = ok["stage"].map(_stage_rank)
    ok["twin"] = ok[[c for c in CONFIG if c != "precision"]].astype(str).agg("|".join, axis=1)
    hi, lo = ok[ok["precision"] == high], ok[ok["precision"] == low]
    pairs = sorted(set(hi["twin"]) & set(lo["twin"]),
                   key=lambda t: (-min(hi.loc[hi["twin"] == t, "rank"].max(),
                                       lo.loc[lo["twin"] == t, "rank"].max()),
                                  -hi.loc[hi["twin"] == t, "images_per_s"].max()))
    if not pairs:
        return hi.iloc[0:0], lo.iloc[0:0]
    t = pairs[0]
    h, lo_t = hi[hi["twin"] == t], lo[lo["twin"] == t]
    stage = min(h["rank"].max(), lo_t["rank"].max())
    return h[h["rank"] == stage], lo_t[lo_t["rank"] == stage]


def precision_gains(df: pd.DataFrame, high: str = "bf16", low: str = "fp32"
                    ) -> list[PrecisionGain]:
    """Per tuned group with ``high`` candidates: ``high`` over ``low`` for the same knobs
    otherwise, from the latest stage of the search both reached (the final comparison's
    fresh, interleaved runs where both got there; else a rung's one screening run each, whose
    interval does not cover the noise between processes, which the source says)."""
    if df.empty or "stage" not in df:
        return []
    rows = _keyed(df[df["stage"].notna()])
    out = []
    for values, sub in rows.groupby(GROUP, sort=False):
        key = dict(zip(GROUP, values, strict=True))
        if not (sub["precision"] == high).any():
            continue
        h, lo = _twin_rows(sub, low, high)
        if h.empty:
            bad = sub[(sub["precision"] == high) & (sub["status"] != "ok")]
            why = (f"no {high} candidate ran ok ({bad['status'].iloc[0]}: {bad['error'].iloc[0]})"
                   if not bad.empty else f"no {high} candidate has an ok {low} twin")
            out.append(PrecisionGain(key, None, None, "", why))
            continue
        stage = str(h["stage"].iloc[0])
        source = ("final comparison" if stage.startswith(FINAL) else
                  f"{stage}: one screening run each, so the interval leaves out the noise "
                  "between processes")
        gain = compare_cells(per_image_runs(lo.to_dict("records")),
                             per_image_runs(h.to_dict("records")))
        out.append(PrecisionGain(key, config_label(h.iloc[0].to_dict()), gain, source))
    return out


def _fastest(values: Mapping[str, float]) -> str:
    return FRAMEWORK_NAMES.get(max(values, key=lambda k: values[k]), "?")


def _tuned_leaders(ranked: Sequence[tuple[str, Ceiling, Comparison | None]]) -> str:
    """"PyTorch is", or, where the leader's interval over the next does not exclude 1,
    "TensorFlow and PyTorch cannot be told apart (1.00x [0.93, 1.08])"."""
    names = [FRAMEWORK_NAMES.get(ranked[0][0], ranked[0][0])]
    first_gap = ranked[0][2]
    i = 0
    while i + 1 < len(ranked):
        gap = ranked[i][2]
        if gap is None or gap.significant:
            break
        i += 1
        names.append(FRAMEWORK_NAMES.get(ranked[i][0], ranked[i][0]))
    if len(names) == 1:
        return f"{names[0]} is"
    said = f" ({first_gap.text()})" if first_gap is not None and len(names) == 2 else ""
    return f"{', '.join(names[:-1])} and {names[-1]} cannot be told apart{said}"


def summary_sentences(df: pd.DataFrame) -> list[str]:
    """The Summary's answer to both questions, one sentence per workload, mode and device
    the tuner covered with two or more frameworks: "ResNet-50 inference on cpu: at
    defaults, TensorFlow is fastest; tuned, PyTorch is." The tuned half names every
    framework the leader cannot be told apart from (their ratio's interval holds 1); the
    defaults half is a point estimate (the ceiling section gives each gain's interval)."""
    out = []
    for key, ranked in ranking(df):
        if len(ranked) < 2:
            continue
        default = {fw: c.default_images_per_s for fw, c, _ in ranked
                   if c.default_images_per_s is not None}
        if len(default) < 2:
            continue
        what = f"{key['workload']} {MODE_NAMES.get(key['mode'], key['mode'])} on {key['device']}"
        out.append(f"{what}: at defaults, {_fastest(default)} is fastest; tuned, "
                   f"{_tuned_leaders(ranked)}.")
    return out

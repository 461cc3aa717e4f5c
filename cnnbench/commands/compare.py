"""`cnnbench compare BASELINE CONTENDER`: the same cells in two result sets, side by side.

Per cell both throughputs with their intervals and the ratio (contender / baseline) with its
interval and verdict, all from ``cnnbench.analyse.compare``; then the geometric mean. With
``--fail-above`` the exit status is 1 when a cell's step time grew significantly by more
than that fraction (like asv's ``compare --factor`` and pytest-benchmark's
``--benchmark-compare-fail``).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnbench.commands import UsageError, console
from cnnbench.core.options import add_command, flag, pos_float

if TYPE_CHECKING:  # pandas is imported when a comparison runs, not when the CLI parses
    import pandas as pd


@dataclass
class CompareOptions:
    baseline: str = flag("baseline", default="",
                         help="results file or folder, or a run id under --results-dir")
    contender: str = flag("contender", default="",
                          help="results file or folder, or a run id under --results-dir")
    fail_above: str | None = flag(
        "--fail-above", metavar="FRAC",
        help="exit 1 if a cell is significantly slower by more than this (5%% or 0.05)")
    json: bool = flag("--json", action="store_true", help="machine-readable output")
    results_dir: Path = flag("--results-dir", default=Path("results"), type=Path, metavar="DIR")
    target_ratio_ci: float | None = flag(
        "--target-ratio-ci", type=pos_float, metavar="FRAC",
        help="say which ratios are wider than +-FRAC (0.05: +-5%%) and about how many runs a "
        "side would settle them (cnnbench run --target-ratio-ci adds them)")
    metric: str = flag("--metric", default="throughput", choices=("throughput", "p99"),
                       help="compare throughput (default) or the latency cells' p99")
    seed: int = 0  # of the bootstrap intervals


def setup_arguments(subparsers: Any) -> None:
    add_command(subparsers, "compare", CompareOptions, run,
                help="compare the same cells in two result sets",
                description="Per cell present in both: images/s of each with its 95%% CI, the "
                "ratio CONTENDER / BASELINE with its CI and whether it is significant (a ratio "
                "whose interval crosses 1 reads 'no clear difference'), then the geometric "
                "mean.")

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_CELL = ["workload", "mode", "batch_size", "precision", "framework", "variant", "exec_mode",
         "device", "threads"]


def _label(r: Mapping[Hashable, Any]) -> tuple[str, str]:
    """(workload part, configuration part) of a cell's name."""
    return (f"{r['workload']} {r['mode']} b{r['batch_size']} {r['precision']}",
            f"{r['framework']} {r['variant']} {r['exec_mode']} {r['device']} "
            + (f"t{r['threads']}" if r["threads"] else "all threads")
            + ("" if r["options_key"] == "{}" else f" {r['options_key']}"))


def parse_fraction(value: str | float) -> float:
    """'5%' or '0.05' (or 0.05) -> 0.05; anything else is a UsageError."""
    text = str(value).strip()
    try:
        frac = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"--fail-above: expected a fraction like 5% or 0.05, got {text!r}") from None
    if not (math.isfinite(frac) and frac >= 0):
        raise UsageError(f"--fail-above: expected a fraction >= 0, got {text!r}")
    return frac


def resolve(spec: str | Path, results_dir: Path) -> list[Path]:
    """A results file or folder as it is, else a run id: ``results_dir/*/<id>.jsonl``."""
    path = Path(spec)
    if path.exists():
        return [path]
    text = str(spec)
    hits = sorted(results_dir.glob(f"*/{text}.jsonl")) if set(text) <= _ID_CHARS and text else []
    if not hits:
        raise UsageError(f"no results file, folder or run id {text!r} (run ids are looked up "
                         f"in {results_dir}/<machine>/)")
    return hits


def _load(spec: str | Path, results_dir: Path) -> tuple[pd.DataFrame, list[Path]]:
    from cnnbench.core.results import load_results

    paths = resolve(spec, results_dir)
    df, problems, _ = load_results(paths)
    for p in problems:
        print(f"cnnbench: warning: {p}", file=sys.stderr)
    return df, paths


def _ips(v: float, lo: float, hi: float) -> str:
    if not all(map(math.isfinite, (v, lo, hi))):
        return "n/a"
    return f"{v:,.1f} [{lo:,.1f}, {hi:,.1f}]"


def run(options: CompareOptions) -> int:
    from cnnbench.analyse.compare import MATCH, cell_samples, compare_samples, geomean
    from cnnbench.core.schema import clean

    baseline, contender, results_dir, seed = (options.baseline, options.contender,
                                              options.results_dir, options.seed)
    limit = None if options.fail_above is None else parse_fraction(options.fail_above)
    base_df, base_paths = _load(baseline, results_dir)
    cont_df, cont_paths = _load(contender, results_dir)
    metric = options.metric
    if metric == "p99":  # latency cells' p99, bootstrapped over their steps
        from cnnbench.analyse.buyer import compare_tail, tail_rows

        base, cont = (cell_samples(tail_rows(d), MATCH) for d in (base_df, cont_df))
        table = compare_tail(base, cont, MATCH, q=0.99, seed=seed)
    else:
        base, cont = cell_samples(base_df, MATCH), cell_samples(cont_df, MATCH)
        table = compare_samples(base, cont, MATCH, seed=seed)
    if table.empty:
        raise UsageError(f"no cell with ok samples is in both {baseline} ({len(base)} cells) "
                         f"and {contender} ({len(cont)} cells)")
    # A regression: significantly slower by more than the limit in step time (asv's factor).
    table["regressed"] = (table["verdict"] == "slower") & (
        1 / table["ratio"] > 1 + (limit if limit is not None else math.inf))
    if options.target_ratio_ci:
        from cnnbench.analyse.compare import runs_to_settle

        table = runs_to_settle(table, options.target_ratio_ci)
    gm = geomean(table["ratio"], table["low"], table["high"], seed=seed)
    unmatched = {"baseline": len(set(base) - set(cont)), "contender": len(set(cont) - set(base))}
    failed = int(table["regressed"].sum())
    if options.json:
        doc = {"baseline": [str(p) for p in base_paths], "contender": [str(p) for p in cont_paths],
               "fail_above": limit, "cells": table.to_dict("records"),
               "geomean": {"ratio": gm.ratio, "low": gm.low, "high": gm.high, "n": gm.n,
                           "text": gm.text()},
               "unmatched": unmatched, "regressions": failed}
        print(json.dumps(clean(doc), indent=2, default=str))
    else:
        _print(table, gm.text(), unmatched, limit, failed,
               "p99 ms" if metric == "p99" else "images/s", options.target_ratio_ci)
    return 1 if failed else 0


def _print(table: pd.DataFrame, gm_text: str, unmatched: dict[str, int], limit: float | None,
           failed: int, unit: str = "images/s", target: float | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table("cell", "configuration", f"baseline {unit}", f"contender {unit}",
              "contender / baseline", "", "runs")
    for col in t.columns[2:]:
        col.no_wrap = True
    for r in table.sort_values(_CELL).to_dict("records"):
        mark = "FAIL" if r["regressed"] else {"faster": "▲", "slower": "▼"}.get(r["verdict"], "")
        cells = [*_label(r), _ips(r["baseline_ips"], r["baseline_low"], r["baseline_high"]),
                  _ips(r["contender_ips"], r["contender_low"], r["contender_high"]),
                  str(r["text"]), mark, f"{r['runs_baseline']}/{r['runs_contender']}"]
        if target is not None and not r["settled"]:
            cells[-1] += f" (+-{r['half_width']:.0%}: ~{r['runs_needed']} a side)"
        # Text, not markup: a field holding "[bold]" or "[/]" must print as it is.
        t.add_row(*(Text(c) for c in cells))
    out = console()
    out.print(t)
    out.print(Text(f"geometric mean over {len(table)} cells: {gm_text}"))
    for note, count in table.loc[table["note"] != "", "note"].value_counts(sort=False).items():
        out.print(Text(f"{count} cells: {note}"))
    if unmatched["baseline"] or unmatched["contender"]:
        out.print(Text(f"not compared: {unmatched['baseline']} cells only in the baseline, "
                       f"{unmatched['contender']} only in the contender"))
    if target is not None:
        wide = table.loc[~table["settled"]]
        out.print(Text(f"{len(wide)} of {len(table)} ratios are wider than +-{target:.0%}; "
                       f"about {int(wide['runs_needed'].max())} runs a side would settle them "
                       "all (cnnbench run --target-ratio-ci)" if len(wide) else
                       f"every ratio is within +-{target:.0%}"))
    if limit is not None:
        out.print(Text(f"{failed} cells slower by more than {limit:.1%} (significant)"
                       if failed else f"no cell significantly slower by more than {limit:.1%}"))

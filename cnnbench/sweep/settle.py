"""More runs until each comparison is settled: ``cnnbench run --target-ratio-ci``.

Three runs a side are often too few: two default sweeps of one machine gave ratio intervals
of +-12% (median) while the ratios themselves spread only 0.92-1.07, so a real 10% difference
would mostly read "no clear difference". pyperf runs 20 worker processes for this reason.

After the plan's repeats, each comparison the run holds is checked: a cell that differs from
the first of its side-by-side group only in its variant (a build against the default, which
``run`` interleaves) by its ratio's interval, a cell alone by its own throughput's interval,
both from the analysis layer's bootstrap over runs (``compare_cells``, ``cell_estimate``).
Where one is wider than +-``target``, the whole group runs once more, in fresh processes and
interleaved as before, until every one is within the target or ``max_repeat`` runs a side are
reached. Every run is an ordinary row (``repeat`` numbers them), so ``--resume`` and the
report need nothing new; the report's tables give each verdict's runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from cnnbench.analyse.ceiling import half_width, per_image_runs
from cnnbench.analyse.compare import cell_estimate, compare_cells, rel_half_width
from cnnbench.core.cells import Cell
from cnnbench.core.schema import iter_rows
from cnnbench.sweep.runner import RunSettings, _groups

SETTLED_MODES = ("train", "infer")  # latency cells have their own percentiles; probes none


def _runs(cell: Cell, rows: Mapping[str, dict[str, Any]], repeats: int) -> list[Any]:
    got = [rows.get(dataclasses.replace(cell, repeat=i).cell_id) for i in range(repeats)]
    return per_image_runs(r for r in got if r is not None)


def group_width(group: list[Cell], rows: Mapping[str, dict[str, Any]], repeats: int) -> float:
    """The widest relative half-width of the group's comparisons (0.05: +-5%): each member's
    ratio over the first, or a lone cell's own interval. Infinite while a side has fewer than
    two ok runs; 0 when a side never ran ok (more runs would not decide anything)."""
    runs = [_runs(c, rows, repeats) for c in group]
    if any(not r for r in runs):
        return 0.0
    if any(len(r) < 2 for r in runs):
        return math.inf
    if len(group) == 1:
        est = cell_estimate(runs[0])
        return float(rel_half_width(est.low_s, est.high_s))
    return max(half_width(compare_cells(runs[0], r)) for r in runs[1:])


def unsettled(cells: list[Cell], settings: RunSettings, target: float, repeats: int
              ) -> list[list[Cell]]:
    """The side-by-side groups (at repeat 0) whose comparisons are wider than +-target after
    ``repeats`` runs a side."""
    rows = {r["cell_id"]: r for r in iter_rows(settings.run_file, [])} \
        if settings.run_file.exists() else {}
    base = [c for c in cells if c.repeat == 0 and c.mode in SETTLED_MODES and c.n_devices == 1]
    return [g for g in _groups(base, settings.interleave)
            if group_width(g, rows, repeats) > target]


def settle(cells: list[Cell], settings: RunSettings, target: float, max_repeat: int,
           run: Callable[[list[Cell]], Any], say: Callable[[str], None]) -> int:
    """Add repeats (``run`` runs a list of cells as the plan's were run) until every group is
    within +-target or has ``max_repeat`` runs; returns the runs a side it ended with."""
    repeats = 1 + max((c.repeat for c in cells), default=0)
    while True:
        wide = unsettled(cells, settings, target, repeats)
        if not wide or repeats >= max_repeat:
            break
        say(f"--target-ratio-ci {target:g}: {len(wide)} comparison"
            f"{'s' if len(wide) > 1 else ''} wider than +-{100 * target:g}% after {repeats} "
            f"runs a side: run {repeats + 1}")
        run([dataclasses.replace(c, repeat=repeats) for g in wide for c in g])
        repeats += 1
    if wide:
        say(f"--target-ratio-ci {target:g}: {len(wide)} comparison"
            f"{'s' if len(wide) > 1 else ''} still wider than +-{100 * target:g}% at "
            f"--max-repeat {max_repeat}")
    return repeats

"""`cnnbench run`'s buyer options: latency cells and the largest-batch search.

The flags are ``sweep.options.BuyerOptions`` (part of ``RunOptions``); ``extend_plan`` adds
the latency cells to the plan and ``run_fits`` runs the searches after the plan's cells.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cnnbench.core.cells import LATENCY_MODE, Cell
from cnnbench.sweep.options import BuyerOptions


def extend_plan(cells: list[Cell], opts: BuyerOptions) -> list[Cell]:
    """The plan's cells, then one latency cell per configuration of them (less batch size
    and mode), each repeat kept."""
    if not opts.latency:
        return cells
    seen: dict[str, Cell] = {c.cell_id: c for c in cells}
    extra: list[Cell] = []
    for c in cells:
        if c.mode == "peak" or c.n_devices != 1:
            continue
        lat = dataclasses.replace(c, mode=LATENCY_MODE, batch_size=opts.latency_batch)
        if lat.cell_id not in seen:
            seen[lat.cell_id] = lat
            extra.append(lat)
    return [*cells, *extra]


def run_fits(cells: list[Cell], settings: Any, opts: BuyerOptions, out: Any) -> None:
    """One largest-batch search per train/infer configuration; a line per try and search."""
    if not opts.fit:
        return
    from cnnbench.sweep.fit import find_largest_batch, fit_targets, machine_ram_mb, recorded_tries

    limit = settings.memory_limit_mb or machine_ram_mb()
    done = recorded_tries(settings)  # --resume: the tries already made
    for cell in fit_targets(cells):
        def said(c: Cell, row: dict[str, Any]) -> None:
            what = (f"{row['images_per_s']:.1f} img/s, peak RSS {row['peak_rss_mb']:.0f} MB"
                    if row["status"] == "ok" else f"{row['status']}: {row['error']}")
            out.print(f"  fit try {c.label()}: {what}", markup=False)

        fit = find_largest_batch(cell, settings, limit, kind=opts.fit_limit_kind,
                                 max_batch=opts.fit_max_batch, on_row=said, recorded=done)
        out.print(f"largest batch of {cell.label()} under {limit} MB ({opts.fit_limit_kind}): "
                  f"{fit.largest} ({fit.reason})", markup=False)

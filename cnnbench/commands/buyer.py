"""`cnnbench run`'s issue 24 options: latency cells and the largest-batch search.

Kept in one place so that the run command's own options stay as they are: ``add_arguments``
adds the flags, ``from_args`` reads them into ``BuyerOptions``, ``extend_plan`` adds the
latency cells to the plan and ``run_fits`` runs the searches after the plan's cells.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from cnnbench.commands import UsageError
from cnnbench.core.cells import LATENCY_MODE, Cell


@dataclass(frozen=True)
class BuyerOptions:
    latency: bool = False  # add a latency cell (batch latency_batch) per inference config
    latency_batch: int = 1
    fit: bool = False  # search the largest batch of each train/infer config
    fit_max_batch: int = 1024
    fit_limit_kind: str = "resident"  # or "address-space" (RLIMIT_AS)


def add_arguments(r: argparse.ArgumentParser) -> None:
    # issue 24 flags
    g = r.add_argument_group("buyer", "latency percentiles and the largest batch that fits")
    g.add_argument("--latency", action="store_true",
                   help="add a latency cell (every step timed alone, p50/p90/p99/p99.9 with "
                   "intervals) for each workload and configuration of the plan")
    g.add_argument("--latency-batch", type=int, default=1, metavar="N",
                   help="batch size of the latency cells (default 1)")
    g.add_argument("--fit", action="store_true",
                   help="after the plan, find each train/infer configuration's largest batch "
                   "under --memory-limit-mb (default: the machine's RAM) by doubling, then "
                   "bisection, each try a fresh worker")
    g.add_argument("--fit-max-batch", type=int, default=1024, metavar="N",
                   help="the largest batch the search tries (default 1024)")
    g.add_argument("--fit-limit", choices=("resident", "address-space"), default="resident",
                   dest="fit_limit_kind",
                   help="enforce the search's limit on resident memory (watched, default) or "
                   "on address space (RLIMIT_AS, which counts reserved regions too)")


def from_args(a: argparse.Namespace) -> BuyerOptions:
    for flag, value in (("--latency-batch", a.latency_batch), ("--fit-max-batch", a.fit_max_batch)):
        if value < 1:
            raise UsageError(f"cnnbench run: {flag} must be a positive integer, got {value}")
    return BuyerOptions(a.latency, a.latency_batch, a.fit, a.fit_max_batch, a.fit_limit_kind)


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
    from cnnbench.sweep.fit import find_largest_batch, fit_targets, machine_ram_mb

    limit = settings.memory_limit_mb or machine_ram_mb()
    for cell in fit_targets(cells):
        def said(c: Cell, row: dict[str, Any]) -> None:
            what = (f"{row['images_per_s']:.1f} img/s, peak RSS {row['peak_rss_mb']:.0f} MB"
                    if row["status"] == "ok" else f"{row['status']}: {row['error']}")
            out.print(f"  fit try {c.label()}: {what}", markup=False)

        fit = find_largest_batch(cell, settings, limit, kind=opts.fit_limit_kind,
                                 max_batch=opts.fit_max_batch, on_row=said)
        out.print(f"largest batch of {cell.label()} under {limit} MB ({opts.fit_limit_kind}): "
                  f"{fit.largest} ({fit.reason})", markup=False)

"""The plan: frameworks x variants x devices x workloads x modes x batch sizes x precisions x
execution modes x thread counts, expanded into cells. Pure standard library + our registries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from adapters import ADAPTERS, get_info
from cnnbench.core.cells import ALL_MODES, MODES, PRECISIONS, SCALINGS, Cell, DeviceSet, PlanError
from workloads import get_workload


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for i in items:
        if i not in seen:
            seen.append(i)
    return seen


def expand(
    frameworks: Sequence[str],
    workloads: Sequence[str],
    modes: Sequence[str] = MODES,
    batch_sizes: Sequence[int] | None = None,
    precisions: Sequence[str] = ("fp32",),
    exec_modes: Sequence[str] = ("default",),
    devices: Sequence[str] = ("cpu",),
    variants: Sequence[str] = ("default",),
    threads: Sequence[int | None] = (None,),
    options: dict[str, Any] | None = None,
    scalings: Sequence[str] = ("weak",),
    gpu_count: int | None = None,
) -> list[Cell]:
    """All cells, in an order that keeps one framework's cells together.

    ``batch_sizes=None`` uses each workload's default batch. ``exec_modes`` may contain
    "default" (each adapter's own default). Combinations an adapter cannot run are still
    planned: the worker records them as `unsupported` with a reason, so nothing is dropped
    silently.

    Device sets (``cpu*2``, ``gpu:0+1``, ``gpu:all``) run data parallel once per entry of
    ``scalings``: with ``weak`` the batch size is per device (the global batch is N times
    it), with ``strong`` it is the global batch, split over the devices (a batch that does
    not split evenly is recorded `unsupported`). One-device cells are planned once whatever
    ``scalings`` holds: they are the baseline of both. ``gpu_count`` (the machine's, when
    known) turns ``gpu:all`` into its GPUs.
    """
    _check_axes(frameworks, workloads, modes, batch_sizes, precisions, exec_modes, threads,
                scalings)
    devs = _unique(DeviceSet.parse(d).resolve(gpu_count or 0) for d in devices)
    cells: list[Cell] = []
    for fw in _unique(frameworks):
        info = get_info(fw)
        fw_exec = _unique(info.default_exec_mode if e == "default" else e for e in exec_modes)
        for var, dev, wl, mode, prec, ex, th in itertools.product(
            _unique(variants), devs, _unique(workloads), _unique(modes), _unique(precisions),
            fw_exec, _unique(threads),
        ):
            for b in _unique(batch_sizes or [get_workload(wl).default_batch]):
                cells.extend(_scaled(Cell(fw, var, str(dev), wl, mode, b, prec, ex, th,
                                          dict(options or {})), dev, scalings))
    return cells


def _scaled(cell: Cell, dev: DeviceSet, scalings: Sequence[str]) -> list[Cell]:
    """A one-device cell as it is; a device set's once per scaling, with its global batch."""
    n = dev.count
    if n == 1:
        return [cell]
    # gpu:all on a machine without GPUs (n = 0) keeps the batch as given.
    return [replace(cell, batch_size=cell.batch_size * n if sc == "weak" and n else
                    cell.batch_size, options=dict(cell.options), scaling=sc)
            for sc in _unique(scalings)]


def _check_axes(frameworks: Sequence[str], workloads: Sequence[str], modes: Sequence[str],
                batch_sizes: Sequence[int] | None, precisions: Sequence[str],
                exec_modes: Sequence[str], threads: Sequence[int | None],
                scalings: Sequence[str]) -> None:
    """Every value of every axis known (or a positive count), else the one-line error."""
    for f in frameworks:
        get_info(f)
    for w in workloads:
        get_workload(w)
    _known("mode", modes, ALL_MODES)
    _known("precision", precisions, PRECISIONS)
    for b in batch_sizes or ():
        if not isinstance(b, int) or b <= 0:
            raise PlanError(f"batch size must be a positive integer, got {b!r}")
    for t in threads:
        if t is not None and (not isinstance(t, int) or t <= 0):
            raise PlanError(f"thread count must be a positive integer, got {t!r}")
    known_modes = {m for info in ADAPTERS.values() for m in info.exec_modes} | {"default"}
    _known("execution mode", exec_modes, sorted(known_modes))
    _known("scaling", scalings, SCALINGS)


def _known(what: str, values: Sequence[str], known: Sequence[str]) -> None:
    """PlanError naming the first of ``values`` that is not one of ``known``."""
    for v in values:
        if v not in known:
            raise PlanError(f"unknown {what} {v!r} (known: {', '.join(known)})")

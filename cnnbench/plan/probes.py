"""The peak probes: one GEMM cell per framework, variant, device, threads and precision.

A device's peak is the best probe: the fastest round of any framework's n x n GEMM, because
noise only ever makes a probe slower. ``sweep.validity`` holds each cell against it.
"""

from __future__ import annotations

from typing import Any

from cnnbench.core.cells import Cell, base_device

GEMM_N = {"cpu": 1024, "gpu": 8192}
TRAIN_FLOP_FACTOR = 3


def gemm_n(device: str) -> int:
    return GEMM_N["cpu" if device == "cpu" else "gpu"]


def probe_cells(cells: list[Cell]) -> list[Cell]:
    """One GEMM probe per framework, variant, device, threads and precision of the plan. A
    device set is probed on one of its devices (cpu*2 on cpu, gpu:0+1 on gpu:0)."""
    seen: dict[tuple[Any, ...], Cell] = {}
    for c in cells:
        dev = base_device(c.device)
        key = (c.framework, c.variant, dev, c.threads, c.precision)
        if key not in seen:
            seen[key] = Cell(c.framework, c.variant, dev, "gemm", "peak", gemm_n(dev),
                             c.precision, c.exec_mode, c.threads)
    return list(seen.values())

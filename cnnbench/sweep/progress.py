"""What a sweep says as its cells finish: one line per cell, for the local progress display
and for the Slurm job's log alike."""

from __future__ import annotations

from typing import Any

from cnnbench.core.cells import Cell
from cnnbench.core.keys import probe_peak


def describe(cell: Cell, row: dict[str, Any]) -> str:
    """One line for a finished cell: its figure with the CI, or why it has none."""
    peak = probe_peak(row) if row["mode"] == "peak" else None
    if row.get("follower"):
        what = (f"this node's ranks {'ran' if row['status'] == 'ok' else 'ended ' + row['status']}"
                "; the node holding rank 0 records the row")
    elif peak is not None:  # an ok GEMM probe
        what = f"GEMM peak {peak / 1e9:.1f} GFLOP/s (best round)"
    elif row["status"] == "ok":
        what = f"{row['images_per_s']:.1f} img/s [{row['ci95_low']:.1f}, {row['ci95_high']:.1f}]"
        if row.get("mfu") is not None:
            what += f" MFU {100 * row['mfu']:.1f}%"
        if row["flags"]:
            what += f" flags={','.join(row['flags'])}"
    else:
        what = f"{row['status'].upper()}: {row['error']}"
    return f"{cell.label()}: {what}"

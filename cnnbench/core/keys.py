"""What makes rows comparable: the cell key and the grouping keys, used by every floor above.

A row is one run of one cell; two rows are the same cell when they agree on ``KEY``. Adapter
options are a dict, so they take part as their canonical JSON (``options_key``).
"""

from __future__ import annotations

import json
from typing import Any

from cnnbench.core.cells import base_device

KEY = ["machine_id", "framework", "variant", "device", "workload", "mode", "batch_size",
       "precision", "exec_mode", "threads", "options_key"]


def options_key(options: Any) -> str:
    """Adapter options as canonical JSON: cells that differ only in options stay apart."""
    if not options:
        return "{}"
    return json.dumps(options, sort_keys=True, default=str)


def group_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """A cell's key without its batch size: the rows whose step time must grow with batch."""
    return (row["framework"], row["variant"], row["device"], row["workload"], row["mode"],
            row["precision"], row["exec_mode"], row["threads"], options_key(row.get("options")))


def peak_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["machine_id"], base_device(row["device"]), row["threads"], row["precision"])


def probe_peak(row: dict[str, Any]) -> float | None:
    """FLOP/s of a probe row's fastest round."""
    samples = row.get("samples_s")
    if row.get("status") != "ok" or samples is None or len(samples) == 0:  # list or array
        return None
    return float(row["flops_per_image"]) / min(row["samples_s"])

"""What makes rows comparable: the cell key and the grouping keys, used by every floor above.

A row is one run of one cell; two rows are the same cell when they agree on ``KEY``. Adapter
options are a dict, so they take part as their canonical JSON (``options_key``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from cnnbench.core.cells import Cell, base_device

KEY = ["machine_id", "framework", "variant", "device", "workload", "mode", "batch_size",
       "precision", "exec_mode", "threads", "options_key"]

# The grouping keys: each names what rows must share to be compared or grouped, the one
# definition every floor above imports. Orders matter: they order groups and columns.

# The same cell on another machine or in another run (``cnnbench compare``).
ACROSS_MACHINES = [k for k in KEY if k != "machine_id"]
# A cell's key without its batch size: the rows whose step time must grow with batch.
BATCH_GROUP = [k for k in KEY if k not in ("machine_id", "batch_size")]
# The cell key of a data-parallel row: the plan's key plus its scaling.
DP_KEY = [*KEY, "scaling"]
# What a data-parallel cell shares with its one-device baseline (all but device and batch).
DP_GROUP = ["machine_id", "framework", "variant", "workload", "mode", "precision", "exec_mode",
            "threads", "options_key"]
# What a variant or alternative build shares with the default build. Adapter options are
# left out: a configuration variant (channels-last) is its options.
VARIANT_GROUP = ["machine_id", "device", "framework", "workload", "mode", "batch_size",
                 "precision", "exec_mode", "threads"]
# A TensorFlow cell paired with another for the build claim: all but framework, variant and
# device (the claim pairs builds and ISA levels of one framework on the CPU).
BUILD_PAIR = ["machine_id", "workload", "mode", "batch_size", "precision", "exec_mode",
              "threads", "options_key"]
# One GPU against the CPU: all but machine, device and threads (threads are the CPU's own).
CROSS_DEVICE = ["framework", "variant", "workload", "mode", "batch_size", "precision",
                "exec_mode", "options_key"]
# A machine and one of its devices (or device sets).
SYSTEM = ["machine_id", "device"]
# A workload run one way on one system: the report's summary groups.
WORKLOAD = ["machine_id", "device", "workload", "mode"]
# The same work on the same system, any configuration: frameworks and machines ranked.
LIKE = ["machine_id", "device", "workload", "mode", "batch_size", "precision"]
# One chart of the ISA ladder: its levels and modes are drawn, all else is one chart.
LADDER_CHART = ["machine_id", "device", "workload", "batch_size", "precision", "threads"]
# Fields that name a configuration within a workload group, in the order a label gives them.
CONFIG = ["framework", "variant", "exec_mode", "precision", "threads", "options_key",
          "batch_size", "device", "machine_id"]

# A configuration measured at several batch sizes (memory against batch, the largest batch).
BUYER_CONFIG = ["framework", "variant", "workload", "mode", "device", "precision", "exec_mode",
                "threads"]
# What the tuner searches within (a framework on one workload, mode and device), and the
# knobs that tell its candidates apart.
TUNE_GROUP = ["machine_id", "framework", "workload", "mode", "device"]
TUNE_KNOBS = ["batch_size", "precision", "exec_mode", "threads", "options_key"]


def options_key(options: Any) -> str:
    """Adapter options as canonical JSON: cells that differ only in options stay apart."""
    if not options:
        return "{}"
    return json.dumps(options, sort_keys=True, default=str)


def group_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """A cell's key without its batch size: the rows whose step time must grow with batch."""
    return tuple(options_key(row.get("options")) if k == "options_key" else row[k]
                 for k in BATCH_GROUP)


def peak_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["machine_id"], base_device(row["device"]), row["threads"], row["precision"])


def probe_peak(row: dict[str, Any]) -> float | None:
    """FLOP/s of a probe row's fastest round."""
    samples = row.get("samples_s")
    if row.get("status") != "ok" or samples is None or len(samples) == 0:  # list or array
        return None
    return float(row["flops_per_image"]) / min(row["samples_s"])


# One kernel probe serves the cells that agree on these (cnnbench.sweep.runner).
PROBE_KEY = ("framework", "variant", "device", "mode", "precision", "exec_mode", "threads")


def probe_key(cell: Cell | Mapping[str, Any]) -> str:
    """The key under which one kernel probe serves many cells: a build and switch (framework,
    variant, options), device, mode, precision, execution mode and threads, but neither the
    workload, the batch nor the repeat. Which kernels a build dispatches to, and at which ISA,
    is decided by those; a probe per workload cost a framework import and a build each."""
    get = cell.get if isinstance(cell, Mapping) else functools.partial(getattr, cell)
    parts = [str(get(k)) for k in PROBE_KEY]
    return "|".join([*parts, json.dumps(get("options") or {}, sort_keys=True)])

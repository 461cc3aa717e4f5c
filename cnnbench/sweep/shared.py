"""Several cells in one worker process: the tuner's early rungs.

A rung of the ceiling search times many candidates of one framework environment for a few
seconds each. In a process of their own, each would pay the interpreter's start, the
framework's import (4-8 s here) and its set-up again; here the candidates that share a launch
(framework, variant, device, thread count: the process-wide settings) run one after another
in one worker (``cnnbench.measure.worker --cells``), which drops the framework's compiled
caches between them (``Adapter.between_cells``).

What stays honest:

* each candidate is still a row of its own, with ``process_slot`` saying it shared a process,
  and a ``wall_s`` that runs from the previous candidate's record (the first one's includes
  the import);
* a crash or a hang ends only the candidate that was running (the first without a record):
  it is recorded as ``crashed`` or ``timeout`` and a new process takes the rest;
* memory is not read in a shared process, and the final comparison, which names the
  ceiling, runs every side in fresh processes (``cnnbench.sweep.tune``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnbench.core.cells import Cell
from cnnbench.sweep.runner import (
    RunSettings,
    WorkerProcess,
    _base_row,
    _kill_group,
    _last_error_line,
    _merge_record,
)

POLL_S = 0.1
Hook = Callable[[Cell, dict[str, Any]], None]
# Row fields that the launch (variant, interpreter, environment) sets, the same for every
# cell of one process.
_LAUNCH_FIELDS = ("variant_kind", "isa_level", "env", "python")


def launch_key(cell: Cell) -> tuple[Any, ...]:
    """What must be equal for two cells to share a process: the settings a framework reads
    once per process (its build, device and thread pools)."""
    return cell.framework, cell.variant, cell.device, cell.threads


def run_shared(cells: list[Cell], settings: RunSettings, on_row: Hook | None = None,
               check: Callable[[Cell], bool] | None = None) -> list[dict[str, Any]]:
    """Run ``cells``, those with one ``launch_key`` in one process (in their order); returns
    their rows in the order of ``cells``, calling ``on_row`` as each finishes. ``check``
    says which cells pass the accuracy gate first (default: all, if
    ``settings.accuracy_check``)."""
    gated = check or (lambda _c: settings.accuracy_check)
    by_key: dict[tuple[Any, ...], list[Cell]] = {}
    for c in cells:
        by_key.setdefault(launch_key(c), []).append(c)
    rows: dict[str, dict[str, Any]] = {}

    def done(cell: Cell, row: dict[str, Any]) -> None:
        rows[cell.cell_id] = row
        if on_row:
            on_row(cell, row)

    for group in by_key.values():
        left = group
        while left:
            left = _one_process(left, settings, done, gated)
    return [rows[c.cell_id] for c in cells]


def _launch_failed(cells: list[Cell], settings: RunSettings, head: WorkerProcess,
                   done: Hook) -> None:
    """Every cell gets the status that kept the first from starting (same variant, same
    interpreter, same device)."""
    for c in cells:
        row = _base_row(c, settings)
        row.update({k: head.row.get(k) for k in _LAUNCH_FIELDS},
                   status=head.row["status"], error=head.row["error"])
        done(c, row)


def _payload(cells: list[Cell], settings: RunSettings, gated: Callable[[Cell], bool]
             ) -> list[dict[str, Any]]:
    out = []
    for c in cells:
        variant = settings.variants.get(c.framework, c.variant)
        options = {**(variant.options if variant else {}), **c.options}
        out.append({"cell": {**c.to_dict(), "options": options},
                    "protocol": settings.protocol.to_dict(), "check": gated(c)})
    return out


def _one_process(cells: list[Cell], settings: RunSettings, done: Hook,
                 gated: Callable[[Cell], bool]) -> list[Cell]:
    """Start one worker for ``cells`` and collect their rows; returns the cells it did not
    reach (after a crash or a hang, which is recorded for the cell that was running)."""
    head = WorkerProcess(cells[0], settings)
    launch = head._launch()
    if launch is None or head._gpu_missing():
        _launch_failed(cells, settings, head, done)
        return []
    python, env, _ = launch
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"shared-{cells[0].cell_id}.log"
    with tempfile.TemporaryDirectory(prefix="cnnbench-cells-") as name:
        tmp = Path(name)
        (tmp / "cells.json").write_text(json.dumps(_payload(cells, settings, gated)))
        cmd = [python, "-m", "cnnbench.measure.worker", "--cells", str(tmp / "cells.json"),
               "--out-dir", str(tmp)]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, cwd=tmp, start_new_session=True)
        try:
            return _collect(cells, settings, proc, tmp, head, log_path, done)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()


def _collect(cells: list[Cell], settings: RunSettings, proc: subprocess.Popen[bytes],
             tmp: Path, head: WorkerProcess, log_path: Path, done: Hook) -> list[Cell]:
    t_last = time.monotonic()
    for i, cell in enumerate(cells):
        row = _base_row(cell, settings)
        row.update({k: head.row.get(k) for k in _LAUNCH_FIELDS})
        rec = _wait_record(proc, tmp / f"{i}.json", t_last + settings.cell_timeout(cell))
        now = time.monotonic()
        row.update(wall_s=now - t_last, load_end=list(os.getloadavg()))
        t_last = now
        if isinstance(rec, dict):
            _merge_record(row, rec, cell.batch_size)
            done(cell, row)
            continue
        if rec == "timeout":
            _kill_group(proc)
            row.update(status="timeout", error=(
                f"worker exceeded the {settings.cell_timeout(cell):.0f} s cell timeout on this "
                f"candidate (slot {i} of a shared process) and was killed"))
        else:
            row.update(status="crashed", error=(
                f"worker (shared by {len(cells)} candidates, this one slot {i}) exited with "
                f"code {proc.returncode} and no record: {_last_error_line(log_path)}"))
        row["process_slot"] = i
        done(cell, row)
        return cells[i + 1:]
    return []


def _wait_record(proc: subprocess.Popen[bytes], path: Path, deadline: float
                 ) -> dict[str, Any] | str:
    """The record at ``path`` once written, or "timeout" / "exited" if it never comes."""
    while True:
        rec = _read(path)
        if rec is not None:
            return rec
        if proc.poll() is not None:  # a record written just before it ended still counts
            return _read(path) or "exited"
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(POLL_S)


def _read(path: Path) -> dict[str, Any] | None:
    """A record the worker wrote (atomically, so a partial file is never seen)."""
    try:
        rec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return rec
    except (OSError, json.JSONDecodeError):
        return None

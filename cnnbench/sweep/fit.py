"""The largest batch that fits a memory limit: doubling, then bisection, each try a fresh worker.

Every try is a complete cell run (``WorkerProcess``) at one batch size and is appended to the
run file as a row with ``fit_try`` true: ``ok`` rows carry the throughput at that size (the
report draws throughput against batch and marks the knee), ``oom`` rows say it did not fit.
Any other status (a crash, an error) ends the search with that reason.

How the limit is enforced (``kind``):

* ``resident`` (the default): a thread watches the resident memory of the worker and its
  children (psutil, every ``POLL_S``) and kills the worker past the limit, which the row
  records as ``oom``. This limits what a buyer's RAM must hold.
* ``address-space``: ``RLIMIT_AS`` in the worker (``--memory-limit-mb``), the runner's own.
  It counts reserved but untouched address space too (thread stacks, allocator arenas,
  XLA's and TensorFlow's reservations): on this machine a PyTorch ResNet-50 worker's peak
  address space was 1.4 GB at a 0.9 GB resident peak (training at 64x64, batch 32; the
  rows' ``peak_vm_mb`` against ``peak_rss_mb``), so an address-space limit finds a
  smaller batch than the RAM allows.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from cnnbench.core.cells import Cell
from cnnbench.core.schema import append_row, iter_rows
from cnnbench.sweep.runner import RunSettings, WorkerProcess

POLL_S = 0.02
KINDS = ("resident", "address-space")

class RssWatch:
    """Kill a worker's process group once its resident memory passes ``limit_mb``."""

    def __init__(self, pid: int, limit_mb: float) -> None:
        self.pid, self.limit_mb = pid, limit_mb
        self.peak_mb = 0.0
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cnnbench-rss", daemon=True)
        self._thread.start()

    def _rss_mb(self) -> float:
        try:
            proc = psutil.Process(self.pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            rss = self._rss_mb()
            self.peak_mb = max(self.peak_mb, rss)
            if rss > self.limit_mb:
                self.tripped = True
                try:
                    os.killpg(self.pid, signal.SIGKILL)  # the worker leads its own session
                except (ProcessLookupError, PermissionError):
                    pass
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

def try_batch(cell: Cell, settings: RunSettings, limit_mb: int, kind: str) -> dict[str, Any]:
    """One try: the cell at its batch size in a fresh worker under the limit; the row."""
    run_settings = dataclasses.replace(
        settings, memory_limit_mb=limit_mb if kind == "address-space" else 0)
    w = WorkerProcess(cell, run_settings)
    watch = None
    if w.start() and kind == "resident" and w.proc is not None:
        watch = RssWatch(w.proc.pid, limit_mb)
    row = w.finish()
    if watch is not None:
        watch.stop()
        if watch.tripped:
            row.update(status="oom", error=(
                f"resident memory passed the {limit_mb} MB limit (watched every "
                f"{POLL_S * 1000:.0f} ms) and the worker was killed"))
        elif row.get("status") == "ok" and (row.get("peak_rss_mb") or 0) > limit_mb:
            # A peak shorter than the watch's period: the kernel's high-water mark (VmHWM,
            # the row's peak_rss_mb) still saw it, so the try did not fit.
            row.update(status="oom", error=(
                f"peak resident memory {row['peak_rss_mb']:.0f} MB passed the {limit_mb} MB "
                "limit between two watches (the kernel's high-water mark)"))
    # Its own id: the plan may hold the same cell at this batch, and a run keeps one row per id.
    row.update(fit_try=True, memory_limit_mb=limit_mb, memory_limit_kind=kind,
               cell_id=f"{cell.cell_id}-fit")
    return row

@dataclass
class Fit:
    """A search's outcome: ``largest`` batch that ran ok (None: not even the first),
    ``first_failed`` the smallest that did not, and why the search stopped."""

    cell: Cell
    largest: int | None = None
    first_failed: int | None = None
    reason: str = ""
    tries: dict[int, str] = field(default_factory=dict)

def recorded_tries(settings: RunSettings) -> dict[str, dict[str, Any]]:
    """The fit tries a run file already holds, by cell id: ``--resume`` re-runs none of them."""
    if not settings.run_file.exists():
        return {}
    return {r["cell_id"]: r for r in iter_rows(settings.run_file, []) if r.get("fit_try")}


def find_largest_batch(cell: Cell, settings: RunSettings, limit_mb: int, *,
                       kind: str = "resident", start: int = 1, max_batch: int = 1024,
                       on_row: Callable[[Cell, dict[str, Any]], None] | None = None,
                       recorded: Mapping[str, dict[str, Any]] | None = None) -> Fit:
    """Double the batch from ``start`` until a try fails or passes ``max_batch``, then
    bisect between the last that fitted and the first that did not. Each try's row is
    appended to the run file; a try in ``recorded`` (same cell id, limit and kind: a resumed
    run) is not run again, and its recorded status steers the search the same way."""
    if kind not in KINDS:
        raise ValueError(f"limit kind must be one of {KINDS}, not {kind!r}")
    fit = Fit(cell)
    recorded = recorded or {}

    def attempt(batch: int) -> str:
        c = dataclasses.replace(cell, batch_size=batch)
        row = recorded.get(f"{c.cell_id}-fit")
        if row is None or (row.get("memory_limit_mb"), row.get("memory_limit_kind")) != (
                limit_mb, kind):
            row = try_batch(c, settings, limit_mb, kind)
            append_row(settings.run_file, row)
            if on_row:
                on_row(c, row)
        fit.tries[batch] = row["status"]
        if row["status"] not in ("ok", "oom"):
            fit.reason = f"batch {batch}: {row['status']}: {row['error']}"
        return str(row["status"])

    batch = start
    while batch <= max_batch:
        status = attempt(batch)
        if status != "ok":
            fit.first_failed = batch if status == "oom" else None
            break
        fit.largest = batch
        batch *= 2
    if fit.first_failed is None:
        fit.reason = fit.reason or f"batch {fit.largest} fitted, the search's maximum is {max_batch}"
        return fit
    _bisect(fit, attempt)
    fit.reason = fit.reason or f"batch {fit.first_failed} did not fit in {limit_mb} MB ({kind})"
    return fit


def _bisect(fit: Fit, attempt: Callable[[int], str]) -> None:
    """Between the largest batch that fitted and the first that did not, until they meet
    (or a try fails otherwise)."""
    assert fit.first_failed is not None
    lo, hi = fit.largest or 0, fit.first_failed
    while hi - lo > 1:
        mid = (lo + hi) // 2
        status = attempt(mid)
        if status == "ok":
            lo = mid
        elif status == "oom":
            hi = mid
        else:
            break
    fit.largest, fit.first_failed = (lo or None), hi

def fit_targets(cells: list[Cell]) -> list[Cell]:
    """One search per cell less its batch size and repeat (train and infer cells)."""
    seen: dict[tuple[Any, ...], Cell] = {}
    for c in cells:
        if c.mode not in ("train", "infer") or c.n_devices != 1:
            continue
        key = (c.framework, c.variant, c.device, c.workload, c.mode, c.precision, c.exec_mode,
               c.threads, tuple(sorted(c.options.items())))
        seen.setdefault(key, dataclasses.replace(c, repeat=0))
    return list(seen.values())

def machine_ram_mb() -> int:
    return int(psutil.virtual_memory().total / 2**20)

"""The sweep's ETA: the plan's estimate of the cells left, corrected as cells finish.

`Eta` corrects the estimate of the cells left as cells finish: observed/estimated step speed
(the cells left are re-estimated with it), setup, and timed part of budget-bound and of
step-bound cells, each a median shrunk towards 1, so one odd cell does not swing it. Pure
standard library plus the estimator (rich only inside `eta_column`).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnbench.core.cells import Cell
from cnnbench.measure.timing import Protocol
from cnnbench.plan.estimate import CellEstimate, estimate_cell, first_probes


def _shrunk_ratio(ratios: Sequence[float], prior_n: float) -> float:
    """Median observed/estimated on a log scale, pulled towards 1 as if ``prior_n`` cells
    had matched their estimates: one cell moves the ETA a little, many move it fully."""
    if not ratios:
        return 1.0
    logs = [math.log(min(max(r, 1 / 20), 20.0)) for r in ratios]  # a 10x busy machine was seen
    n = len(logs)
    return math.exp(statistics.median(logs) * n / (n + prior_n))


@dataclass
class Eta:
    """The plan's remaining wall time, corrected by the cells that finished.

    Four corrections, each a median of observed/estimated shrunk towards 1 (`_shrunk_ratio`):

    * **speed**: median round step of a finished cell / its estimated step. The cells still
      to run are re-estimated with it, so a slow machine turns cells step-bound as the
      protocol would (a ratio on totals could not: a budget-bound cell's time hardly moves);
    * **setup**: what came before the first step;
    * **budget**: the timed part of cells that were budget-bound at their observed speed
      (how much of its budget a cell uses: less when the confidence target stops it early);
    * **steps**: what is left over for step-bound cells once their speed is accounted for.

    A finished probe's peak re-estimates the cells still to run too.

    rich's progress display calls ``remaining_s`` from its own refresh thread while the
    runner records cells, so every method holds one lock: iterating the estimates while a
    finished cell is popped from them raised "dictionary changed size during iteration" and
    killed the display's thread mid-sweep.
    """

    cells: list[Cell]
    budget_s: float
    peaks: dict[Any, float] = field(default_factory=dict)
    protocol: Protocol | None = None
    prior_n: float = 2.0
    clock: Callable[[], float] = time.monotonic
    kernel_probe: bool = False  # the runner probes kernels after CPU cells
    estimates: dict[str, CellEstimate] = field(init=False)
    _done: dict[str, float] = field(init=False, default_factory=dict)
    _ratios: dict[str, list[float]] = field(init=False)
    _running: dict[str, float] = field(init=False, default_factory=dict)  # cell id -> start
    _lock: threading.RLock = field(init=False, default_factory=threading.RLock, repr=False)
    _probed: set[str] = field(init=False, default_factory=set)  # cells whose probe runs

    def __post_init__(self) -> None:
        self._ratios = {"speed": [], "setup": [], "budget": [], "steps": []}
        self._probed = first_probes(self.cells) if self.kernel_probe else set()
        self._reestimate()

    def _estimate(self, c: Cell, speed: float | None = None) -> CellEstimate:
        return estimate_cell(c, self.budget_s, self.peaks, self.protocol,
                             self.ratio("speed") if speed is None else speed,
                             kernel_probe=c.cell_id in self._probed)

    def _reestimate(self) -> None:
        self.estimates = {c.cell_id: self._estimate(c) for c in self.cells
                          if c.cell_id not in self._done}

    def ratio(self, part: str) -> float:
        """Current correction of "speed", "setup", "budget" or "steps" (1.0 = as estimated)."""
        return _shrunk_ratio(self._ratios[part], self.prior_n)

    def start(self, cell: Cell) -> None:
        """A cell started (`run_plan`'s ``on_start``; interleaved cells start together)."""
        with self._lock:
            self._running[cell.cell_id] = self.clock()

    def done(self, cell: Cell, wall_s: float, timed_s: float | None = None,
             ok: bool = True, step_s: float | None = None) -> None:
        """Record a finished cell. ``timed_s`` (first step + warm-up + rounds, from its row)
        splits setup from the timed part, ``step_s`` (its median round step) gives its speed;
        without them the ratio of totals is used. Cells that did not run to the end
        (``ok=False``) tell nothing about speed."""
        with self._lock:
            self._record(cell, wall_s, timed_s, ok, step_s)

    def _record(self, cell: Cell, wall_s: float, timed_s: float | None, ok: bool,
                step_s: float | None) -> None:
        est = self.estimates.pop(cell.cell_id, None)
        self._done[cell.cell_id] = float(wall_s)
        self._running.pop(cell.cell_id, None)
        if est is None or not ok or not est.runs or wall_s <= 0:
            return
        if timed_s is None or not 0 <= timed_s <= wall_s:
            r = wall_s / (est.setup_s + est.timed_s)
            self._ratios["setup"].append(r)
            self._ratios["steps" if est.step_bound else "budget"].append(r)
            return
        self._ratios["setup"].append((wall_s - timed_s) / est.setup_s)
        if step_s and step_s > 0 and est.step_s > 0 and cell.mode != "peak":
            own_speed = step_s / (est.step_s / self.ratio("speed"))
            at_own = self._estimate(cell, own_speed)  # what it was, at the speed it ran
            self._ratios["speed"].append(own_speed)
            self._ratios["steps" if at_own.step_bound else "budget"].append(
                timed_s / at_own.timed_s)
            self._reestimate()
        else:
            self._ratios["steps" if est.step_bound else "budget"].append(timed_s / est.timed_s)

    def done_row(self, cell: Cell, row: Mapping[str, Any]) -> None:
        """`done` from a result row (as `runner.run_plan` hands to ``on_done``)."""
        ok = row.get("status") == "ok"
        parts = [row.get(k) for k in ("first_step_s", "warmup_s", "measure_s")]
        timed = sum(float(p) for p in parts if p is not None) if ok and None not in parts else None
        samples = row.get("samples_s") or []
        step = statistics.median(samples) if ok and samples else None
        with self._lock:
            self._record(cell, float(row.get("wall_s") or 0.0), timed, ok, step)
            if ok and cell.mode == "peak" and samples:
                peak = 2.0 * cell.batch_size**3 / min(samples)
                key = (cell.device, cell.threads, cell.precision)
                if peak > self.peaks.get(key, 0.0):
                    self.peaks[key] = peak
                    self._reestimate()

    def _corrected(self, est: CellEstimate) -> float:
        timed = self.ratio("steps" if est.step_bound else "budget") * est.timed_s
        return self.ratio("setup") * (est.setup_s + est.probe_s) + timed

    def remaining_s(self) -> float:
        """Seconds until the plan ends: the cells not finished, corrected, less the time
        the running ones have spent (they run side by side when interleaved, so that time
        counts once; never below a second while one runs)."""
        with self._lock:
            waiting = running = 0.0
            for cid, est in self.estimates.items():
                if cid in self._running:
                    running += self._corrected(est)
                else:
                    waiting += self._corrected(est)
            if self._running:
                running = max(1.0, running - (self.clock() - min(self._running.values())))
            return waiting + running


def format_clock(s: float) -> str:
    """H:MM:SS, as rich's TimeRemainingColumn shows it."""
    s = max(0, round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def eta_column(eta: Eta) -> Any:
    """A rich progress column that shows ``eta.remaining_s()`` (rich imported here only)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        max_refresh = 0.5

        def render(self, task: Any) -> Text:
            return Text(f"ETA {format_clock(eta.remaining_s())}", style="progress.remaining")

    return EtaColumn()

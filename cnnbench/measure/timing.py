"""The timing protocol and its statistics. Pure standard library: the worker imports it.

The harness owns warm-up, calibration, rounds and stopping (as pyperf and MLPerf LoadGen do);
an adapter only supplies ``time_steps(n) -> seconds`` for n synchronized steps.

Protocol, per cell:

1. **First step** is timed on its own and kept as ``first_step_s`` (it holds graph capture
   or compilation, never counted as a step). It is *not* part of the budget: a compiled
   mode with a 30 s first step still gets its full budget of warm-up and timed rounds.
2. **Warm-up** runs single steps until the step time stops drifting: the median of the last
   ``window`` steps is within ``drift_tol`` of the median of the ``window`` before them, after
   at least ``min_warmup`` steps (more for compiled modes). Warm-up may use at most
   ``warmup_share`` of the budget; if it is not steady by then, the timed rounds are held to
   the same rule (their first ``window`` against their last), and the cell is flagged
   ``warmup_unsteady`` if they drift.
3. **Calibration**: steps per round = enough for a round to last ``min_round_s`` (one step
   for slow models), so the per-round timer cost stays negligible.
4. **Rounds**: each is ``time_steps(k)`` and therefore ends with a device sync. The per-step
   time of every round is kept raw. Rounds continue until the median's distribution-free
   95% confidence interval is within ``target_rel_ci`` of the median, or the budget is spent
   (never fewer than ``min_rounds``, the smallest count for which a 95% interval exists).

The budget is the same thing on both paths: warm-up plus this cell's own timed rounds.
``measure`` runs the rounds back to back; ``RoundBudget`` is the same stopping rule for a
runner that interleaves the rounds of several cells (their turns are not this cell's time).
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

CI_LEVEL = 0.95
MIN_ROUNDS_FOR_CI = 6  # with n < 6 no pair of order statistics covers the median at 95%


@functools.cache
def _ci_rank(n: int, level: float) -> int:
    """The largest r such that [x_(r), x_(n+1-r)] covers the median with probability >= level,
    from the exact binomial(n, 1/2) distribution. Cached: the rounds loop asks after every
    round, and the big-integer sums cost 0.4 s at n = 500."""
    total = 2**n
    best = 1
    for r in range(1, n // 2 + 1):
        # P(r <= B <= n - r) for B ~ Binomial(n, 1/2)
        cover = sum(math.comb(n, i) for i in range(r, n - r + 1)) / total
        if cover >= level:
            best = r
        else:
            break
    return best


def median_ci(samples: list[float], level: float = CI_LEVEL) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics
    [x_(r), x_(n+1-r)] (1-based), r from ``_ci_rank``. Needs n >= 6."""
    n = len(samples)
    if n < MIN_ROUNDS_FOR_CI:
        raise ValueError(f"need at least {MIN_ROUNDS_FOR_CI} samples for a 95% CI, got {n}")
    xs = sorted(samples)
    best = _ci_rank(n, level)
    return xs[best - 1], xs[n - best]


@dataclass
class Protocol:
    budget_s: float = 20.0  # warm-up + rounds, per cell (setup and compile come on top)
    min_warmup: int = 3
    # Compiled modes: the drift rule's first verdict (2 x window steps), not more. Measured
    # 2026-12 in a `cnnbench tune` of ResNet-50 inference and ResNet-20 training on the 2-core
    # AMD EPYC: in the 41 screening runs of compiled candidates (torch.compile, TF graph and
    # XLA, JAX jit, MXNet hybrid) that had only 1-2 warm-up steps after the first, the first
    # timed round was 0.94-1.05x the run's median (none slower by more than 5%), so the 10
    # steps this used to force cost up to 30 s a run at 3 s a step and bought nothing.
    min_warmup_compiled: int = 6
    window: int = 3
    drift_tol: float = 0.05
    warmup_share: float = 0.4
    min_round_s: float = 0.1
    min_rounds: int = 8
    max_rounds: int = 500
    target_rel_ci: float = 0.03

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise ValueError("budget must be > 0 seconds")
        if self.min_rounds < MIN_ROUNDS_FOR_CI:
            raise ValueError(f"min_rounds must be >= {MIN_ROUNDS_FOR_CI}")
        if self.max_rounds < self.min_rounds:
            raise ValueError("max_rounds must be >= min_rounds")
        if not 0 < self.target_rel_ci < 1:
            raise ValueError(f"target CI must be a fraction in (0, 1), got {self.target_rel_ci:g}")
        if not 0 < self.warmup_share < 1:
            raise ValueError("warmup_share must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """What the runner sends the worker: every field, as it is."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown protocol fields: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass
class Measurement:
    samples_s: list[float]  # per-step seconds of each timed round (round time / steps)
    steps_per_round: int
    first_step_s: float
    warmup_steps: int
    warmup_s: float
    warmup_steady: bool
    measure_s: float
    median_s: float
    ci95_low_s: float
    ci95_high_s: float
    ci_target_met: bool
    budget_s: float
    flags: list[str] = field(default_factory=list)

    @property
    def rel_ci(self) -> float:
        return max(self.median_s - self.ci95_low_s, self.ci95_high_s - self.median_s) / self.median_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rel_ci"] = self.rel_ci
        return d


def _steady(times: list[float], window: int, tol: float) -> bool:
    if len(times) < 2 * window:
        return False
    recent = statistics.median(times[-window:])
    before = statistics.median(times[-2 * window : -window])
    return abs(recent - before) <= tol * before


@dataclass
class WarmUp:
    """What warm-up and calibration found; the rounds start from here."""

    warm_start: float  # clock() after the first step: the budget starts here
    first_step_s: float
    warm: list[float]
    warmup_s: float
    steady: bool
    steps_per_round: int


def warm_up(time_steps: Callable[[int], float], proto: Protocol, compiled: bool = False,
            clock: Callable[[], float] = time.perf_counter) -> WarmUp:
    """Steps 1-3 of the protocol: the first step, warm-up until steady, calibration."""
    first = time_steps(1)
    warm: list[float] = []
    min_warm = proto.min_warmup_compiled if compiled else proto.min_warmup
    warm_start = clock()
    warm_budget = proto.warmup_share * proto.budget_s
    steady = False
    while True:
        warm.append(time_steps(1))
        if len(warm) >= min_warm and _steady(warm, proto.window, proto.drift_tol):
            steady = True
            break
        if len(warm) >= min_warm and clock() - warm_start > warm_budget:
            break
    step_est = statistics.median(warm[-proto.window :])
    k = max(1, math.ceil(proto.min_round_s / step_est)) if step_est > 0 else 1000
    # A round never takes more than its share of the budget, whatever min_round_s says.
    share = proto.budget_s / (proto.min_rounds * 2)
    if step_est > 0:
        k = max(1, min(k, int(share / step_est)))
    return WarmUp(warm_start, first, warm, clock() - warm_start, steady, k)


def ci_status(samples: list[float], proto: Protocol) -> tuple[float, float, float, bool]:
    """(median, CI low, CI high, target met) once there are min_rounds samples."""
    if len(samples) < proto.min_rounds:
        return float("nan"), float("nan"), float("nan"), False
    med = statistics.median(samples)
    lo, hi = median_ci(samples)
    met = med > 0 and (med - lo) <= proto.target_rel_ci * med and (
        hi - med) <= proto.target_rel_ci * med
    return med, lo, hi, met


def unsteady(w: WarmUp, samples: list[float], proto: Protocol) -> bool:
    """Whether the step time may still have been drifting in the timed rounds: warm-up ended
    (at its share of the budget) before the drift rule said steady, and the rounds do not
    show it either: the median of their first ``window`` is not within ``drift_tol`` of the
    median of their last ``window``. A slow step often ends warm-up on the budget after a
    few steps and is steady all the same; its rounds show it."""
    if w.steady:
        return False
    k = proto.window
    if len(samples) < 2 * k:
        return True
    first, last = statistics.median(samples[:k]), statistics.median(samples[-k:])
    return abs(last - first) > proto.drift_tol * first


def summarize(w: WarmUp, samples: list[float], measure_s: float, proto: Protocol) -> Measurement:
    """Step 4's statistics and flags over the rounds' per-step samples. ``measure_s`` is
    this cell's own time in timed rounds; with warm-up it is what the budget covers."""
    med, lo, hi, met = ci_status(samples, proto)
    flags = ["warmup_unsteady"] if unsteady(w, samples, proto) else []
    if not met:
        flags.append("ci_wide")
    if w.warmup_s + measure_s > proto.budget_s * 1.5:
        flags.append("over_budget")
    return Measurement(
        samples_s=samples, steps_per_round=w.steps_per_round, first_step_s=w.first_step_s,
        warmup_steps=len(w.warm), warmup_s=w.warmup_s, warmup_steady=w.steady,
        measure_s=measure_s, median_s=med, ci95_low_s=lo, ci95_high_s=hi, ci_target_met=met,
        budget_s=proto.budget_s, flags=flags,
    )


class RoundBudget:
    """The stopping rule of step 4, fed one round at a time: enough rounds for a CI, then
    stop at the CI target, the budget (warm-up + own rounds) or ``max_rounds``."""

    def __init__(self, w: WarmUp, proto: Protocol) -> None:
        self.w, self.proto = w, proto
        self.samples: list[float] = []
        self.own_s = 0.0  # seconds of this cell's own rounds

    def add(self, round_s: float) -> None:
        self.samples.append(round_s / self.w.steps_per_round)
        self.own_s += round_s

    @property
    def done(self) -> bool:
        n, proto = len(self.samples), self.proto
        if n >= proto.max_rounds:
            return True
        if n < proto.min_rounds:
            return False
        return (self.w.warmup_s + self.own_s >= proto.budget_s
                or ci_status(self.samples, proto)[3])

    def result(self) -> Measurement:
        return summarize(self.w, self.samples, self.own_s, self.proto)


def measure(time_steps: Callable[[int], float], proto: Protocol, compiled: bool = False,
            clock: Callable[[], float] = time.perf_counter) -> Measurement:
    """Run the protocol above against ``time_steps`` and return raw samples and statistics."""
    w = warm_up(time_steps, proto, compiled, clock)
    rounds = RoundBudget(w, proto)
    while not rounds.done:
        rounds.add(time_steps(w.steps_per_round))
    return rounds.result()

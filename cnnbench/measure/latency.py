"""Latency mode: every step timed on its own, each ending with the adapter's device sync.

The protocol's first step and warm-up are the throughput mode's (``timing.warm_up``); then
single steps (``time_steps(1)``: one step and a sync) are timed until the budget is spent and
there are at least enough steps for the p99's 95% interval to exist
(``percentiles.min_samples``), or until ``max_s`` passes first; a row with too few steps
for the p99 is flagged ``p99_interval_short``. Pure standard library.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from cnnbench.measure.percentiles import QUANTILES, min_samples, quantile
from cnnbench.measure.timing import Measurement, Protocol, WarmUp, unsteady, warm_up

MAX_STEPS = 20_000  # enough for the p99.9's interval (3,688 steps) five times over
# How far past the budget a cell may go to reach the p99's minimum step count: a 30 ms
# batch-1 step needs 11 s for 368 steps, which a quick run's 2 s budget would not allow.
OVERRUN = 10.0


def steps_wanted(proto: Protocol) -> int:
    """Steps a latency cell runs at least: the p99's minimum, never below the protocol's
    minimum rounds."""
    return max(proto.min_rounds, min_samples(QUANTILES["p99"]))


def measure_latency(time_steps: Callable[[int], float], proto: Protocol, compiled: bool = False,
                    clock: Callable[[], float] = time.perf_counter,
                    around: Callable[[Callable[[], float]], float] | None = None) -> Measurement:
    """Warm up, then time single synchronized steps. ``around(step)`` wraps each timed step
    (the energy meter reads its counters there, outside the step's own clock)."""
    w = warm_up(time_steps, proto, compiled, clock)
    w.steps_per_round = 1  # every step is its own sample
    need = steps_wanted(proto)
    start = clock()
    own = 0.0
    samples: list[float] = []
    hard = OVERRUN * proto.budget_s
    while len(samples) < MAX_STEPS:
        t = around(lambda: time_steps(1)) if around else time_steps(1)
        samples.append(t)
        own += t
        spent = clock() - start
        if len(samples) >= need and w.warmup_s + spent >= proto.budget_s:
            break
        if spent >= hard and len(samples) >= proto.min_rounds:
            break
    return _summary(w, samples, own, proto, need)


def _summary(w: WarmUp, samples: list[float], own: float, proto: Protocol,
             need: int) -> Measurement:
    """``timing.summarize`` for single steps: the median's interval from the same order
    statistics, computed in floating point (timing's exact big-integer sums take minutes at
    the tens of thousands of samples a fast latency cell collects)."""
    med = quantile(samples, "p50", 0.5)
    lo, hi = med.low, med.high
    met = lo is not None and hi is not None and max(
        med.value - lo, hi - med.value) <= proto.target_rel_ci * med.value
    flags = ["warmup_unsteady"] if unsteady(w, samples, proto) else []
    if len(samples) < need:
        flags.append("p99_interval_short")
    if w.warmup_s + own > proto.budget_s * OVERRUN:
        flags.append("over_budget")
    return Measurement(
        samples_s=samples, steps_per_round=1, first_step_s=w.first_step_s,
        warmup_steps=len(w.warm), warmup_s=w.warmup_s, warmup_steady=w.steady, measure_s=own,
        median_s=statistics.median(samples), ci95_low_s=lo if lo is not None else math.nan,
        ci95_high_s=hi if hi is not None else math.nan, ci_target_met=met,
        budget_s=proto.budget_s, flags=flags)

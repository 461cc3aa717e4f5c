"""The timing protocol against simulated devices (a fake clock), so no time is asserted."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbench.measure.timing import Protocol, RoundBudget, _ci_rank, measure, median_ci, warm_up


class FakeDevice:
    """time_steps(n) 'runs' n steps of a given duration profile and advances a fake clock."""

    def __init__(self, step_s: float, noise: float = 0.0, first_s: float | None = None,
                 drift_steps: int = 0, seed: int = 0) -> None:
        self.now = 0.0
        self.step_s, self.noise = step_s, noise
        self.first_s = first_s
        self.drift_steps = drift_steps
        self.steps = 0
        self.rng = random.Random(seed)

    def clock(self) -> float:
        return self.now

    def one(self) -> float:
        self.steps += 1
        if self.steps == 1 and self.first_s is not None:
            return self.first_s
        t = self.step_s
        if self.steps <= self.drift_steps:  # slow at first, settling geometrically
            t *= 1 + 2.0 * 0.7 ** self.steps
        return t * (1 + self.rng.uniform(-self.noise, self.noise))

    def time_steps(self, n: int) -> float:
        total = sum(self.one() for _ in range(n))
        self.now += total
        return total


def test_quiet_device_meets_the_ci_target_quickly() -> None:
    dev = FakeDevice(0.01, noise=0.002)
    m = measure(dev.time_steps, Protocol(budget_s=30), clock=dev.clock)
    assert m.ci_target_met and "ci_wide" not in m.flags
    assert len(m.samples_s) == 8  # min_rounds suffice
    assert m.ci95_low_s <= m.median_s <= m.ci95_high_s
    assert m.median_s == pytest.approx(0.01, rel=0.01)
    assert m.steps_per_round == 10  # 0.1 s rounds of 10 ms steps


def test_first_step_is_kept_apart_from_the_samples() -> None:
    dev = FakeDevice(0.01, first_s=5.0)
    m = measure(dev.time_steps, Protocol(budget_s=60), clock=dev.clock)
    assert m.first_step_s == 5.0
    assert max(m.samples_s) < 0.02


def test_noisy_device_runs_to_the_budget_and_is_flagged() -> None:
    dev = FakeDevice(0.01, noise=0.6)
    m = measure(dev.time_steps, Protocol(budget_s=5, min_round_s=0.01), clock=dev.clock)
    assert not m.ci_target_met and "ci_wide" in m.flags
    assert len(m.samples_s) > 8
    assert dev.now <= 5 + 0.5  # stops at the budget (plus at most one round)


def test_a_long_first_step_does_not_eat_the_budget() -> None:
    """A compiled mode: 30 s of compilation in the first step, a 20 s budget. The budget is for
    warm-up and timed rounds, so about 20 s of them run (it once gave 8 rounds and 0.93 s)."""
    dev = FakeDevice(0.1, noise=0.5, first_s=30.0)
    m = measure(dev.time_steps, Protocol(budget_s=20, target_rel_ci=0.001), compiled=True,
                clock=dev.clock)
    spent = m.warmup_s + m.measure_s
    assert 19.0 <= spent <= 21.0, spent
    assert m.measure_s > 10.0
    assert dev.now == pytest.approx(30.0 + spent)
    assert "over_budget" not in m.flags


def test_interleaved_rounds_stop_by_the_same_budget_as_back_to_back_ones() -> None:
    """RoundBudget (fed by the interleaving runner) and measure() spend the same budget:
    the other cells' turns between this cell's rounds do not count."""
    proto = Protocol(budget_s=20, target_rel_ci=0.001)
    seq_dev = FakeDevice(0.1, noise=0.5, first_s=30.0, seed=3)
    seq = measure(seq_dev.time_steps, proto, compiled=True, clock=seq_dev.clock)
    dev = FakeDevice(0.1, noise=0.5, first_s=30.0, seed=3)
    w = warm_up(dev.time_steps, proto, compiled=True, clock=dev.clock)
    rounds = RoundBudget(w, proto)
    while not rounds.done:
        rounds.add(dev.time_steps(w.steps_per_round))
        dev.now += 5.0  # another worker's turn: wall time passes, this cell's budget does not
    inter = rounds.result()
    assert len(inter.samples_s) == len(seq.samples_s)
    assert inter.measure_s == pytest.approx(seq.measure_s)


def test_median_ci_ranks_are_computed_once_per_n() -> None:
    _ci_rank.cache_clear()
    xs = [float(i % 17) for i in range(300)]
    for n in range(6, 300):
        median_ci(xs[:n])
        median_ci(xs[:n])
    info = _ci_rank.cache_info()
    assert info.misses == 294 and info.hits == 294


def test_warmup_waits_for_the_drift_to_stop() -> None:
    dev = FakeDevice(0.01, drift_steps=30)
    m = measure(dev.time_steps, Protocol(budget_s=60), clock=dev.clock)
    assert m.warmup_steady
    assert m.warmup_steps > 6
    assert m.median_s == pytest.approx(0.01, rel=0.02)


def test_compiled_modes_warm_up_at_least_their_own_minimum() -> None:
    """A compiled mode's least warm-up is ``min_warmup_compiled`` (6 by default: the drift
    rule's first verdict), even where the step is steady from the start."""
    dev = FakeDevice(0.01)
    m = measure(dev.time_steps, Protocol(budget_s=60), compiled=True, clock=dev.clock)
    assert m.warmup_steps == 6
    m = measure(dev.time_steps, Protocol(budget_s=60, min_warmup_compiled=10), compiled=True,
                clock=dev.clock)
    assert m.warmup_steps == 10
    assert measure(dev.time_steps, Protocol(budget_s=60, min_warmup_compiled=10),
                   clock=dev.clock).warmup_steps == 6, "eager: the drift rule's own minimum"


def test_slow_steps_still_get_enough_rounds_for_a_ci() -> None:
    dev = FakeDevice(3.0, noise=0.01)  # each step 3 s, budget 10 s
    m = measure(dev.time_steps, Protocol(budget_s=10), clock=dev.clock)
    assert m.steps_per_round == 1
    assert len(m.samples_s) >= 8
    assert "over_budget" in m.flags


@given(st.lists(st.floats(1e-6, 1e3, allow_nan=False), min_size=6, max_size=200))
def test_median_ci_brackets_the_median(samples: list[float]) -> None:
    lo, hi = median_ci(samples)
    assert lo <= statistics.median(samples) <= hi
    assert lo in samples and hi in samples


def test_median_ci_exact_small_cases() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0]
    assert median_ci(xs) == (1.0, 6.0)  # n=6: only (min, max) reaches 95% (96.9%)
    xs = list(map(float, range(1, 21)))  # n=20: r=6 gives 95.9% coverage
    assert median_ci(xs) == (6.0, 15.0)
    with pytest.raises(ValueError):
        median_ci([1.0] * 5)


def test_median_ci_coverage_is_at_least_95_percent() -> None:
    rng = random.Random(1)
    hits = 0
    trials = 2000
    for _ in range(trials):
        xs = [rng.expovariate(1.0) for _ in range(15)]
        lo, hi = median_ci(xs)
        hits += lo <= math.log(2) <= hi  # true median of Exp(1)
    assert hits / trials >= 0.93  # exact coverage is 96.5%; allow sampling error


def test_protocol_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Protocol(budget_s=0)
    with pytest.raises(ValueError):
        Protocol(min_rounds=3)
    with pytest.raises(ValueError):
        Protocol(target_rel_ci=0)
    with pytest.raises(ValueError, match="fraction"):
        Protocol(target_rel_ci=1.5)


def test_protocol_travels_as_it_is() -> None:
    p = Protocol(budget_s=7.5, target_rel_ci=0.05, min_rounds=10)
    assert Protocol.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown protocol fields: nonsense"):
        Protocol.from_dict({**p.to_dict(), "nonsense": 1})


def test_a_warm_up_cut_short_is_judged_by_the_rounds() -> None:
    """A slow step (2 s, budget 10 s) ends warm-up on its budget share after two steps: the
    drift rule never had its six. Steady rounds clear the flag; rounds still settling (the
    first ones up to 1.7x slower) keep it."""
    lean = Protocol(budget_s=10, min_warmup=1, min_warmup_compiled=2, min_rounds=6)
    dev = FakeDevice(2.0, noise=0.01)
    steady = measure(dev.time_steps, lean, compiled=True, clock=dev.clock)
    assert steady.warmup_steps == 2 and not steady.warmup_steady
    assert "warmup_unsteady" not in steady.flags
    dev = FakeDevice(2.0, noise=0.01, drift_steps=12)
    settling = measure(dev.time_steps, lean, compiled=True, clock=dev.clock)
    assert not settling.warmup_steady and "warmup_unsteady" in settling.flags

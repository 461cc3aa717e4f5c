"""The harness's own overhead, measured side by side in one process (never asserted as a time).

* null: the cost of one timed round of an empty step, and of the per-round statistics.
* pytorch / jax: the suite's step (the adapter's time_steps, as the protocol calls it) against
  a bare hand-written loop driving the same model, rounds interleaved A, B, A, B so drift of
  the machine hits both alike. The printed ratio is suite / hand (target <= 1.005).

Run: tox -e perf   (or: .tox/pytorch/bin/python -m pytest tests/perf --framework pytorch -s)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import pytest
from sidebyside import interleave, resnet20_suite  # this folder

from cnnbench.measure.timing import median_ci

pytestmark = pytest.mark.perf
ROUNDS = 30


def _interleave(suite: Callable[[int], float], hand: Callable[[int], float], k: int,
                rounds: int = ROUNDS) -> tuple[float, float, float, tuple[float, float]]:
    per_step = interleave({"suite": suite, "hand": hand}, k, rounds)
    a, b = per_step["suite"], per_step["hand"]
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(a), statistics.median(b), statistics.median(ratios), median_ci(ratios)


def _report(benchmark, name: str, suite_s: float, hand_s: float, ratio: float,
            ci: tuple[float, float]) -> None:
    benchmark.extra_info.update(suite_step_s=suite_s, hand_step_s=hand_s, ratio=ratio,
                                ratio_ci95=list(ci))
    print(f"\n{name}: suite {suite_s * 1e3:.3f} ms/step, hand loop {hand_s * 1e3:.3f} ms/step, "
          f"overhead ratio suite/hand = {ratio:.4f} (95% CI {ci[0]:.4f}-{ci[1]:.4f})")


def test_null_round_overhead(benchmark, framework: str) -> None:
    if framework != "null":
        pytest.skip("null-adapter benchmark runs in the core environment")
    from adapters import load_adapter
    from adapters.base import BuildOptions
    from workloads import get_workload
    from workloads.reference import init_weights, synthetic_batch

    adapter = load_adapter("null")
    spec = get_workload("lenet5")
    model = adapter.build(spec, init_weights(spec), BuildOptions())
    time_steps = adapter.prepare(model, *synthetic_batch(spec, 2))
    benchmark(time_steps, 1)  # one timed round of an empty step: the timer's own cost
    per_round = benchmark.stats.stats.median
    print(f"\nnull adapter: one timed round costs {per_round * 1e9:.0f} ns; against a 0.1 s round "
          f"that is {per_round / 0.1:.2e} of the measurement")


def test_per_round_statistics_cost(benchmark, framework: str) -> None:
    if framework != "null":
        pytest.skip("runs in the core environment")
    samples = list(np.random.default_rng(0).uniform(0.9, 1.1, 200))
    benchmark(median_ci, samples)  # done between rounds, outside the timed region


def test_pytorch_suite_vs_hand_loop(benchmark, framework: str) -> None:
    if framework != "pytorch":
        pytest.skip("runs in the pytorch environment")
    import torch
    import torch.nn.functional as F

    from adapters import load_adapter

    model, x, y, suite = resnet20_suite(load_adapter("pytorch"), "train", "eager", 32, 2)
    module, opt = model.module, model.optimizer
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def hand(k: int) -> float:  # what a user would write around the same module
        t0 = time.perf_counter()
        for _ in range(k):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(module(xt), yt).backward()
            opt.step()
        return time.perf_counter() - t0

    result = benchmark.pedantic(_interleave, args=(suite, hand, 3), rounds=1, iterations=1)
    _report(benchmark, "pytorch resnet20 train b32", *result)


def test_jax_suite_vs_hand_loop(benchmark, framework: str) -> None:
    if framework != "jax":
        pytest.skip("runs in the jax environment")
    import jax

    from adapters import load_adapter

    adapter = load_adapter("jax")
    model, x, y, suite = resnet20_suite(adapter, "train", "jit", 32, 2)
    xd, yd = adapter._put_batch(model, x, y)
    step = model.train_fn  # the same jitted (state-donating) step the adapter compiled

    def hand(k: int) -> float:  # a bare loop around the same jitted step
        t0 = time.perf_counter()
        state = model.state
        for _ in range(k):
            state, loss = step(state, xd, yd)
        model.state = state
        jax.block_until_ready(loss)
        return time.perf_counter() - t0

    result = benchmark.pedantic(_interleave, args=(suite, hand, 3), rounds=1, iterations=1)
    _report(benchmark, "jax resnet20 train b32 (jit)", *result)

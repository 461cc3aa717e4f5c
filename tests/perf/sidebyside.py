"""Side-by-side timing of the suite's step against a hand-written loop, in one process.

Rounds alternate A B, B A, A B ... so neither runner always follows the other and the drift
of a shared machine hits both alike. Used by the handloop_*.py scripts and test_overhead.py.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

TimeSteps = Callable[[int], float]


def parse_args(description: str, exec_modes: tuple[str, ...]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--steps", type=int, default=5, help="steps per round")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--exec-mode", choices=exec_modes, default=exec_modes[0])
    return p.parse_args()


def resnet20_suite(adapter: Any, mode: str, exec_mode: str, batch: int,
                   threads: int) -> tuple[Any, Any, Any, TimeSteps]:
    """(model, x, y, the adapter's time_steps) for ResNet-20 from canonical weights."""
    from adapters.base import BuildOptions
    from workloads import get_workload
    from workloads.reference import init_weights, synthetic_batch

    print("threads:", adapter.setup(threads))
    spec = get_workload("resnet20")
    x, y = synthetic_batch(spec, batch, seed=0)
    model = adapter.build(spec, init_weights(spec), BuildOptions(mode=mode, exec_mode=exec_mode))
    return model, x, y, adapter.prepare(model, x, y)


def interleave(runners: dict[str, TimeSteps], steps: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per step of each runner in each round, after one warm-up call of each."""
    for run in runners.values():  # trace / compile / warm up
        run(1)
        run(steps)
    per_step: dict[str, list[float]] = {k: [] for k in runners}
    order = list(runners)
    for _ in range(rounds):
        for name in order:
            per_step[name].append(runners[name](steps) / steps)
        order.reverse()
    return per_step


def compare(adapter: TimeSteps, hand: TimeSteps, batch: int, steps: int,
            rounds: int) -> float:
    """Print images/s of both and the ratio adapter / hand (> 1: the adapter is faster)."""
    per_step = interleave({"adapter": adapter, "hand": hand}, steps, rounds)
    rates = {k: [batch / s for s in v] for k, v in per_step.items()}
    med = {k: statistics.median(v) for k, v in rates.items()}
    for k, v in rates.items():
        print(f"{k:8s} {med[k]:8.1f} images/s (median of {len(v)} rounds; "
              f"min {min(v):.1f}, max {max(v):.1f})")
    ratio = [a / b for a, b in zip(rates["adapter"], rates["hand"], strict=True)]
    print(f"adapter / hand: {med['adapter'] / med['hand']:.3f} "
          f"(per-round ratios: median {statistics.median(ratio):.3f}, "
          f"min {min(ratio):.3f}, max {max(ratio):.3f})")
    return med["adapter"] / med["hand"]

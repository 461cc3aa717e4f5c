"""One SGD step from the canonical weights on the PyTorch reference fixture's batch
(tests/fixtures/sgd_step_*.npz, made by make_sgd_fixtures.py), for the shared suite and the
framework-specific files alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import BuildOptions
from workloads import get_workload
from workloads.reference import init_weights, max_rel_error

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# The fp32 step's tolerance against the float64 fixture, per workload, for every framework and
# execution mode. ResNet-20's fixture batch has pre-ReLU values within fp32 rounding of zero
# (+7.9e-6 at layer2.0.relu2; +1.96e-6 at layer1.1.relu1, image 0, channel 15): which side a
# mode rounds one to depends on its summation order, which depends on the CPU kind and ISA,
# and a flipped gradient moves ~1% of the weights by up to ~1e-3 of their scale. So no test
# holds the fp32 ResNet-20 step to less; float64 steps hold every workload to 1e-4 or better.
FP32_TOL = 1e-4
FP32_STEP_TOL = {"lenet5": FP32_TOL, "cifar10_tutorial": FP32_TOL, "resnet20": 5e-3}


def sgd_step(adapter: Any, name: str, **opts: Any) -> tuple[float, float, float]:
    """Build ``name`` for training with the fixture's lr and momentum (other BuildOptions from
    ``opts``), take one step, and return (loss, the fixture's loss, the worst relative error
    of the updated weights and BN statistics against the fixture's)."""
    fixture = np.load(FIXTURES / f"sgd_step_{name}.npz")
    spec = get_workload(name)
    weights = init_weights(spec, seed=0)
    model = adapter.build(spec, weights, BuildOptions(
        mode="train", lr=float(fixture["lr"]), momentum=float(fixture["momentum"]), **opts))
    loss = adapter.train_step(model, fixture["x"], fixture["y"])
    after = adapter.export_weights(model)
    worst = max(max_rel_error(after[k], fixture[f"w:{k}"]) for k in weights)
    moved = max(float(np.max(np.abs(after[k] - weights[k]))) for k in weights)
    assert moved > 0, "the step did not change any weight"
    return loss, float(fixture["loss"]), worst

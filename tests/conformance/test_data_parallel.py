"""Data parallel with each framework's own mechanism, on two simulated CPU devices.

One data-parallel SGD step (dp_step.py, in a process of its own: TensorFlow's logical CPUs
and JAX's host devices exist only if made before the runtime starts, and PyTorch needs
torchrun) must leave every replica with the same weights, and, for a workload without batch
norm (LeNet-5), the same weights as one single-device step on the global batch, within the
SGD-step check's fp32 tolerance. ``--full-size`` adds the CIFAR-10 tutorial CNN and ResNet-20
(batch norm: each replica normalises its own shard, except JAX, whose sharded jit reduces
the statistics over the global batch; see the README).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workloads.reference import max_rel_error

pytestmark = pytest.mark.conformance

HERE = Path(__file__).resolve().parent
FP32_TOL = 1e-4
NO_BN = ("lenet5", "cifar10_tutorial")
# How each framework treats batch-norm running statistics across replicas after a step:
# "same": every replica holds the same values; "own": each replica keeps its shard's.
RUNNING_STATS = {"pytorch": "own", "tensorflow": "same", "jax": "same", "mxnet": "same"}


def dp_command(framework: str, args: list[str]) -> list[str]:
    script = str(HERE / "dp_step.py")
    if framework == "pytorch":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2", script, *args]
    return [sys.executable, script, *args]


def run_dp(framework: str, args: list[str], timeout: float = 400) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(dp_command(framework, args), env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def workloads(request: pytest.FixtureRequest) -> list[str]:
    full = request.config.getoption("--full-size")
    return ["lenet5", "cifar10_tutorial", "resnet20"] if full else ["lenet5"]


@pytest.fixture(scope="module")
def dp(framework: str, workloads: list[str], tmp_path_factory: pytest.TempPathFactory
       ) -> dict[str, Any]:
    if framework == "null":
        pytest.skip("the null adapter does not train")
    out = tmp_path_factory.mktemp("dp") / "step.npz"
    run_dp(framework, ["--framework", framework, "--device", "cpu*2", "--single",
                       "--workloads", ",".join(workloads), "--out", str(out)])
    return dict(np.load(out))


def replicas(dp: dict[str, Any], name: str) -> list[dict[str, np.ndarray]]:
    n = int(dp[f"{name}/replicas"])
    return [{k.split(":", 1)[1]: v for k, v in dp.items() if k.startswith(f"{name}/r{i}:")}
            for i in range(n)]


def test_replica_weights_are_identical_after_one_step(dp, workloads, framework) -> None:
    for name in workloads:
        reps = replicas(dp, name)
        assert len(reps) == 2, f"{name}: {len(reps)} replicas, not 2"
        first = reps[0]
        for other in reps[1:]:
            assert set(other) == set(first)
            for k, v in first.items():
                if "running_" in k and RUNNING_STATS[framework] == "own":
                    continue  # each replica's own shard statistics (see RUNNING_STATS)
                np.testing.assert_array_equal(other[k], v, err_msg=f"{name} {k}")


def test_running_statistics_follow_the_documented_rule(dp, workloads, framework) -> None:
    if "resnet20" not in workloads:
        pytest.skip("needs a batch-norm workload: run with --full-size")
    a, b = replicas(dp, "resnet20")[:2]
    same = all(np.array_equal(a[k], b[k]) for k in a if "running_" in k)
    assert same == (RUNNING_STATS[framework] == "same")


def test_step_equals_one_device_step_on_the_global_batch(dp, workloads) -> None:
    for name in [w for w in workloads if w in NO_BN]:
        rep = replicas(dp, name)[0]
        single = {k.split(":", 1)[1]: v for k, v in dp.items() if k.startswith(f"{name}/single:")}
        worst = max(max_rel_error(rep[k], single[k]) for k in single)
        assert worst <= FP32_TOL, f"{name}: data parallel vs one device differs by {worst:.2e}"

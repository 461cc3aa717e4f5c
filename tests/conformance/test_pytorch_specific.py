"""PyTorch-only checks: the ``channels-last`` variant (``memory_format=channels_last``) runs
the same network as the default NCHW layout, and a bad memory format is refused."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.base import BuildOptions
from tests.conformance.fixture_step import sgd_step
from tests.conformance.oracle import canonical, oracle_logits
from workloads import get_workload
from workloads.reference import init_weights, max_rel_error, synthetic_batch

pytestmark = pytest.mark.conformance

CHANNELS_LAST = {"memory_format": "channels_last"}


@pytest.fixture(scope="module")
def torch_adapter(framework: str, request: pytest.FixtureRequest):
    if framework != "pytorch":
        pytest.skip("PyTorch-specific tests (--framework pytorch)")
    return request.getfixturevalue("adapter")


@pytest.mark.parametrize("name", ["cifar10_tutorial", "resnet20", "mobilenet_v2"])
def test_channels_last_matches_oracle(torch_adapter, name: str) -> None:
    import torch

    spec, weights = canonical(name)  # init_weights(spec), drawn once per process
    model = torch_adapter.build(spec, weights, BuildOptions(options=CHANNELS_LAST))
    convs = [p for p in model.module.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    # Really NHWC in memory, not only tagged: the channel stride is 1 (unless C == 1).
    assert any(p.shape[1] > 1 and p.stride(1) == 1 for p in convs)
    x, ref = oracle_logits(name)  # forward(spec, weights, synthetic_batch(spec, 2, seed=1))
    err = max_rel_error(torch_adapter.predict(model, x), ref)
    assert err <= 1e-4, f"{name}: max relative error {err:.2e}"
    exported = torch_adapter.export_weights(model)
    for k, v in weights.items():
        np.testing.assert_array_equal(exported[k], v, err_msg=k)


@pytest.mark.parametrize("name", ["cifar10_tutorial", "resnet20"])
def test_channels_last_step_matches_fixture(torch_adapter, name: str) -> None:
    loss, ref_loss, worst = sgd_step(torch_adapter, name, dtype="float64", options=CHANNELS_LAST)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert worst <= 1e-6


def test_timed_step_runs_channels_last(torch_adapter) -> None:
    spec = get_workload("lenet5")
    model = torch_adapter.build(spec, init_weights(spec),
                                BuildOptions(mode="train", options=CHANNELS_LAST))
    x, y = synthetic_batch(spec, 4)
    assert torch_adapter.prepare(model, x, y)(2) > 0


def test_unknown_memory_format_is_refused(torch_adapter) -> None:
    spec = get_workload("lenet5")
    with pytest.raises(ValueError, match="memory_format must be one of"):
        torch_adapter.build(spec, init_weights(spec), BuildOptions(options={"memory_format": "nhwc"}))


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_the_accuracy_gate_checks_the_timed_program(torch_adapter, mode: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`cnnbench tune`'s gate runs on the timed model at the cell's batch: torch.compile
    compiles one graph, which the gate checks and the timed steps then run. (An input made
    in inference mode has other dispatch keys, and a batch-2 twin another shape: either
    compiles a second graph, and the gate would check another program.)"""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from cnnbench.core.cells import Cell
    from cnnbench.measure import worker
    from cnnbench.measure.timing import Protocol

    monkeypatch.setattr(worker, "MEASURE_MEMORY", False)
    torch._dynamo.reset()
    counters.clear()
    cell = Cell("pytorch", "default", "cpu", "lenet5", mode, 4, "fp32", "compiled", threads=2)
    rec = worker.run_cell(cell, Protocol(budget_s=0.2, min_rounds=6), check=True)
    assert rec["status"] == "ok", rec["error"]
    assert rec["accuracy"]["batch"] == 4 and rec["accuracy"]["ok"]
    assert counters["stats"]["unique_graphs"] == 1, dict(
        counters["stats"])
    assert not counters["recompiles"], dict(counters["recompiles"])

"""Every adapter must reproduce the NumPy oracle from the same canonical weights, count the
same parameters, round-trip weights, train, and reject what it cannot run with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters import get_info
from adapters.base import BuildOptions, Unsupported
from workloads import get_workload, list_workloads
from workloads.reference import forward, init_weights, max_rel_error, synthetic_batch

pytestmark = pytest.mark.conformance

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TRAIN_FIXTURE_WORKLOADS = ("lenet5", "cifar10_tutorial", "resnet20")
FP32_TOL = 1e-4


def _build(adapter, name: str, **kw):
    spec = get_workload(name)
    weights = init_weights(spec, seed=0)
    opts = BuildOptions(**kw)
    return spec, weights, adapter.build(spec, weights, opts)


@pytest.mark.parametrize("name", list_workloads())
def test_matches_numpy_oracle_fp32(adapter, name: str) -> None:
    spec, weights, model = _build(adapter, name, mode="infer")
    x, _ = synthetic_batch(spec, 2, seed=1)
    got = adapter.predict(model, x)
    ref = forward(spec, weights, x)
    err = max_rel_error(got, ref)
    assert err <= FP32_TOL, f"{name}: max relative error {err:.2e} > {FP32_TOL}"


@pytest.mark.parametrize("name", list_workloads())
def test_param_count_and_weight_round_trip(adapter, name: str) -> None:
    spec, weights, model = _build(adapter, name, mode="infer")
    assert adapter.num_params(model) == spec.params
    exported = adapter.export_weights(model)
    assert set(exported) == set(weights)
    for k, v in weights.items():
        assert exported[k].dtype == np.float32
        np.testing.assert_array_equal(exported[k], v, err_msg=k)


@pytest.mark.parametrize("name", TRAIN_FIXTURE_WORKLOADS)
def test_one_sgd_step_matches_reference_fixture(adapter, name: str) -> None:
    """One SGD step (lr 0.1, momentum 0.9) from canonical weights on a fixed batch must give
    the weights and BN statistics recorded by the PyTorch reference (tests/fixtures)."""
    if adapter.name == "null":
        pytest.skip("the null adapter does not train")
    fixture = np.load(FIXTURES / f"sgd_step_{name}.npz")
    _, weights, model = _build(adapter, name, mode="train", lr=float(fixture["lr"]),
                                  momentum=float(fixture["momentum"]))
    x, y = fixture["x"], fixture["y"]
    loss = adapter.train_step(model, x, y)
    assert loss == pytest.approx(float(fixture["loss"]), rel=1e-4)
    after = adapter.export_weights(model)
    worst = max(max_rel_error(after[k], fixture[f"w:{k}"]) for k in weights)
    assert worst <= FP32_TOL, f"{name}: updated weights differ by {worst:.2e}"
    moved = max(float(np.max(np.abs(after[k] - weights[k]))) for k in weights)
    assert moved > 0, "the step did not change any weight"


def test_mixed_precision_forward_is_close(adapter) -> None:
    info = get_info(adapter.name)
    if "bf16" not in info.precisions:
        pytest.skip(f"{adapter.name} declares no bf16")
    spec, weights, model = _build(adapter, "resnet20", mode="infer", precision="bf16")
    x, _ = synthetic_batch(spec, 4, seed=2)
    err = max_rel_error(adapter.predict(model, x), forward(spec, weights, x))
    assert err < 0.1, f"bf16 logits off by {err:.3f} relative"


def test_time_steps_runs_and_returns_seconds(adapter) -> None:
    for mode in ("train", "infer"):
        if mode == "train" and adapter.name == "null":
            continue
        spec, _, model = _build(adapter, "lenet5", mode=mode)
        x, y = synthetic_batch(spec, 8)
        time_steps = adapter.prepare(model, x, y)
        elapsed = time_steps(2)
        assert isinstance(elapsed, float) and elapsed > 0


def test_build_facts_name_the_build(adapter) -> None:
    facts = adapter.build_facts()
    assert facts.get("version") == adapter.framework_version()
    if adapter.name == "pytorch":
        assert facts["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256",
                                           "NO AVX")
        assert facts["onednn"] and facts["onednn"].startswith("v")


def test_unsupported_combinations_say_why(adapter) -> None:
    if adapter.name != "pytorch":
        pytest.skip("pytorch-specific combination")
    with pytest.raises(Unsupported, match="CUDA precision"):
        _build(adapter, "lenet5", precision="fp16")


def test_compiled_execution_matches_oracle(adapter) -> None:
    info = get_info(adapter.name)
    compiled = [m for m in info.exec_modes if m not in ("eager",)]
    if not compiled or adapter.name == "null":
        pytest.skip(f"{adapter.name} has no compiled mode")
    spec, weights, model = _build(adapter, "lenet5", mode="infer", exec_mode=compiled[0])
    x, _ = synthetic_batch(spec, 2, seed=1)
    assert max_rel_error(adapter.predict(model, x), forward(spec, weights, x)) <= FP32_TOL


@pytest.mark.gpu
def test_gpu_forward_matches_oracle(adapter) -> None:
    """Runs wherever a GPU is visible to this framework; skipped with the reason elsewhere."""
    if adapter.name == "null":
        pytest.skip("the null adapter has no GPU path")
    spec = get_workload("resnet20")
    weights = init_weights(spec)
    try:
        model = adapter.build(spec, weights, BuildOptions(device="gpu:0", mode="infer"))
    except Unsupported as exc:
        pytest.skip(f"no usable GPU: {exc}")
    x, _ = synthetic_batch(spec, 2, seed=1)
    assert max_rel_error(adapter.predict(model, x), forward(spec, weights, x)) <= FP32_TOL

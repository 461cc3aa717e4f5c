"""MXNet-only checks: the places where Gluon's conventions differ from the spec's and the
adapter corrects them (unbiased running variance, max-pool padding, LRN), checked free of
fp32 rounding with the adapter's float64 option, and the combinations it must refuse."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.base import BuildOptions, Unsupported
from tests.conformance.fixture_step import sgd_step
from workloads import GraphBuilder, WorkloadSpec, get_workload
from workloads.reference import forward, init_weights, max_rel_error, synthetic_batch

pytestmark = pytest.mark.conformance



@pytest.fixture(scope="module")
def mx_adapter(framework: str, request: pytest.FixtureRequest):
    if framework != "mxnet":
        pytest.skip("MXNet-specific tests (--framework mxnet)")
    return request.getfixturevalue("adapter")


def _spec(g: GraphBuilder, input_shape: tuple[int, int, int], classes: int) -> WorkloadSpec:
    return WorkloadSpec("t", "test graph", input_shape, classes, tuple(g.layers),
                        default_batch=4, published_params=0, published_macs=None)


@pytest.mark.parametrize("name", ["lenet5", "cifar10_tutorial", "resnet20"])
@pytest.mark.parametrize("exec_mode", ["eager", "hybrid"])
def test_float64_step_matches_fixture_exactly(mx_adapter, name: str, exec_mode: str) -> None:
    """In float64 the translation reproduces the PyTorch step to rounding (~1e-6): loss
    reduction, SGD momentum, batch-norm momentum and the unbiased running variance."""
    loss, ref_loss, worst = sgd_step(mx_adapter, name, exec_mode=exec_mode, dtype="float64")
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert worst <= 1e-5


def test_running_var_is_unbiased(mx_adapter) -> None:
    """MXNet updates running_var with the biased batch variance; the spec wants PyTorch's
    n/(n-1), after convs (n = N*H*W) and after denses (n = N)."""
    g = GraphBuilder()
    g.conv(4, 3, padding=1, name="conv")
    g.bn(momentum=0.3, name="bn2d")
    g.flatten()
    g.dense(5, name="fc")
    g.bn(momentum=0.1, name="bn1d")
    g.dense(3, name="out")
    spec = _spec(g, (2, 4, 4), 3)
    weights = init_weights(spec)
    x, y = synthetic_batch(spec, 6)
    model = mx_adapter.build(spec, weights, BuildOptions(mode="train", lr=0.0, momentum=0.0,
                                                         dtype="float64"))
    for _ in range(2):  # the second step starts from corrected statistics
        mx_adapter.train_step(model, x, y)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    conv_w = {k: v for k, v in weights.items() if k.startswith("conv/")}
    conv = forward(_spec(_prefix(g, "conv"), (2, 4, 4), 4 * 4 * 4), conv_w, x)  # (N, C*H*W)
    a = conv.reshape(6, 4, 16).transpose(1, 0, 2).reshape(4, -1)
    want_rv, want_rm = w["bn2d/running_var"], w["bn2d/running_mean"]
    for _ in range(2):
        want_rv = 0.7 * want_rv + 0.3 * a.var(axis=1, ddof=1)
        want_rm = 0.7 * want_rm + 0.3 * a.mean(axis=1)
    got = mx_adapter.export_weights(model)
    np.testing.assert_allclose(got["bn2d/running_var"], want_rv, rtol=1e-6)
    np.testing.assert_allclose(got["bn2d/running_mean"], want_rm, rtol=1e-6, atol=1e-7)
    # after the dense: 6 values per channel, so the correction is 6/5, far from rounding
    assert not np.allclose(got["bn1d/running_var"], weights["bn1d/running_var"])


def _prefix(g: GraphBuilder, last: str) -> GraphBuilder:
    """The layers of g up to `last`, then a flatten (so the oracle returns them flat)."""
    h = GraphBuilder()
    for layer in g.layers:
        h.layers.append(layer)
        if layer.name == last:
            break
    h.last = last
    h.flatten()
    return h


@pytest.mark.parametrize("padding", [(0, 1, 0, 1), (1, 1, 1, 1), (1, 0, 0, 1), (0, 2, 1, 2),
                                     (2, 2, 0, 0)])
@pytest.mark.parametrize("exec_mode", ["eager", "hybrid"])
def test_max_pool_padding_is_minus_infinity(mx_adapter, padding, exec_mode: str) -> None:
    """Each max-pool path (padding in the op, the "full" convention, an explicit -inf pad)
    against the oracle, on inputs below zero where zero padding would win."""
    g = GraphBuilder()
    g.maxpool(3, 2, padding=padding, name="pool")
    g.flatten()
    g.dense(3, name="fc")
    spec = _spec(g, (2, 7, 8), 3)
    weights = init_weights(spec)
    x, y = synthetic_batch(spec, 2)
    x = x - 5.0
    model = mx_adapter.build(spec, weights, BuildOptions(exec_mode=exec_mode, mode="train"))
    assert max_rel_error(mx_adapter.predict(model, x), forward(spec, weights, x)) <= 1e-5
    assert np.isfinite(mx_adapter.train_step(model, x, y))
    assert all(np.isfinite(v).all() for v in mx_adapter.export_weights(model).values())


def test_asymmetric_conv_padding(mx_adapter) -> None:
    g = GraphBuilder()
    g.conv(3, 3, stride=2, padding=(0, 1, 1, 0), name="conv")
    g.flatten()
    g.dense(2, name="fc")
    spec = _spec(g, (2, 6, 6), 2)
    weights = init_weights(spec)
    x, _ = synthetic_batch(spec, 2)
    model = mx_adapter.build(spec, weights, BuildOptions())
    assert max_rel_error(mx_adapter.predict(model, x), forward(spec, weights, x)) <= 1e-5


def test_eager_and_hybrid_train_alike(mx_adapter) -> None:
    spec = get_workload("resnet20")
    weights = init_weights(spec)
    x, y = synthetic_batch(spec, 4)
    after = {}
    for mode in ("eager", "hybrid"):
        model = mx_adapter.build(spec, weights, BuildOptions(mode="train", exec_mode=mode,
                                                             dtype="float64"))
        for _ in range(2):
            mx_adapter.train_step(model, x, y)
        after[mode] = mx_adapter.export_weights(model)
    assert max(max_rel_error(after["hybrid"][k], after["eager"][k]) for k in weights) <= 1e-6


@pytest.mark.parametrize(("opts", "reason"), [
    (BuildOptions(precision="fp16"), "GPU-only precision"),
    (BuildOptions(precision="bf16"), "no precision 'bf16'"),
    (BuildOptions(exec_mode="compiled"), "no execution mode"),
    (BuildOptions(precision="fp16", dtype="float64"), "GPU-only precision"),
])
def test_unsupported_combinations_say_why(mx_adapter, opts: BuildOptions, reason: str) -> None:
    spec = get_workload("lenet5")
    with pytest.raises(Unsupported, match=reason):
        mx_adapter.build(spec, init_weights(spec), opts)


def test_gpu_without_cuda_build_is_unsupported(mx_adapter) -> None:
    import mxnet as mx

    if mx.runtime.Features().is_enabled("CUDA"):
        pytest.skip("this MXNet build has CUDA")
    spec = get_workload("lenet5")
    with pytest.raises(Unsupported, match="no CUDA"):
        mx_adapter.build(spec, init_weights(spec), BuildOptions(device="gpu:0"))


def test_build_facts_carry_the_feature_list(mx_adapter) -> None:
    facts = mx_adapter.build_facts()
    features = facts["features"]
    for name in ("CPU_AVX", "CPU_AVX2", "MKLDNN", "CUDA", "CUDNN", "OPENMP", "BLAS_OPEN"):
        assert isinstance(features[name], bool)
    assert facts["onednn"]["enabled"] in (True, False)
    assert facts["cuda"] == features["CUDA"]
    # what its own code was compiled for, apart from the oneDNN it bundles
    assert facts["compiled_for"] == sorted(k.removeprefix("CPU_") for k, on in features.items()
                                           if on and (k.startswith("CPU_") or k == "F16C"))
    assert "SSE2" in facts["compiled_for"]


def test_oom_is_recognised(mx_adapter) -> None:
    import mxnet as mx

    assert mx_adapter.is_oom(MemoryError())
    assert mx_adapter.is_oom(mx.base.MXNetError("Failed to allocate CPU Memory"))
    assert mx_adapter.is_oom(mx.base.MXNetError("cudaMalloc retry failed: out of memory"))
    assert not mx_adapter.is_oom(mx.base.MXNetError("Check failed: shape mismatch"))


def test_gemm_probe_runs(mx_adapter) -> None:
    time_steps = mx_adapter.prepare_gemm(64, BuildOptions())
    assert time_steps(2) > 0

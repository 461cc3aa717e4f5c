"""Every adapter must reproduce the NumPy oracle from the same canonical weights, count the
same parameters, round-trip weights, train, and reject what it cannot run with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from adapters import get_info
from adapters.base import BuildOptions, Unsupported
from tests.conformance.fixture_step import FP32_STEP_TOL, FP32_TOL, sgd_step
from tests.conformance.oracle import canonical, oracle_logits
from workloads import get_workload, list_workloads
from workloads.reference import forward, init_weights, max_rel_error, synthetic_batch

pytestmark = pytest.mark.conformance

TRAIN_FIXTURE_WORKLOADS = ("lenet5", "cifar10_tutorial", "resnet20")


def _build(adapter, name: str, **kw):
    spec, weights = canonical(name)  # init_weights(spec, seed=0), drawn once per process
    opts = BuildOptions(**kw)
    return spec, weights, adapter.build(spec, weights, opts)


@pytest.mark.parametrize("name", list_workloads())
def test_matches_numpy_oracle_fp32(adapter, name: str) -> None:
    _, _, model = _build(adapter, name, mode="infer")
    x, ref = oracle_logits(name)  # forward(spec, weights, synthetic_batch(spec, 2, seed=1))
    got = adapter.predict(model, x)
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
    the weights and BN statistics of the PyTorch reference (tests/fixtures) within 1e-4,
    computed in float64 so that only the translation, not rounding, can differ."""
    if adapter.name == "null":
        pytest.skip("the null adapter does not train")
    loss, ref_loss, worst = sgd_step(adapter, name, dtype="float64")
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    assert worst <= FP32_TOL, f"{name}: updated weights differ by {worst:.2e}"


@pytest.mark.parametrize("name", TRAIN_FIXTURE_WORKLOADS)
def test_one_fp32_sgd_step_is_close_to_reference(adapter, name: str) -> None:
    """The same step in the benchmarked fp32 path."""
    if adapter.name == "null":
        pytest.skip("the null adapter does not train")
    loss, ref_loss, worst = sgd_step(adapter, name, dtype="float32")
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    assert worst <= FP32_STEP_TOL[name], f"{name}: fp32 updated weights differ by {worst:.2e}"


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
    """Every adapter reports its build and threads under the same keys (and more of its own)."""
    facts = adapter.build_facts()
    assert facts.get("version") == adapter.framework_version()
    threads = adapter.setup(None)  # None pins nothing: it only reports what is in force
    assert set(threads) == {"intra_op", "inter_op"}
    assert all(isinstance(n, int) for n in threads.values()), threads
    if adapter.name == "null":
        return
    onednn = facts["onednn"]
    assert set(onednn) == {"enabled", "version"} and isinstance(onednn["enabled"], bool)
    assert onednn["version"] is None or onednn["version"].startswith("v")
    assert isinstance(facts["gpus"], int)
    if adapter.name == "pytorch":
        assert facts["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256",
                                           "NO AVX")
        assert onednn["version"]


def _spec_with_unknown_op(monkeypatch: pytest.MonkeyPatch):
    """LeNet-5 with a "gelu" after conv1: an op the spec is taught here and no adapter has."""
    import dataclasses

    import workloads.spec as ws

    shape_of = ws._infer_shape
    monkeypatch.setattr(ws, "OPS", (*ws.OPS, "gelu"))
    monkeypatch.setattr(ws, "_infer_shape",
                        lambda layer, ins: ins[0] if layer.op == "gelu" else shape_of(layer, ins))
    base = get_workload("lenet5")
    first, rest = base.layers[0], base.layers[1:]
    rest = tuple(dataclasses.replace(
        layer, inputs=tuple("gelu1" if s == first.name else s for s in layer.inputs))
        for layer in rest)
    gelu = ws.Layer("gelu1", "gelu", (first.name,))
    return dataclasses.replace(base, name="lenet5_gelu", layers=(first, gelu, *rest))


REFUSALS = ("fp16-on-cpu", "float64-with-bf16", "float64-on-gpu", "unknown-exec-mode",
            "unknown-device", "absent-gpu", "unknown-op")


@pytest.mark.parametrize("case", REFUSALS)
def test_unsupported_combinations_say_why(adapter, case: str, monkeypatch) -> None:
    """What an adapter cannot run it refuses with Unsupported and a reason, before building."""
    if adapter.name == "null":
        pytest.skip("the null adapter accepts every combination it declares (it runs nothing)")
    has = get_info(adapter.name).precisions
    spec = get_workload("lenet5")
    if case == "fp16-on-cpu":
        opts = BuildOptions(precision="fp16")
        reason = "fp16 is a GPU-only precision" if "fp16" in has else "no precision 'fp16'"
    elif case == "float64-with-bf16":
        opts = BuildOptions(precision="bf16", dtype="float64")
        reason = "float64 is the conformance check of fp32" if "bf16" in has else (
            "no precision 'bf16'")
    elif case == "float64-on-gpu":
        opts = BuildOptions(device="gpu:0", dtype="float64")
        reason = "float64 is the conformance check of fp32 cells on the CPU"
    elif case == "unknown-exec-mode":
        opts = BuildOptions(exec_mode="interpreted")
        reason = "no execution mode 'interpreted'"
    elif case == "unknown-device":
        opts = BuildOptions(device="tpu:0")
        reason = "no device 'tpu:0'"
    elif case == "absent-gpu":
        # The framework says how many GPUs it sees; ask for one past the last (gpu:0 here).
        n = adapter.build_facts()["gpus"]
        opts = BuildOptions(device=f"gpu:{n}")
        reason = "no (GPU|CUDA)|CUDA is not available" if n == 0 else f"no (GPU|CUDA device) {n}"
    else:
        spec, opts, reason = _spec_with_unknown_op(monkeypatch), BuildOptions(), "has no op 'gelu'"
    with pytest.raises(Unsupported, match=reason):
        adapter.build(spec, init_weights(spec), opts)


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


def _cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return ru.ru_utime + ru.ru_stime


def _work_after_return(time_steps, steps: int) -> tuple[float, float, float]:
    """(wall time time_steps reported, CPU seconds burnt inside it, CPU seconds burnt in the
    second after it returned). Work still queued when it returns shows up in the last."""
    import time

    time.sleep(0.3)  # let thread pools of earlier calls go idle
    c0 = _cpu_seconds()
    wall = time_steps(steps)
    c1 = _cpu_seconds()
    time.sleep(1.0)
    c2 = _cpu_seconds()
    return wall, c1 - c0, c2 - c1


@pytest.mark.parametrize("sync", [True, False], ids=["synced", "trap"])
def test_sync_trap_cpu(adapter, sync: bool) -> None:
    """The timed rounds include the device work: after time_steps returns, nothing it queued
    is still running. The planted trap (the same step without the sync) shows that this check
    catches a benchmark that times only the dispatch, on frameworks whose CPU dispatch is
    asynchronous."""
    if adapter.name == "null":
        pytest.skip("the null adapter queues no work")
    if not sync and not adapter.async_dispatch_on_cpu:
        pytest.skip(f"{adapter.name} runs CPU ops synchronously: there is no trap to plant "
                    "on the CPU (its CUDA path syncs explicitly; see test_sync_trap_gpu)")
    # The adapter's default execution mode is what a sweep times (and where dispatch is
    # asynchronous: un-jitted JAX, for one, mostly waits op by op).
    default_mode = get_info(adapter.name).default_exec_mode
    spec, _, model = _build(adapter, "cifar10_tutorial", mode="train", exec_mode=default_mode)
    x, y = synthetic_batch(spec, 64)
    time_steps = adapter.prepare(model, x, y, sync=sync)
    time_steps(2)  # compile / warm up
    wall, during, after = _work_after_return(time_steps, 4)
    total = during + after
    assert total > 0.05, "the steps burnt almost no CPU: the probe cannot judge"
    if sync:
        assert after < 0.25 * total, (
            f"{after:.2f} of {total:.2f} CPU s ran after time_steps returned: the timed round "
            "does not include all the device work")
    else:
        assert after > 0.5 * total, (
            f"trap not visible: only {after:.2f} of {total:.2f} CPU s after an unsynced return "
            f"(wall {wall:.3f} s)")


@pytest.mark.gpu
def test_sync_trap_gpu(adapter) -> None:
    """On a GPU, a round without the sync returns long before one with it."""
    if adapter.name == "null":
        pytest.skip("the null adapter has no GPU path")
    spec = get_workload("resnet20")
    try:
        model = adapter.build(spec, init_weights(spec), BuildOptions(device="gpu:0", mode="train"))
    except Unsupported as exc:
        pytest.skip(f"no usable GPU: {exc}")
    x, y = synthetic_batch(spec, 256)
    synced = adapter.prepare(model, x, y, sync=True)
    trap = adapter.prepare(model, x, y, sync=False)
    synced(3)
    t_trap = trap(20)
    t_synced = synced(20)  # also drains whatever the trap left queued
    assert t_synced > t_trap, "the synced round should include the queued device work"


# -- fp32 means fp32 -----------------------------------------------------------------------
# A convolution (K = 16*3*3 = 144 terms a sum) then a dense layer (K = 3200): in fp32 the
# logits land within ~1e-6 of float64 (measured 2026-12 on the AVX-512 EPYC, every execution
# mode: PyTorch 5.4e-7, TensorFlow 4.3e-7 (xla 4.8e-7), JAX 5.5e-7, MXNet 3.1e-7); with
# inputs and weights rounded to bf16 or tf32, as a reduced fpmath mode computes them, more
# than 1e-4: bf16 2.9e-3, tf32 3.6e-4 (test_reduced_precision_would_show_in_the_precision_data).
# Planted once: with ONEDNN_DEFAULT_FPMATH_MODE=BF16 (PyTorch, this AVX512_BF16 CPU) the
# error stays fp32-sized, because oneDNN's fpmath mode only permits down-conversion and,
# without AMX, keeps its fp32 kernels (its verbose log shows attr-fpmath:bf16 on
# jit:avx512_core); the test fails on math_mode ("reduced: ONEDNN_DEFAULT_FPMATH_MODE=BF16"),
# as it does under torch.set_float32_matmul_precision("medium") (error 7.4e-7, math_mode
# "reduced: ..., matmul_precision=medium, mkldnn.matmul.fp32_precision=bf16"). On the AMX
# Xeon the same switches select bf16 AMX kernels and the error check fails too (reasoned
# from oneDNN's fpmath semantics, not run: we have no AMX machine).
PRECISION_TOL = 1e-5


def _precision_spec():
    from workloads import GraphBuilder, WorkloadSpec

    g = GraphBuilder()
    g.conv(32, 3, name="conv")
    g.flatten()
    g.dense(10, name="fc")
    return WorkloadSpec("fp32_probe", "fp32_probe", (16, 12, 12), 10, tuple(g.layers),
                        default_batch=4, published_params=0, published_macs=None)


def _rounded(a: np.ndarray, keep_bits: int) -> np.ndarray:
    """float32 values rounded to nearest with ``keep_bits`` mantissa bits (bf16 7, tf32 10)."""
    drop = 23 - keep_bits
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + (1 << (drop - 1)) - 1 + ((b >> drop) & 1)) >> drop) << drop
    return b.astype(np.uint32).view(np.float32)


def test_reduced_precision_would_show_in_the_precision_data() -> None:
    spec = _precision_spec()
    weights = init_weights(spec, seed=5)
    x, _ = synthetic_batch(spec, 4, seed=5)
    ref = forward(spec, weights, x)
    assert max_rel_error(forward(spec, weights, x, dtype=np.float32), ref) < PRECISION_TOL / 10
    for bits in (7, 10):  # bf16, tf32
        low = forward(spec, {k: _rounded(v, bits) for k, v in weights.items()},
                      _rounded(x, bits))
        assert max_rel_error(low, ref) > 10 * PRECISION_TOL, bits


def test_fp32_cell_matches_float64_oracle_in_fp32_math(adapter) -> None:
    """An fp32 cell's convolution and dense layer compute in fp32 (against float64), and the
    framework's own settings say so (math_mode 'fp32'), in every execution mode. Named for
    the oracle so that tox's second passes (ISA-capped, oneDNN off) run it too."""
    if adapter.name == "null":
        pytest.skip("the null adapter computes nothing")
    spec = _precision_spec()
    weights = init_weights(spec, seed=5)
    x, _ = synthetic_batch(spec, 4, seed=5)
    ref = forward(spec, weights, x)
    for exec_mode in get_info(adapter.name).exec_modes:
        model = adapter.build(spec, weights, BuildOptions(mode="infer", exec_mode=exec_mode))
        err = max_rel_error(adapter.predict(model, x), ref)
        math = adapter.math_facts()
        assert math["math_mode"] == "fp32", (exec_mode, math)
        assert err < PRECISION_TOL, f"{exec_mode}: fp32 logits {err:.2e} off float64 ({math})"
    assert adapter.build_facts()["math_mode"] == "fp32"

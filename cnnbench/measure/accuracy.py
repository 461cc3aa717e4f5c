"""The accuracy gate: a configuration is timed only after it computes the workload's function.

Run inside the worker on **the very model and program that are then timed**: after the
adapter has built the cell's model from the canonical weights (seed 0) and prepared its timed
step, and before the first timed step (``worker._prepare`` calls ``check_model`` when the cell
is to be checked). At the cell's own batch size, so a compiled mode is checked in the program
it compiled for timing (a batch-2 twin would be another compile, another program, and for
torch.compile a second shape that turns the timed graph's batch dimension dynamic):

* inference: the logits of the check batch (seed 1: two images, repeated to fill the cell's
  batch, since inference treats images one by one) against the NumPy oracle's float64 logits;
* training: one SGD step on a batch of the cell's size (seed 1; lr 0.1, momentum 0.9: a step
  large enough that a wrong gradient shows against the weights' scale; the timed model is
  built with them when it is checked) against the same adapter's float64 step on the same
  batch in its default execution mode, with no adapter options: the step the conformance
  suite proves equal to the PyTorch reference fixture. The error is the worst over the
  updated weights and statistics, and the loss. The reference is computed once per process
  for each workload and batch (the candidates of a shared worker reuse it).

The step changes the timed model's weights, which timing does not care about.

Errors are ``workloads.reference.max_rel_error``: max|got - ref| / max|ref| per tensor.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import numpy as np

# Tolerances, per precision. Measured 2026-12 on the 2-core AMD EPYC with AVX512_BF16 (no
# AMX), each framework in its default execution mode (PyTorch eager, TensorFlow graph, JAX jit,
# MXNet hybrid), with this module's own check (batch 2, seed 1):
#
#   max relative error      PyTorch   TensorFlow   JAX       MXNet
#   ResNet-20 logits fp32   1.8e-7    2.8e-7       1.9e-7    2.0e-7
#   ResNet-50 logits fp32   5.5e-7    7.1e-7       1.1e-6    3.7e-7
#   ResNet-20 step   fp32   1.6e-7    2.7e-7       2.0e-7    6.2e-7
#   ResNet-20 logits bf16   3.4e-3    3.4e-3       3.9e-3    (no CPU bf16)
#   ResNet-50 logits bf16   5.3e-3    5.2e-3       8.8e-3
#   ResNet-20 step   bf16   3.3e-2    3.4e-2       4.0e-2
#
# The gate now runs at the cell's own batch, on the timed model. Measured the same way in two
# `cnnbench tune` runs (every execution mode searched): ResNet-50 logits at batch 32 and 64
# are as above (inference treats images one by one; worst fp32 1.1e-6, bf16 8.8e-3); the
# ResNet-20 step at batch 128: fp32 PyTorch 9.2e-5, TensorFlow 1.4e-4, JAX 2.8e-5, MXNet
# 7.0e-5 (more ReLU inputs near zero in a larger batch); bf16 PyTorch 5.4e-3, TensorFlow
# 1.1e-2, JAX 3.9e-2. The tolerances below hold them with the same margins.
#
# fp32 forward keeps the conformance suite's 1e-4. bf16 keeps 8 significant bits (2^-8 =
# 3.9e-3 per rounding): the forward tolerance 2e-2 is 2.3x the worst logits measured, the
# step's 1e-1 2.5x the worst step (the batch statistics of bf16 activations dominate it).
# Both stay far below what a wrong function gives (a lost or doubled weight scale moves the
# logits and the updated weights by O(1) relative). The fp32 step keeps the conformance
# suite's 5e-3 for ResNet-20: its batches have pre-ReLU values within fp32 rounding of zero,
# and which side an execution mode rounds one to moves ~1% of the weights by up to ~1e-3 of
# their scale (tests/conformance/fixture_step.py). fp16 keeps 11 bits and tf32 rounds only
# GEMM and convolution inputs to 11 bits; no GPU was lent to measure them, so they take
# bf16's bounds, looser than both need.
FORWARD_TOL = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 2e-2, "tf32": 2e-2}
STEP_TOL = {"fp32": 5e-3, "bf16": 1e-1, "fp16": 1e-1, "tf32": 1e-1}
CHECK_BATCH = 2
CHECK_LR = 0.1  # the checked model's optimizer, and the reference's
CHECK_MOMENTUM = 0.9


def with_check_sgd(opts: Any) -> Any:
    """``opts`` (BuildOptions) with the gate's SGD settings, which the reference uses."""
    return dataclasses.replace(opts, lr=CHECK_LR, momentum=CHECK_MOMENTUM)


class Inaccurate(Exception):
    """The configuration computes another function: the row's status ``inaccurate``."""


def _fields(cell: Any) -> dict[str, Any]:
    """The cell's fields, from a cell dict or a typed Cell."""
    if isinstance(cell, dict):
        return cell
    return {k: getattr(cell, k) for k in ("framework", "device", "precision", "exec_mode",
                                          "mode", "workload", "options")}


def _spec_and_batch(cell: dict[str, Any], batch: int) -> tuple[Any, np.ndarray, np.ndarray]:
    from workloads import get_workload
    from workloads.reference import synthetic_batch

    spec = get_workload(cell["workload"])
    if cell["mode"] == "train":
        x, y = synthetic_batch(spec, batch, seed=1)
        return spec, x, y
    x, y = synthetic_batch(spec, CHECK_BATCH, seed=1)
    return spec, _tile(x, batch), _tile(y, batch)


def _tile(a: np.ndarray, batch: int) -> np.ndarray:
    """The check batch's rows repeated to fill ``batch`` rows."""
    return np.concatenate([a] * -(-batch // len(a)))[:batch]


@functools.lru_cache(maxsize=4)
def _oracle_logits(workload: str) -> np.ndarray:
    from workloads import get_workload
    from workloads.reference import forward, init_weights, synthetic_batch

    spec = get_workload(workload)
    x, _ = synthetic_batch(spec, CHECK_BATCH, seed=1)
    return forward(spec, init_weights(spec, seed=0), x)


def forward_error(adapter: Any, cell: dict[str, Any], model: Any, batch: int) -> float:
    from workloads.reference import max_rel_error

    _spec, x, _ = _spec_and_batch(cell, batch)
    got = adapter.predict(model, np.ascontiguousarray(x))
    return max_rel_error(got, _tile(_oracle_logits(cell["workload"]), batch))


_STEP_REFS: dict[tuple[str, str, int], tuple[float, dict[str, np.ndarray]]] = {}


def _reference_step(adapter: Any, cell: dict[str, Any], batch: int
                    ) -> tuple[float, dict[str, np.ndarray]]:
    """The adapter's float64 step in its default execution mode: (loss, updated weights)."""
    from adapters import get_info
    from adapters.base import BuildOptions
    from workloads.reference import init_weights

    key = (cell["framework"], cell["workload"], batch)
    if key not in _STEP_REFS:
        spec, x, y = _spec_and_batch(cell, batch)
        opts = with_check_sgd(BuildOptions(
            device="cpu", precision="fp32", mode="train", options={},
            exec_mode=get_info(cell["framework"]).default_exec_mode, dtype="float64"))
        ref_model = adapter.build(spec, init_weights(spec, seed=0), opts)
        loss = adapter.train_step(ref_model, np.ascontiguousarray(x), y)
        _STEP_REFS[key] = (loss, adapter.export_weights(ref_model))
        del ref_model
        adapter.between_cells()  # the reference's compiled program is not the cell's
    return _STEP_REFS[key]


def step_error(adapter: Any, cell: dict[str, Any], model: Any, batch: int) -> float:
    from workloads.reference import max_rel_error

    ref_loss, ref = _reference_step(adapter, cell, batch)
    _spec, x, y = _spec_and_batch(cell, batch)
    loss = adapter.train_step(model, np.ascontiguousarray(x), y)
    got = adapter.export_weights(model)
    worst = max(max_rel_error(got[k], ref[k]) for k in ref)
    return max(worst, abs(loss - ref_loss) / max(abs(ref_loss), 1e-12))


def check_model(adapter: Any, cell: Any, model: Any, batch: int) -> dict[str, Any]:
    """The gate's record (the row's ``accuracy``): what was compared, at which batch, the
    error, the tolerance, whether it passed and the seconds it took (a compiled mode's
    compile included: the check is the timed program's first call)."""
    cell = _fields(cell)
    t0 = time.perf_counter()
    if cell["mode"] == "train":
        what, err = "sgd_step", step_error(adapter, cell, model, batch)
        tol = STEP_TOL[cell["precision"]]
    else:
        what, err = "forward", forward_error(adapter, cell, model, batch)
        tol = FORWARD_TOL[cell["precision"]]
    return {"check": what, "batch": batch, "error": err, "tolerance": tol,
            "ok": bool(err <= tol), "check_s": time.perf_counter() - t0}


def gate(adapter: Any, cell: Any, model: Any, batch: int, rec: dict[str, Any]) -> None:
    """Check the cell's timed model and keep the record in ``rec["accuracy"]``; Inaccurate
    if it failed."""
    acc = rec["accuracy"] = check_model(adapter, cell, model, batch)
    if not acc["ok"]:
        raise Inaccurate(f"{acc['check']} error {acc['error']:.3g} exceeds the "
                         f"{_fields(cell)['precision']} tolerance {acc['tolerance']:g}")

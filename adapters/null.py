"""The null adapter: no framework at all.

It lets the runner, worker, results and report be tested without any framework installed,
and it measures the harness's own per-round overhead (MLPerf's `backend_null` idea).
Adapter options (``--adapter-opt KEY=VALUE``):

* ``step_s``: busy-wait this many seconds per step (default 0: an empty step);
* ``run_jitter``: each process draws (unseeded) a factor uniform in [1 - j, 1 + j] for its
  ``step_s``: planted noise between fresh processes, which only more runs can average out;
* ``tail_p``, ``tail_lo_s``, ``tail_hi_s``: plant a latency distribution: a step is, with
  probability ``tail_p`` (a seeded draw, the same in every run), a busy-wait of a duration
  uniform in [tail_lo_s, tail_hi_s] instead of ``step_s``: its quantiles are known exactly;
* ``hold_mb``, ``hold_mb_per_image``: the build allocates (and touches) this many MB (the
  second times the batch), held by the model: a known amount of memory for the peak-memory
  fields and the largest-batch search to find;
* ``onednn_isa``: emulate a framework whose oneDNN runs kernels of this ISA (``avx2``...): in
  the kernel probe it prints oneDNN-style verbose lines, capped by ``DNNL_MAX_CPU_ISA`` and,
  like MXNet 1.9, deaf to ``ONEDNN_MAX_CPU_ISA`` (the tests plant an ignored cap with it);
* ``weight_scale``: multiply every weight by this factor at build: a planted knob value that
  quietly computes another function (the tuner's accuracy gate must refuse it);
* ``fault``: ``kill`` (SIGKILL itself), ``hang`` (sleep past any timeout), ``raise``,
  ``oom`` (allocate until MemoryError), ``unsupported``; ``fault_at`` = ``build`` (default)
  or ``step``.

A failed framework import is injected through the environment, as a broken install would
be: ``CNNBENCH_NULL_FAULT=import`` (for example from a variant) makes importing this module
raise ModuleNotFoundError.
"""

from __future__ import annotations

import itertools
import os
import platform
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from workloads import WorkloadSpec
from workloads.reference import check_weights, forward

from .base import Adapter, BuildOptions, Threads, TimeSteps, Unsupported, Weights

FAULTS = ("kill", "hang", "raise", "oom", "unsupported")

if os.environ.get("CNNBENCH_NULL_FAULT") == "import":
    raise ModuleNotFoundError("No module named 'nullframework' (injected by CNNBENCH_NULL_FAULT)")


def _fault(kind: str) -> None:
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "raise":
        raise RuntimeError("injected fault")
    elif kind == "oom":
        hoard = []
        while True:  # ends in MemoryError under the runner's address-space limit
            hoard.append(np.ones(256 * 1024 * 1024 // 8))
    elif kind == "unsupported":
        raise Unsupported("injected: this combination is declared unsupported")
    else:
        raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")


def _planted(o: dict[str, Any], step_s: float) -> Iterator[float]:
    """Each step's busy-wait: ``step_s``, or with the ``tail_*`` options a seeded mixture."""
    p = float(o.get("tail_p", 0.0))
    if not p:
        return itertools.repeat(step_s)
    rng = np.random.default_rng(0)
    lo, hi = float(o["tail_lo_s"]), float(o["tail_hi_s"])
    return (float(rng.uniform(lo, hi)) if rng.random() < p else step_s
            for _ in itertools.count())


class _NullModel:
    def __init__(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> None:
        self.spec, self.weights, self.opts = spec, dict(weights), opts
        self.held: np.ndarray | None = None
        self.held_batch: np.ndarray | None = None


class NullAdapter(Adapter):
    name = "null"

    def framework_version(self) -> str:
        return "0"

    def build_facts(self) -> dict[str, Any]:
        return {"framework": "null", "version": "0", "python": platform.python_version(),
                "numpy": np.__version__, **self.math_facts()}

    def setup_devices(self, device: str) -> None:
        pass  # it runs nothing, so any device set will do: the harness's data-parallel path

    def kernel_facts(self, cell: dict[str, Any]) -> dict[str, Any]:
        isa = (cell.get("options") or {}).get("onednn_isa")
        if isa and os.environ.get("DNNL_VERBOSE") == "1":
            from cnnbench.core.isa import ISA_RANK

            cap = os.environ.get("DNNL_MAX_CPU_ISA", "").lower()
            if cap in ISA_RANK and ISA_RANK[cap] < ISA_RANK.get(str(isa), 0):
                isa = cap
            print("dnnl_verbose,info,oneDNN v0.0.0 (null adapter)")
            for kind, impl in (("convolution", f"jit:{isa}"), ("reorder", "jit:uni"),
                               ("inner_product", "gemm:jit")):
                print(f"dnnl_verbose,exec,cpu,{kind},{impl},forward_inference,,,,0.01")
        return {}

    def setup(self, threads: int | None) -> Threads:
        # Its steps are a Python loop on one thread (the GEMM probe's BLAS is numpy's own).
        return {"intra_op": 1, "inter_op": 1}

    def build(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> _NullModel:
        check_weights(spec, weights)
        o = opts.options or {}
        if o.get("fault") and o.get("fault_at", "build") == "build":
            _fault(str(o["fault"]))
        scale = float(o.get("weight_scale", 1.0))  # a knob that breaks numerics (tests)
        if scale != 1.0:
            weights = {k: (v * scale).astype(v.dtype) for k, v in weights.items()}
        model = _NullModel(spec, weights, opts)
        if o.get("hold_mb"):
            model.held = np.ones(int(float(o["hold_mb"]) * 2**20) // 8)  # touched: resident
        return model

    def load_weights(self, model: _NullModel, weights: Weights) -> None:
        check_weights(model.spec, weights)
        model.weights = dict(weights)

    def export_weights(self, model: _NullModel) -> Weights:
        return dict(model.weights)

    def num_params(self, model: _NullModel) -> int:
        return model.spec.params

    def predict(self, model: _NullModel, x: np.ndarray) -> np.ndarray:
        return forward(model.spec, model.weights, x, dtype=np.float32)

    def train_step(self, model: _NullModel, x: np.ndarray, y: np.ndarray) -> float:
        raise Unsupported("the null adapter does not train")

    def prepare(self, model: _NullModel, x: np.ndarray, y: np.ndarray,
                sync: bool = True) -> TimeSteps:
        o = model.opts.options or {}
        step_s = float(o.get("step_s", 0.0))
        if o.get("run_jitter"):
            j = float(o["run_jitter"])
            step_s *= float(np.random.default_rng().uniform(1 - j, 1 + j))  # per process
        fault = o.get("fault") if o.get("fault_at") == "step" else None
        clock = time.perf_counter
        durations = _planted(o, step_s)
        if o.get("hold_mb_per_image"):  # the batch's share, as activations would be
            model.held_batch = np.ones(int(float(o["hold_mb_per_image"]) * len(x) * 2**20) // 8)

        def time_steps(n: int) -> float:
            if fault:
                _fault(str(fault))
            t0 = clock()
            for _ in range(n):
                wait = next(durations)
                if wait:
                    end = clock() + wait
                    while clock() < end:
                        pass
            return clock() - t0

        return time_steps


    def prepare_gemm(self, n: int, opts: BuildOptions) -> TimeSteps:
        # numpy's BLAS: a framework-free reference for the CPU's fp32 peak.
        if opts.device != "cpu" or opts.precision != "fp32":
            raise Unsupported("the null adapter probes only fp32 on the CPU (numpy BLAS)")
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), dtype=np.float32)
        clock = time.perf_counter

        def time_steps(k: int) -> float:
            t0 = clock()
            for _ in range(k):
                np.matmul(a, b, out=out)
            return clock() - t0

        return time_steps


ADAPTER = NullAdapter()

"""The knobs each adapter really has, and the values valid on a device: the tuner's search space.

Static data, like the table in ``adapters/__init__``: nothing here imports a framework, so the
core plans the search without starting one. A knob a framework lacks is absent, with the
reason in ``absent``, never faked. ``cnnbench.plan.space`` turns this into candidate cells;
the worker still re-checks every combination against the adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import get_info
from .base import GPU_ONLY_PRECISIONS

# CPU flags (as /proc/cpuinfo names them) with a bf16 instruction. Without one, bf16 on a
# CPU converts in software around fp32 kernels: slower than fp32 (PyTorch bf16 ResNet-50 was
# 7.3 img/s on plain AVX-512 against 18 with AVX512_BF16 and 30 with AMX on one Xeon), so
# the search does not offer it there.
BF16_FLAGS = ("avx512_bf16", "avx512bf16", "amx_bf16")


@dataclass(frozen=True)
class Knobs:
    """One adapter's search space on one device kind: the execution modes, precisions and
    adapter options (name -> values, the first is the default) it can be tuned over, and
    each knob it lacks with the reason."""

    exec_modes: tuple[str, ...]
    precisions: tuple[str, ...]
    options: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # Options that only mean something with one execution mode (torch.compile's mode).
    option_modes: dict[str, str] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)
    # Values the framework has that the search leaves out unless asked for ("exec_mode=eager"
    # until --exec-modes names it, "compile_mode=max-autotune" until --try-opt gives it), with
    # the reason: eager modes that a framework's own docs present as the slow way (never its
    # default), and a compile mode that does nothing more on this device.
    pruned: dict[str, str] = field(default_factory=dict)

    @property
    def searched_exec_modes(self) -> tuple[str, ...]:
        return tuple(m for m in self.exec_modes if f"exec_mode={m}" not in self.pruned)


_PRUNED_EAGER = {
    "tensorflow": "TensorFlow's guide: eager runs op by op from Python; tf.function (graph, "
                  "XLA) is the way to performance, and the default is graph",
    "jax": "JAX without jit dispatches every op on its own (JAX's docs: jit for speed); "
           "the default is jit",
    "mxnet": "Gluon's imperative mode runs op by op; hybridize() is the way to speed and "
             "the default is hybrid",
}

# Measured on our AVX-512 EPYC (ResNet-50 inference, batch 32, fp32, one run each, with
# Inductor's cache warm): torch.compile default 20.0 img/s [19.5, 20.1], max-autotune 20.4
# [19.7, 21.0]. On a CPU max-autotune only tunes Inductor's GEMM templates; a CNN's
# convolutions go to oneDNN either way, and a cold max-autotune compile costs minutes.
_MAX_AUTOTUNE_CPU = ("torch.compile's max-autotune tunes only GEMM templates on a CPU (the "
                     "convolutions go to oneDNN either way: ResNet-50 b32 measured 20.4 against "
                     "20.0 img/s for the default mode here); --try-opt "
                     "compile_mode=default,max-autotune searches it")

_INTER_OP = ("inter-op threads: the adapters pin one inter-op pool thread (one model has no "
             "independent ops worth a second pool), so it is not searched")
_NHWC_INSIDE = "layout: NHWC inside always (its CPU convolutions want channels last); no switch"

# Per adapter: options (first value = default), the execution mode an option belongs to, and
# what is absent. Execution modes and precisions come from the adapter table.
_SPACE: dict[str, tuple[dict[str, tuple[Any, ...]], dict[str, str], dict[str, str]]] = {
    "pytorch": ({"memory_format": ("contiguous", "channels_last"),
                 "compile_mode": ("default", "max-autotune")},
                {"compile_mode": "compiled"},
                {"inter_op": _INTER_OP}),
    "tensorflow": ({}, {}, {"layout": _NHWC_INSIDE, "inter_op": _INTER_OP}),
    "jax": ({}, {}, {"layout": _NHWC_INSIDE, "inter_op": _INTER_OP,
                     "compile_mode": "XLA has no user-facing optimisation levels for jit"}),
    "mxnet": ({}, {}, {"layout": "NCHW only: the adapter builds Gluon's NCHW layers (MXNet's "
                       "NHWC convolutions are a cuDNN path)", "inter_op": _INTER_OP}),
    "null": ({}, {}, {"layout": "no framework", "inter_op": "no framework"}),
}


def has_bf16(flags: Iterable[str]) -> bool:
    """Whether a CPU with these flags has bf16 instructions (AVX512_BF16 or AMX)."""
    have = {f.lower() for f in flags}
    return any(f in have for f in BF16_FLAGS)


def knobs(framework: str, device_kind: str, cpu_flags: Iterable[str] = ()) -> Knobs:
    """The search space of ``framework`` on ``device_kind`` ("cpu" or "gpu"); ``cpu_flags``
    decide whether bf16 is offered on the CPU."""
    info = get_info(framework)
    options, option_modes, absent = _SPACE[framework]
    precisions = list(info.precisions)
    absent = dict(absent)
    if device_kind == "cpu":
        precisions = [p for p in precisions if p not in GPU_ONLY_PRECISIONS]
        if "bf16" in precisions and not has_bf16(cpu_flags):
            precisions.remove("bf16")
            absent["bf16"] = ("this CPU has neither AVX512_BF16 nor AMX: bf16 would run as "
                              "software conversions around fp32 kernels")
    pruned = {"exec_mode=eager": _PRUNED_EAGER[framework] + " (--exec-modes eager searches it)"
              } if framework in _PRUNED_EAGER and "eager" in info.exec_modes else {}
    if device_kind == "cpu" and "compile_mode" in options:
        options = {**options, "compile_mode": ("default",)}
        pruned["compile_mode=max-autotune"] = _MAX_AUTOTUNE_CPU
    return Knobs(tuple(info.exec_modes), tuple(precisions), dict(options), dict(option_modes),
                 absent, pruned)

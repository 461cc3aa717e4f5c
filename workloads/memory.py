"""Analytic activation memory of a spec: what a framework must hold per image, in elements.

Training keeps every layer's output until the backward pass reads it (autograd saves them,
or what they were computed from), so its activation count is the sum of all outputs, the
input included. Inference needs only what is live at once: the largest set of outputs that
are still to be read at any point of the spec's schedule. Pure Python and numpy.
"""

from __future__ import annotations

import math

from workloads.spec import WorkloadSpec


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def train_activations(spec: WorkloadSpec) -> int:
    """Per-image elements saved for the backward pass: every layer's output and the input."""
    return sum(_elements(s) for s in spec.shapes().values())


def infer_activations(spec: WorkloadSpec) -> int:
    """Per-image elements live at the peak of a forward pass that frees each output after
    its last reader (``spec.schedule()``)."""
    shapes = spec.shapes()
    live = {"input": _elements(shapes["input"])}
    peak = sum(live.values())
    for step in spec.schedule():
        live[step.layer.name] = _elements(shapes[step.layer.name])
        peak = max(peak, sum(live.values()))
        for name in step.free:
            live.pop(name, None)
    return peak


def activation_bytes(spec: WorkloadSpec, batch: int, mode: str, itemsize: int = 4) -> int:
    """Bytes of activations for ``batch`` images in ``mode`` (train or infer/latency)."""
    per = train_activations(spec) if mode == "train" else infer_activations(spec)
    return per * batch * itemsize

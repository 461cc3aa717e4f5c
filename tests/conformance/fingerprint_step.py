"""One float64 SGD step of the ImageNet-size workloads, compared through fingerprints.

tests/fixtures/step_fingerprints_*.npz (made by make_step_fingerprints.py with the PyTorch
adapter) cannot hold the weights after the step: VGG-16 has 138M parameters. It holds, per
canonical key (parameters and BN running statistics), three numbers of the change the step
made, d = after - before: sum(d), |d|_2 and r . d for a seeded random vector r; plus the loss,
and the loss the NumPy oracle's layers give (batch-statistics batch norm, cross-entropy in
numpy). The batch is regenerated from its seed (224x224 images would not fit either).

Dropout is random in every framework and drawn differently in each, so the step runs on the
spec with every dropout rate set to 0 (a no-op layer that each adapter still translates);
training-mode dropout is checked in test_jax_specific.py (JAX only, so far).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import BuildOptions
from workloads import WorkloadSpec, get_workload
from workloads.reference import (
    batchnorm,
    check_weights,
    conv2d,
    init_weights,
    pool2d,
    synthetic_batch,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# (workload, image size) of the fixtures; which of them a run takes: see the test.
FIXTURE_SIZES = (("resnet50", 112), ("mobilenet_v2", 112), ("vgg16", 64), ("resnet50", 224),
                 ("mobilenet_v2", 224), ("vgg16", 224))
LR, MOMENTUM, BATCH, BATCH_SEED, R_SEED = 0.1, 0.9, 2, 7, 12345
_CHUNK = 1 << 22  # fingerprints are summed in chunks: VGG-16's fc6 alone is 103M values


def step_spec(name: str, size: int) -> WorkloadSpec:
    """``name`` at ``size`` x ``size`` pixels with every dropout rate 0 (a deterministic step).
    ResNet-50 and MobileNetV2 end in a global average pool, so only the activations shrink;
    VGG-16's first dense layer takes (size/32)^2 * 512 inputs."""
    spec = get_workload(name)
    layers = tuple(dataclasses.replace(la, attrs={**la.attrs, "rate": 0.0})
                   if la.op == "dropout" else la for la in spec.layers)
    return dataclasses.replace(spec, layers=layers, input_shape=(spec.input_shape[0], size, size))


def fixture_path(name: str, size: int) -> Path:
    return FIXTURES / f"step_fingerprints_{name}_{size}.npz"


def step_inputs(name: str, size: int
                ) -> tuple[WorkloadSpec, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    spec = step_spec(name, size)
    x, y = synthetic_batch(spec, BATCH, seed=BATCH_SEED)
    return spec, init_weights(spec, seed=0), x, y


def fingerprints(before: dict[str, np.ndarray], after: dict[str, np.ndarray]
                 ) -> tuple[list[str], np.ndarray]:
    """(sorted keys, array (n, 3) of sum(d), |d|_2, r . d per key), d = after - before."""
    keys = sorted(before)
    rng = np.random.default_rng(R_SEED)
    out = np.zeros((len(keys), 3))
    for i, k in enumerate(keys):
        a, b = after[k].reshape(-1), before[k].reshape(-1)
        s = sq = dot = 0.0
        for lo in range(0, a.size, _CHUNK):
            d = a[lo:lo + _CHUNK].astype(np.float64) - b[lo:lo + _CHUNK]
            r = rng.standard_normal(d.size)
            s += float(d.sum())
            sq += float(d @ d)
            dot += float(r @ d)
        out[i] = (s, np.sqrt(sq), dot)
    return keys, out


def fingerprint_errors(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per key, the worst of the three fingerprints' differences over |d_ref|_2. For an error
    e in d, the sum and the projection on r differ by about |e|_2, so this reads as the
    relative error of the weight change (or larger, for a systematic one)."""
    scale = np.where(ref[:, 1] > 0, ref[:, 1], 1.0)
    return np.max(np.abs(got - ref), axis=1) / scale


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def train_mode_logits(spec: WorkloadSpec, weights: dict[str, np.ndarray],
                      x: np.ndarray) -> np.ndarray:
    """The oracle's layers in training mode, in float64: batch norm normalises with the
    batch's mean and biased variance (what a training step's forward uses). Covers the ops
    of the ImageNet workloads; workloads.reference.forward is the inference-mode oracle."""
    check_weights(spec, weights)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    acts: dict[str, np.ndarray] = {"input": x.astype(np.float64)}
    remaining = spec.consumers()
    for layer in spec.layers:
        ins = [acts[s] for s in layer.inputs]
        a, h, n = layer.attrs, ins[0], layer.name
        if layer.op == "conv2d":
            out = conv2d(h, w[f"{n}/weight"], w.get(f"{n}/bias"), a["stride"], a["padding"],
                         a["groups"])
        elif layer.op == "batchnorm":
            axes = (0, 2, 3) if h.ndim == 4 else (0,)
            out = batchnorm(h, w[f"{n}/weight"], w[f"{n}/bias"], h.mean(axis=axes),
                            h.var(axis=axes), a["eps"])
        elif layer.op == "relu":
            out = np.maximum(h, 0)
        elif layer.op == "relu6":
            out = np.clip(h, 0, 6)
        elif layer.op in ("maxpool", "avgpool"):
            out = pool2d(h, a["kernel"], a["stride"], a["padding"], layer.op[:3])
        elif layer.op == "global_avgpool":
            out = h.mean(axis=(2, 3))
        elif layer.op == "flatten":
            out = h.reshape(h.shape[0], -1)
        elif layer.op == "dense":
            out = h @ w[f"{n}/weight"].T + w.get(f"{n}/bias", 0.0)
        elif layer.op == "dropout" and a["rate"] == 0:
            out = h
        elif layer.op == "add":
            out = ins[0] + ins[1]
        else:
            raise NotImplementedError(f"train_mode_logits has no {layer.op!r} ({a})")
        acts[n] = out
        for s in layer.inputs:  # VGG-16's activations in float64 would hold ~1 GB
            remaining[s] -= 1
            if remaining[s] == 0:
                del acts[s]
    return acts[spec.output]


def fingerprint_step(adapter: Any, name: str, size: int, **opts: Any
                     ) -> tuple[float, list[str], np.ndarray]:
    """One float64 step of ``name`` at ``size`` (dropout off) from canonical weights on the
    fixture's batch: (loss, sorted keys, fingerprints of the change)."""
    spec, weights, x, y = step_inputs(name, size)
    model = adapter.build(spec, weights, BuildOptions(
        mode="train", lr=LR, momentum=MOMENTUM, dtype="float64", **opts))
    loss = adapter.train_step(model, x, y)
    after = adapter.export_weights(model)
    del model  # VGG-16 in float64 with its momentum is several GB
    keys, fp = fingerprints(weights, after)
    return loss, keys, fp

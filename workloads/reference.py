"""Canonical weights and the NumPy reference forward pass (the oracle).

Every adapter must reproduce `forward(spec, weights, x)` from the same canonical weights.
The oracle computes in float64 by default so that it is the "truth" against which fp32
framework results are compared; inference semantics (batch norm uses running statistics,
dropout is the identity).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .spec import Layer, WorkloadSpec

Weights = dict[str, np.ndarray]


def init_weights(spec: WorkloadSpec, seed: int = 0, dtype: type = np.float32) -> Weights:
    """Deterministic canonical weights: He-normal convs and denses, non-trivial batch norm.

    Batch-norm statistics and affine terms are random on purpose: identity values would hide
    an adapter that mixes up eps, momentum, gamma/beta or mean/var.
    """
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for p in spec.param_infos():
        param = p.key.rsplit("/", 1)[1]
        layer_op = spec.layer(p.key.rsplit("/", 1)[0]).op
        if layer_op == "batchnorm":
            if param == "weight":
                w = rng.uniform(0.5, 1.0, p.shape)
            elif param == "bias":
                w = rng.normal(0.0, 0.1, p.shape)
            elif param == "running_mean":
                w = rng.normal(0.0, 0.1, p.shape)
            else:
                w = rng.uniform(0.5, 1.5, p.shape)
        elif param == "weight":
            fan_in = int(np.prod(p.shape[1:]))
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), p.shape)
        else:
            w = rng.normal(0.0, 0.05, p.shape)
        out[p.key] = np.ascontiguousarray(w, dtype=dtype)
    return out


def check_weights(spec: WorkloadSpec, weights: Weights) -> None:
    """Raise ValueError unless `weights` has exactly the spec's keys and shapes."""
    want = {p.key: p.shape for p in spec.param_infos()}
    missing = sorted(set(want) - set(weights))
    extra = sorted(set(weights) - set(want))
    if missing or extra:
        raise ValueError(f"{spec.name}: weights missing {missing[:5]}, unexpected {extra[:5]}")
    for k, shape in want.items():
        if tuple(weights[k].shape) != shape:
            raise ValueError(f"{spec.name}: {k} has shape {weights[k].shape}, spec says {shape}")


def synthetic_batch(spec: WorkloadSpec, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random batch: images ~ N(0, 1) in NCHW float32, int64 labels."""
    rng = np.random.default_rng(seed + 1_000_003)
    x = rng.standard_normal((batch, *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, spec.num_classes, size=(batch,), dtype=np.int64)
    return x, y


def max_rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max|got - ref| / max|ref|: relative to the logits' scale, so near-zero logits do not
    turn rounding noise into huge element-wise ratios."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise ValueError(f"shape {got.shape} != reference shape {ref.shape}")
    scale = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(got - ref)) / (scale if scale > 0 else 1.0))


# ------------------------------------------------------------------- layer ops


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
           padding: tuple[int, int, int, int], groups: int = 1) -> np.ndarray:
    """NCHW x, OIHW w (I = C / groups); cross-correlation as in every framework."""
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    oh, ow = win.shape[2], win.shape[3]
    if groups == 1:
        out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, OH, OW, O)
        out = out.transpose(0, 3, 1, 2)
    else:
        og = o // groups
        win = win.reshape(n, groups, cg, oh, ow, kh, kw)
        wg = w.reshape(groups, og, cg, kh, kw)
        out = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True).reshape(n, o, oh, ow)
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out)


def pool2d(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int, int, int], kind: str) -> np.ndarray:
    pt, pb, pl, pr = padding
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    win = sliding_window_view(xp, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    return win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5))


def batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
              var: np.ndarray, eps: float) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = gamma / np.sqrt(var + eps)
    return x * inv.reshape(shape) + (beta - mean * inv).reshape(shape)


def lrn(x: np.ndarray, depth_radius: int, bias: float, alpha: float, beta: float) -> np.ndarray:
    """TensorFlow's local response normalization across channels of an NCHW tensor."""
    sq = np.pad(x * x, ((0, 0), (depth_radius, depth_radius), (0, 0), (0, 0)))
    csum = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
    window = csum[:, 2 * depth_radius + 1 :] - csum[:, : -(2 * depth_radius + 1)]
    return x / (bias + alpha * window) ** beta


def pad_channels(x: np.ndarray, stride: int, before: int, after: int) -> np.ndarray:
    """Option-A shortcut: spatial subsampling by `stride`, then zero channels around x."""
    return np.pad(x[:, :, ::stride, ::stride], ((0, 0), (before, after), (0, 0), (0, 0)))


def _apply(layer: Layer, ins: list[np.ndarray], w: Weights) -> np.ndarray:
    a, x, name = layer.attrs, ins[0], layer.name
    op = layer.op
    if op == "conv2d":
        return conv2d(x, w[f"{name}/weight"], w.get(f"{name}/bias"), a["stride"], a["padding"],
                      a["groups"])
    if op == "batchnorm":
        return batchnorm(x, w[f"{name}/weight"], w[f"{name}/bias"], w[f"{name}/running_mean"],
                         w[f"{name}/running_var"], a["eps"])
    if op == "relu":
        return np.maximum(x, 0)
    if op == "relu6":
        return np.clip(x, 0, 6)
    if op in ("maxpool", "avgpool"):
        return pool2d(x, a["kernel"], a["stride"], a["padding"], op[:3])
    if op == "global_avgpool":
        return x.mean(axis=(2, 3))
    if op == "lrn":
        return lrn(x, a["depth_radius"], a["bias"], a["alpha"], a["beta"])
    if op == "flatten":
        return x.reshape(x.shape[0], -1)
    if op == "dense":
        y = x @ w[f"{name}/weight"].T
        b = w.get(f"{name}/bias")
        return y + b if b is not None else y
    if op == "dropout":
        return x
    if op == "add":
        return ins[0] + ins[1]
    if op == "pad_channels":
        return pad_channels(x, a["stride"], a["before"], a["after"])
    raise NotImplementedError(f"the NumPy oracle has no op {op!r}")


def forward(spec: WorkloadSpec, weights: Weights, x: np.ndarray,
            dtype: type = np.float64) -> np.ndarray:
    """Inference-mode logits of `spec` for NCHW input `x`."""
    check_weights(spec, weights)
    if tuple(x.shape[1:]) != tuple(spec.input_shape):
        raise ValueError(f"{spec.name}: input shape {x.shape[1:]} != {spec.input_shape}")
    w: Weights = {k: v.astype(dtype) for k, v in weights.items()}
    acts: dict[str, np.ndarray] = {"input": x.astype(dtype)}
    for step in spec.schedule():
        acts[step.layer.name] = _apply(step.layer, [acts[s] for s in step.inputs], w)
        for s in step.free:  # activations nobody reads any more
            del acts[s]
    return acts[spec.output]

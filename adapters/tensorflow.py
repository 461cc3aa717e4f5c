"""TensorFlow adapter: a spec becomes one tf.Module of raw TF ops that walks the layer graph.

Raw ops, not Keras 3 layers, because they give the faster step on the CPU (see
tests/perf/handloop_tensorflow.py): Keras 3's BatchNormalization computes moments and the
normalization as separate ops and its optimizer adds bookkeeping ops to every step, while
FusedBatchNormV3 and ResourceApplyMomentum do each job in one kernel. Raw ops also let batch
norm follow the spec's PyTorch convention exactly (see _batchnorm).

Layout is NHWC inside (TensorFlow's CPU kernels have no NCHW convolution), so canonical
weights are transposed on import and export and batches once on the host.
Precision: fp32; bf16 and fp16 follow Keras' mixed_bfloat16 / mixed_float16 policies (fp32
variables, each read cast to the compute dtype, fp32 logits and loss); fp16 only on a GPU,
with dynamic loss scaling as Keras' LossScaleOptimizer does it.
Execution: eager, graph (tf.function) or xla (tf.function with jit_compile=True).

Environment: tensorflow-cpu in its own tox env. On a CUDA machine install `tensorflow[and-cuda]`
of the same version instead (it bundles the CUDA and cuDNN wheels) and run with gpu:N.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# TensorFlow's C++ runtime logs to stderr from import on and reads this level once, so it must
# be set before the import. Worker output lands in a per-cell log anyway.
if os.environ.get("CNNBENCH_VERBOSE") != "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from workloads import Layer, WorkloadSpec  # noqa: E402

from .base import (  # noqa: E402
    Adapter,
    BuildOptions,
    TimeSteps,
    Unsupported,
    Weights,
    cpu_model_name,
)

if os.environ.get("CNNBENCH_VERBOSE") != "1":
    tf.get_logger().setLevel("ERROR")

COMPUTE_DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}
Fn = Callable[[list[tf.Tensor], bool], tf.Tensor]


def _tf_padding(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                pad: tuple[int, int, int, int]) -> str | list[list[int]]:
    """The TF padding argument that pads exactly `pad` (top, bottom, left, right).

    TF's 'SAME' pads (total // 2, rest), which is asymmetric at stride 2 on even inputs, so
    it is used only where it provably equals the spec's padding for this input size;
    otherwise the padding is explicit.
    """
    if not any(pad):
        return "VALID"
    same = []
    for size, k, s in zip(hw, kernel, stride, strict=True):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        same += [total // 2, total - total // 2]
    if tuple(same) == tuple(pad):
        return "SAME"
    pt, pb, pl, pr = pad
    return [[0, 0], [pt, pb], [pl, pr], [0, 0]]


class SpecNet(tf.Module):
    """Executes a WorkloadSpec in NHWC. Variables are keyed by canonical "layer/param"."""

    def __init__(self, spec: WorkloadSpec, dtype: tf.DType) -> None:
        super().__init__(name="specnet")
        self.spec = spec
        self.dtype = dtype
        self.variables_by_key: dict[str, tf.Variable] = {}
        # canonical key -> (to native layout, back to canonical layout)
        self._layouts: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                                       Callable[[np.ndarray], np.ndarray]]] = {}
        self.bn_updates: list[tuple[tf.Variable, tf.Variable]] = []
        shapes = spec.shapes()
        consumers = spec.consumers()
        self._nhwc_flattens, self._dense_from_flatten = self._flatten_feeds(spec, shapes)
        plan = []
        remaining = dict(consumers)
        for layer in spec.layers:
            fn = self._make(layer, [shapes[s] for s in layer.inputs])
            free = []
            for s in layer.inputs:
                remaining[s] -= 1
                if remaining[s] == 0:
                    free.append(s)
            plan.append((layer.name, layer.inputs, fn, free))
        self._plan = plan
        self.trainable = [self.variables_by_key[p.key] for p in spec.param_infos() if p.trainable]

    @staticmethod
    def _flatten_feeds(spec: WorkloadSpec, shapes: dict[str, tuple[int, ...]]
                       ) -> tuple[set[str], dict[str, tuple[int, ...]]]:
        """Flattens read only by dense layers, and those dense layers with the (C, H, W) fed.

        The spec flattens in C-major (C, H, W) order. Permuting the dense weight's input axis
        to (H, W, C) once on import gives the same product as transposing the activations to
        NCHW before every flatten, without the transpose.
        """
        readers: dict[str, list[Layer]] = {}
        for layer in spec.layers:
            for s in layer.inputs:
                readers.setdefault(s, []).append(layer)
        flattens, denses = set(), {}
        for layer in spec.layers:
            if layer.op == "flatten" and all(r.op == "dense" for r in readers.get(layer.name, [])):
                flattens.add(layer.name)
                for r in readers.get(layer.name, []):
                    denses[r.name] = shapes[layer.inputs[0]]
        return flattens, denses

    def _var(self, key: str, value: np.ndarray, trainable: bool,
             to_native: Callable[[np.ndarray], np.ndarray] = lambda a: a,
             to_canonical: Callable[[np.ndarray], np.ndarray] = lambda a: a) -> tf.Variable:
        v = tf.Variable(to_native(value).astype(np.float32), trainable=trainable,
                        name=key.replace("/", "__"))
        self.variables_by_key[key] = v
        self._layouts[key] = (to_native, to_canonical)
        return v

    def _w(self, v: tf.Variable) -> tf.Tensor:
        # Mixed precision as Keras' policies do it: fp32 variables, each read cast down.
        return tf.cast(v, self.dtype)

    def _make(self, layer: Layer, in_shapes: list[tuple[int, ...]]) -> Fn:
        a, op, name = layer.attrs, layer.op, layer.name
        x_shape = in_shapes[0]
        zeros = np.zeros
        if op == "conv2d":
            cin, cout, (kh, kw), g = x_shape[0], a["out_channels"], a["kernel"], a["groups"]
            strides = [1, *a["stride"], 1]
            padding = _tf_padding(x_shape[1:], a["kernel"], a["stride"], a["padding"])
            if g > 1 and g == cin:
                # Depthwise: canonical (C*mult, 1, kh, kw) -> TF (kh, kw, C, mult).
                mult = cout // cin
                w = self._var(f"{name}/weight", zeros((cout, 1, kh, kw)), True,
                              lambda t: t.reshape(cin, mult, kh, kw).transpose(2, 3, 0, 1),
                              lambda t: t.transpose(2, 3, 0, 1).reshape(cout, 1, kh, kw))

                def conv(x: tf.Tensor) -> tf.Tensor:
                    return tf.nn.depthwise_conv2d(x, self._w(w), strides, padding)
            else:
                w = self._var(f"{name}/weight", zeros((cout, cin // g, kh, kw)), True,
                              lambda t: t.transpose(2, 3, 1, 0), lambda t: t.transpose(3, 2, 0, 1))
                if g == 1:
                    def conv(x: tf.Tensor) -> tf.Tensor:
                        return tf.nn.conv2d(x, self._w(w), strides, padding)
                else:
                    # TF's CPU kernels have no grouped convolution: one conv per group.
                    def conv(x: tf.Tensor) -> tf.Tensor:
                        ws = tf.split(self._w(w), g, axis=3)
                        xs = tf.split(x, g, axis=3)
                        return tf.concat([tf.nn.conv2d(xi, wi, strides, padding)
                                          for xi, wi in zip(xs, ws, strict=True)], axis=3)
            if not a["bias"]:
                return lambda xs, training: conv(xs[0])
            b = self._var(f"{name}/bias", zeros((cout,)), True)
            return lambda xs, training: tf.nn.bias_add(conv(xs[0]), self._w(b))
        if op == "batchnorm":
            return self._batchnorm(name, x_shape, a["eps"], a["momentum"])
        if op == "relu":
            return lambda xs, training: tf.nn.relu(xs[0])
        if op == "relu6":
            return lambda xs, training: tf.nn.relu6(xs[0])
        if op == "maxpool":
            ksize, strides = [1, *a["kernel"], 1], [1, *a["stride"], 1]
            padding = _tf_padding(x_shape[1:], a["kernel"], a["stride"], a["padding"])
            if not isinstance(padding, list):
                # TF's max-pool 'SAME' ignores padded cells, i.e. pads with -inf.
                return lambda xs, training: tf.nn.max_pool2d(xs[0], ksize, strides, padding)

            def maxpool(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
                # Max-pool takes no explicit padding; pad with -inf as the spec says.
                x = tf.pad(xs[0], padding, constant_values=float("-inf"))
                return tf.nn.max_pool2d(x, ksize, strides, "VALID")
            return maxpool
        if op == "avgpool":
            ksize, strides = [1, *a["kernel"], 1], [1, *a["stride"], 1]
            return lambda xs, training: tf.nn.avg_pool2d(xs[0], ksize, strides, "VALID")
        if op == "global_avgpool":
            return lambda xs, training: tf.reduce_mean(xs[0], axis=[1, 2])
        if op == "lrn":
            # tf.nn.local_response_normalization is exactly the spec's (TF's) definition.
            def lrn(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
                x = xs[0]
                y = tf.nn.local_response_normalization(
                    tf.cast(x, tf.float32), a["depth_radius"], a["bias"], a["alpha"], a["beta"])
                return tf.cast(y, x.dtype)  # the CPU LRN kernel is float32 only
            return lrn
        if op == "flatten":
            c, h, w_ = x_shape
            if name in self._nhwc_flattens:
                return lambda xs, training: tf.reshape(xs[0], [-1, h * w_ * c])
            # Someone other than a dense reads it: flatten in the spec's C-major order.
            return lambda xs, training: tf.reshape(tf.transpose(xs[0], [0, 3, 1, 2]),
                                                   [-1, c * h * w_])
        if op == "dense":
            fin, fout = x_shape[0], a["out_features"]
            chw = self._dense_from_flatten.get(name)
            if chw is not None and chw[1] * chw[2] > 1:
                c, h, w_ = chw
                to_native = lambda t: t.reshape(fout, c, h, w_).transpose(2, 3, 1, 0).reshape(  # noqa: E731
                    fin, fout)
                to_canon = lambda t: t.reshape(h, w_, c, fout).transpose(3, 2, 0, 1).reshape(  # noqa: E731
                    fout, fin)
            else:
                to_native, to_canon = (lambda t: t.T), (lambda t: t.T)
            wd = self._var(f"{name}/weight", zeros((fout, fin)), True, to_native, to_canon)
            if not a["bias"]:
                return lambda xs, training: tf.matmul(xs[0], self._w(wd))
            bd = self._var(f"{name}/bias", zeros((fout,)), True)
            return lambda xs, training: tf.nn.bias_add(tf.matmul(xs[0], self._w(wd)),
                                                       self._w(bd))
        if op == "dropout":
            rate = a["rate"]
            return lambda xs, training: tf.nn.dropout(xs[0], rate) if training else xs[0]
        if op == "add":
            return lambda xs, training: xs[0] + xs[1]
        if op == "pad_channels":
            s, before, after = a["stride"], a["before"], a["after"]
            return lambda xs, training: tf.pad(xs[0][:, ::s, ::s, :],
                                               [[0, 0], [0, 0], [0, 0], [before, after]])
        raise Unsupported(f"tensorflow adapter has no op {op!r}")

    def _batchnorm(self, name: str, x_shape: tuple[int, ...], eps: float,
                   momentum: float) -> Fn:
        """Batch norm with FusedBatchNormV3 in the spec's PyTorch convention.

        Not Keras' BatchNormalization: Keras 3 updates the moving variance with the biased
        batch variance, PyTorch (the spec and the SGD fixtures) with the unbiased one. The
        fused op in training mode returns the Bessel-corrected variance and, given
        exponential_avg_factor = the spec's momentum (the weight of the new statistic),
        already blends it into the running statistics: one kernel for the whole job.
        """
        c = x_shape[0]
        gamma = self._var(f"{name}/weight", np.ones(c), True)
        beta = self._var(f"{name}/bias", np.zeros(c), True)
        mean = self._var(f"{name}/running_mean", np.zeros(c), False)
        var = self._var(f"{name}/running_var", np.ones(c), False)
        flat = len(x_shape) == 1

        def bn(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
            x = xs[0]
            if flat:  # (N, C) -> (N, 1, 1, C): the fused op wants 4-D
                x = x[:, None, None, :]
            y, new_mean, new_var, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=mean, variance=var, epsilon=eps,
                exponential_avg_factor=momentum if training else 1.0, data_format="NHWC",
                is_training=training)
            if training:
                mean.assign(new_mean)
                var.assign(new_var)
            return y[:, 0, 0, :] if flat else y

        return bn

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        acts: dict[str, tf.Tensor] = {"input": tf.cast(x, self.dtype)}
        out = acts["input"]
        for name, inputs, fn, free in self._plan:
            out = fn([acts[s] for s in inputs], training)
            acts[name] = out
            for s in free:
                del acts[s]
        return tf.cast(out, tf.float32)

    # canonical weights <-> variables
    def load(self, weights: Weights) -> None:
        for key, arr in weights.items():
            v = self.variables_by_key[key]
            native = self._layouts[key][0](np.asarray(arr, np.float32))
            if tuple(v.shape) != native.shape:
                raise ValueError(f"{key}: model shape {tuple(v.shape)} != {native.shape}")
            v.assign(native)

    def export(self) -> Weights:
        return {key: np.ascontiguousarray(self._layouts[key][1](v.numpy()), dtype=np.float32)
                for key, v in self.variables_by_key.items()}

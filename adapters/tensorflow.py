"""TensorFlow adapter: a spec becomes one tf.Module of raw TF ops that walks the layer graph.

Raw ops, not Keras 3 layers, measured with tests/perf/handloop_tensorflow.py against a plain
Keras 3 loop of ResNet-20: the same speed for a graph-mode training step (the convolutions
dominate and are the same kernels), faster for inference (FusedBatchNormV3, which Grappler
folds into the convolution, against Keras' separate batch-norm ops) and much faster eagerly
(no per-layer Python). They also let batch norm follow the spec's PyTorch convention exactly
(see _batchnorm), and SGD is one ResourceApplyMomentum kernel per variable.

Layout is NHWC inside (TensorFlow's CPU kernels have no NCHW convolution), so canonical
weights are transposed on import and export and batches once on the host.
Precision: fp32; bf16 and fp16 follow Keras' mixed_bfloat16 / mixed_float16 policies (fp32
variables, each read cast to the compute dtype, fp32 logits and loss); fp16 only on a GPU,
with dynamic loss scaling as Keras' LossScaleOptimizer does it.
Execution: eager, graph (tf.function) or xla (tf.function with jit_compile=True).

Data parallel (a device set: cpu*N, gpu:0+1): tf.distribute.MirroredStrategy over the
devices (cpu*N: N logical CPU devices, made by setup_devices before the runtime starts, which
MirroredStrategy reduces over with CollectiveAllReduce). Variables are mirrored; each replica
takes its shard of the global batch, its gradients are averaged by the replica context's
all_reduce and applied to its own copy, so the copies stay identical. Batch norm normalises
each replica's shard; the running statistics are MEAN-aggregated variables, so every replica
holds the mean of the replicas' updates.

Several workers (TF_CONFIG naming a cluster of W > 1 'worker' tasks, one process each, on one
machine or several; see adapters.base.tf_workers): tf.distribute.MultiWorkerMirroredStrategy
with RING collectives (gRPC on the CPU), made in setup() because TF configures collectives
and joins the cluster only before its runtime starts. Each worker's device is plain ``cpu``
(one CPU device per worker is what is tested). The global batch is split as above, over all
W replicas: worker i feeds only rows [i*B/W, (i+1)*B/W), the gradients are averaged over
every worker's replica by the same all_reduce (the mean of W shard means of equal size is the
global batch's mean gradient, so one step equals one single-device step on the global
batch), train_step's loss is the mean over all workers (a collective too), and
replica_weights returns the copy this worker holds. The runner launches such cells across
nodes (cnnbench.sweep.nodes: one worker per node, TF_CONFIG built from CNNBENCH_TF_WORKERS);
every worker runs every step, so worker 0 decides the rounds and the others follow them
(base.RankClock, over a SUM all-reduce of the same strategy), and a round ends when the
slowest worker is done.

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
from typing import Any, ClassVar

import numpy as np

# TensorFlow's C++ runtime logs to stderr from import on and reads this level once, so it must
# be set before the import. Worker output lands in a per-cell log anyway.
if os.environ.get("CNNBENCH_VERBOSE") != "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from workloads import Layer, WorkloadSpec

from . import base, padding
from .base import Adapter, BuildOptions, ClockedRanks, RankClock, Threads, TimeSteps, Unsupported, Weights

if os.environ.get("CNNBENCH_VERBOSE") != "1":
    tf.get_logger().setLevel("ERROR")

COMPUTE_DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}
Fn = Callable[[list[tf.Tensor], bool], tf.Tensor]
Shape = tuple[int, ...]


def _tf_padding(hw: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                pad: tuple[int, int, int, int]) -> str | list[list[int]]:
    """The TF padding argument that pads exactly `pad` (top, bottom, left, right).

    TF's 'SAME' pads (total // 2, rest), which is asymmetric at stride 2 on even inputs, so
    it is used only where it provably equals the spec's padding for this input size;
    otherwise the result is the explicit NHWC paddings (for tf.pad).
    """
    if not any(pad):
        return "VALID"
    if padding.same_pads(hw, kernel, stride) == tuple(pad):
        return "SAME"
    (pt, pb), (pl, pr) = padding.pairs(pad)
    return [[0, 0], [pt, pb], [pl, pr], [0, 0]]


class SpecNet(tf.Module):
    """Executes a WorkloadSpec in NHWC. Variables are keyed by canonical "layer/param".

    `dtype` is the compute dtype; variables are float32, or float64 for the conformance
    suite's double-precision step (then everything computes in float64).
    """

    def __init__(self, spec: WorkloadSpec, dtype: tf.DType, float64: bool = False) -> None:
        super().__init__(name="specnet")
        self.spec = spec
        self.var_dtype = tf.float64 if float64 else tf.float32
        self.dtype = tf.float64 if float64 else dtype
        self.variables_by_key: dict[str, tf.Variable] = {}
        # canonical key -> (to native layout, back to canonical layout)
        self.layouts: dict[str, tuple[Callable[[np.ndarray], np.ndarray],
                                       Callable[[np.ndarray], np.ndarray]]] = {}
        shapes = spec.shapes()
        self._nhwc_flattens, self._dense_from_flatten = self._flatten_feeds(spec, shapes)
        self._plan = [(s.layer.name, s.inputs, self._make(s.layer, shapes[s.inputs[0]]), s.free)
                      for s in spec.schedule()]
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
        # Under MirroredStrategy a replica may assign a non-trainable variable (batch norm's
        # running statistics) only with an aggregation: the mean of the replicas' values.
        agg = tf.VariableAggregation.NONE if trainable else tf.VariableAggregation.MEAN
        v = tf.Variable(to_native(value).astype(self.var_dtype.as_numpy_dtype),
                        trainable=trainable, name=key.replace("/", "__"), aggregation=agg)
        self.variables_by_key[key] = v
        self.layouts[key] = (to_native, to_canonical)
        return v

    def _w(self, v: tf.Variable) -> tf.Tensor:
        # Mixed precision as Keras' policies do it: fp32 variables, each read cast down.
        return tf.cast(v, self.dtype)

    def _make(self, layer: Layer, x: Shape) -> Fn:
        make = self._MAKERS.get(layer.op)
        if make is None:
            raise Unsupported(f"tensorflow adapter has no op {layer.op!r} (layer {layer.name!r})")
        return make(self, layer, x)

    # -- one maker per op: (layer, input shape) -> fn(inputs, training) ----------------------
    def _op_conv2d(self, layer: Layer, x: Shape) -> Fn:
        a, name = layer.attrs, layer.name
        cin, cout, (kh, kw), g = x[0], a["out_channels"], a["kernel"], a["groups"]
        strides = [1, *a["stride"], 1]
        pad = _tf_padding(x[1:], a["kernel"], a["stride"], a["padding"])
        # tf.pad + 'VALID' rather than the convolutions' own explicit padding: as fast in
        # graph mode, about 8% faster for ResNet-20 under XLA, and oneDNN's graph rewrite of
        # an explicitly padded depthwise conv aborts the process (TF 2.21).
        pads, same = (pad, "VALID") if isinstance(pad, list) else (None, pad)
        if g > 1 and g == cin:
            conv_op = self._conv_depthwise(name, cin, cout, (kh, kw), strides, same)
        else:
            conv_op = self._conv_grouped(name, cin, cout, (kh, kw), g, strides, same)

        def conv(x: tf.Tensor) -> tf.Tensor:
            return conv_op(x if pads is None else tf.pad(x, pads))
        if not a["bias"]:
            return lambda xs, training: conv(xs[0])
        b = self._var(f"{name}/bias", np.zeros((cout,)), True)
        return lambda xs, training: tf.nn.bias_add(conv(xs[0]), self._w(b))

    def _conv_depthwise(self, name: str, cin: int, cout: int, k: tuple[int, int],
                        strides: list[int], same: str) -> Callable[[tf.Tensor], tf.Tensor]:
        # Canonical (C*mult, 1, kh, kw) -> TF (kh, kw, C, mult).
        (kh, kw), mult = k, cout // cin
        w = self._var(f"{name}/weight", np.zeros((cout, 1, kh, kw)), True,
                      lambda t: t.reshape(cin, mult, kh, kw).transpose(2, 3, 0, 1),
                      lambda t: t.transpose(2, 3, 0, 1).reshape(cout, 1, kh, kw))
        return lambda x: tf.nn.depthwise_conv2d(x, self._w(w), strides, same)

    def _conv_grouped(self, name: str, cin: int, cout: int, k: tuple[int, int], g: int,
                      strides: list[int], same: str) -> Callable[[tf.Tensor], tf.Tensor]:
        w = self._var(f"{name}/weight", np.zeros((cout, cin // g, *k)), True,
                      lambda t: t.transpose(2, 3, 1, 0), lambda t: t.transpose(3, 2, 0, 1))
        if g == 1:
            return lambda x: tf.nn.conv2d(x, self._w(w), strides, same)

        def conv_groups(x: tf.Tensor) -> tf.Tensor:
            # TF's CPU kernels have no grouped convolution: one conv per group.
            ws = tf.split(self._w(w), g, axis=3)
            xs = tf.split(x, g, axis=3)
            return tf.concat([tf.nn.conv2d(xi, wi, strides, same)
                              for xi, wi in zip(xs, ws, strict=True)], axis=3)
        return conv_groups

    def _op_batchnorm(self, layer: Layer, x: Shape) -> Fn:
        return self._batchnorm(layer.name, x, layer.attrs["eps"], layer.attrs["momentum"])

    def _op_relu(self, layer: Layer, x: Shape) -> Fn:
        return lambda xs, training: tf.nn.relu(xs[0])

    def _op_relu6(self, layer: Layer, x: Shape) -> Fn:
        return lambda xs, training: tf.nn.relu6(xs[0])

    def _op_maxpool(self, layer: Layer, x: Shape) -> Fn:
        a = layer.attrs
        ksize, strides = [1, *a["kernel"], 1], [1, *a["stride"], 1]
        pad = _tf_padding(x[1:], a["kernel"], a["stride"], a["padding"])
        if not isinstance(pad, list):
            # TF's max-pool 'SAME' ignores padded cells, i.e. pads with -inf.
            return lambda xs, training: tf.nn.max_pool2d(xs[0], ksize, strides, pad)

        def maxpool(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
            # Max-pool takes no explicit padding; pad with -inf as the spec says.
            x = tf.pad(xs[0], pad, constant_values=float("-inf"))
            return tf.nn.max_pool2d(x, ksize, strides, "VALID")
        return maxpool

    def _op_avgpool(self, layer: Layer, x: Shape) -> Fn:
        ksize, strides = [1, *layer.attrs["kernel"], 1], [1, *layer.attrs["stride"], 1]
        return lambda xs, training: tf.nn.avg_pool2d(xs[0], ksize, strides, "VALID")

    def _op_global_avgpool(self, layer: Layer, x: Shape) -> Fn:
        return lambda xs, training: tf.reduce_mean(xs[0], axis=[1, 2])

    def _op_lrn(self, layer: Layer, x: Shape) -> Fn:
        a = layer.attrs
        r, bias, alpha, beta = a["depth_radius"], a["bias"], a["alpha"], a["beta"]
        if self.dtype == tf.float64:
            return self._lrn_ops(r, bias, alpha, beta)

        # tf.nn.local_response_normalization is exactly the spec's (TF's) definition.
        def lrn(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
            x = xs[0]
            y = tf.nn.local_response_normalization(tf.cast(x, tf.float32), r, bias, alpha, beta)
            return tf.cast(y, x.dtype)  # the CPU LRN kernel is float32 only
        return lrn

    def _op_flatten(self, layer: Layer, x: Shape) -> Fn:
        c, h, w = x
        if layer.name in self._nhwc_flattens:
            return lambda xs, training: tf.reshape(xs[0], [-1, h * w * c])
        # Someone other than a dense reads it: flatten in the spec's C-major order.
        return lambda xs, training: tf.reshape(tf.transpose(xs[0], [0, 3, 1, 2]), [-1, c * h * w])

    def _op_dense(self, layer: Layer, x: Shape) -> Fn:
        name, fin, fout = layer.name, x[0], layer.attrs["out_features"]
        chw = self._dense_from_flatten.get(name)
        if chw is not None and chw[1] * chw[2] > 1:
            c, h, w_ = chw
            to_native = lambda t: t.reshape(fout, c, h, w_).transpose(2, 3, 1, 0).reshape(  # noqa: E731
                fin, fout)
            to_canon = lambda t: t.reshape(h, w_, c, fout).transpose(3, 2, 0, 1).reshape(  # noqa: E731
                fout, fin)
        else:
            to_native, to_canon = (lambda t: t.T), (lambda t: t.T)
        wd = self._var(f"{name}/weight", np.zeros((fout, fin)), True, to_native, to_canon)
        if not layer.attrs["bias"]:
            return lambda xs, training: tf.matmul(xs[0], self._w(wd))
        bd = self._var(f"{name}/bias", np.zeros((fout,)), True)
        return lambda xs, training: tf.nn.bias_add(tf.matmul(xs[0], self._w(wd)), self._w(bd))

    def _op_dropout(self, layer: Layer, x: Shape) -> Fn:
        rate = layer.attrs["rate"]
        return lambda xs, training: tf.nn.dropout(xs[0], rate) if training else xs[0]

    def _op_add(self, layer: Layer, x: Shape) -> Fn:
        return lambda xs, training: xs[0] + xs[1]

    def _op_pad_channels(self, layer: Layer, x: Shape) -> Fn:
        a = layer.attrs
        s, c, (h, w) = a["stride"], x[0], x[1:]
        pads = [[0, 0], [0, 0], [0, 0], [a["before"], a["after"]]]
        if s > 1 and h % s == 0 and w % s == 0:
            # x[:, ::s, ::s] as a unit-step slice of a reshaped view: TF's strided slice
            # with steps on the spatial axes is about 5x slower (4% of ResNet-20's
            # inference step on the CPU).
            shape = [-1, h // s, s, w // s, s * c]
            return lambda xs, training: tf.pad(tf.reshape(xs[0], shape)[:, :, 0, :, :c], pads)
        return lambda xs, training: tf.pad(xs[0][:, ::s, ::s, :], pads)

    # The "_op_" prefix keeps clear of tf.Module's own methods (it has a _flatten).
    _MAKERS: ClassVar[dict[str, Callable[[SpecNet, Layer, Shape], Fn]]] = {
        "conv2d": _op_conv2d, "batchnorm": _op_batchnorm, "relu": _op_relu, "relu6": _op_relu6,
        "maxpool": _op_maxpool, "avgpool": _op_avgpool, "global_avgpool": _op_global_avgpool,
        "lrn": _op_lrn, "flatten": _op_flatten, "dense": _op_dense, "dropout": _op_dropout,
        "add": _op_add, "pad_channels": _op_pad_channels,
    }

    def _batchnorm(self, name: str, x_shape: tuple[int, ...], eps: float,
                   momentum: float) -> Fn:
        """Batch norm in the spec's PyTorch convention.

        Not Keras' BatchNormalization: Keras 3 updates the moving variance with the biased
        batch variance, PyTorch (the spec and the SGD fixtures) with the unbiased one.
        FusedBatchNormV3 in training mode returns the Bessel-corrected variance and, given
        exponential_avg_factor = the spec's momentum (the weight of the new statistic),
        blends it into the running statistics itself: one kernel for the whole job, as fast
        as moments + normalization ops on TF's Eigen kernels and faster with oneDNN.
        In inference mode Grappler can fold it into the convolution before it.
        """
        c = x_shape[0]
        gamma = self._var(f"{name}/weight", np.ones(c), True)
        beta = self._var(f"{name}/bias", np.zeros(c), True)
        mean = self._var(f"{name}/running_mean", np.zeros(c), False)
        var = self._var(f"{name}/running_var", np.ones(c), False)
        flat = len(x_shape) == 1
        if self.var_dtype == tf.float64:
            return self._batchnorm_ops(gamma, beta, mean, var, eps, momentum, flat)

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

    # float64 (the conformance suite's exact step): FusedBatchNormV3 and the CPU LRN kernel
    # have no double kernels, so these two are written out in ops, to the same definitions.
    @staticmethod
    def _batchnorm_ops(gamma: tf.Variable, beta: tf.Variable, mean: tf.Variable,
                       var: tf.Variable, eps: float, momentum: float, flat: bool) -> Fn:
        def bn(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
            x = xs[0]
            if training:
                m, v = tf.nn.moments(x, axes=[0] if flat else [0, 1, 2])
                n = tf.cast(tf.size(x) // tf.size(m), x.dtype)
                mean.assign((1.0 - momentum) * mean + momentum * m)
                var.assign((1.0 - momentum) * var + momentum * v * n / (n - 1.0))
            else:
                m, v = mean, var
            scale = gamma * tf.math.rsqrt(v + eps)
            return x * scale + (beta - m * scale)

        return bn

    @staticmethod
    def _lrn_ops(r: int, bias: float, alpha: float, beta: float) -> Fn:
        def lrn(xs: list[tf.Tensor], training: bool) -> tf.Tensor:
            x = xs[0]
            c = x.shape[-1]
            sq = tf.pad(tf.square(x), [[0, 0], [0, 0], [0, 0], [r, r]])
            window = tf.add_n([sq[..., i:i + c] for i in range(2 * r + 1)])
            return x / (bias + alpha * window) ** beta

        return lrn

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        acts: dict[str, tf.Tensor] = {"input": tf.cast(x, self.dtype)}
        out = acts["input"]
        for name, inputs, fn, free in self._plan:
            out = fn([acts[s] for s in inputs], training)
            acts[name] = out
            for s in free:
                del acts[s]
        # fp32 logits (and loss) under mixed precision; float64 stays float64.
        return tf.cast(out, tf.float64 if self.dtype == tf.float64 else tf.float32)


class TFModel:
    """What build() returns: the net, its device, and the lazily traced step functions."""

    def __init__(self, net: SpecNet, opts: BuildOptions, device: str,
                 strategy: tf.distribute.Strategy | None = None) -> None:
        self.net = net
        self.opts = opts
        self.device = device
        self.strategy = strategy  # (MultiWorker)MirroredStrategy of a data-parallel cell
        self.accums: list[tf.Variable] = []  # SGD momentum buffers, made with the train step
        # fp16: dynamic loss scale as Keras' LossScaleOptimizer (start 2^15, x2 per 2000 good
        # steps, /2 and skip the update on overflow).
        self.loss_scale: tf.Variable | None = None
        self.good_steps: tf.Variable | None = None
        self._train: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None
        self._infer: Callable[[tf.Tensor], tf.Tensor] | None = None

    def _compile(self, fn: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
        mode = self.opts.exec_mode
        if mode == "eager":
            return fn
        # autograph off: the step has no data-dependent Python control flow to convert.
        return tf.function(fn, jit_compile=mode == "xla", autograph=False)

    def _replicated(self, fn: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
        """fn run on every replica (its shard of the inputs), as one function."""
        strategy = self.strategy
        if strategy is None:
            return fn

        def run(*args: Any) -> Any:
            return strategy.run(fn, args=args)

        return run

    def infer_fn(self) -> Callable[[tf.Tensor], tf.Tensor]:
        if self._infer is None:
            net = self.net
            self._infer = self._compile(self._replicated(lambda x: net(x, training=False)))
        return self._infer

    def train_fn(self) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
        if self._train is None:
            # Variables are made outside any tf.function (mirrored under a strategy).
            scope = self.strategy.scope() if self.strategy else tf.device(self.device)
            with scope:
                self.accums = [tf.Variable(tf.zeros_like(v), trainable=False)
                               for v in self.net.trainable]
            self._train = self._compile(self._replicated(self._make_train_step()))
        return self._train

    def distribute(self, a: np.ndarray) -> Any:
        """A global batch on the model's device, or split over the replicas in order. Under
        MultiWorkerMirroredStrategy the replica ids and count span every worker, so each
        worker puts only its own rows on its device."""
        strategy = self.strategy
        if strategy is None:
            with tf.device(self.device):
                return tf.identity(tf.constant(a))
        n = strategy.num_replicas_in_sync
        per = a.shape[0] // n

        def shard(ctx: tf.distribute.InputContext) -> tf.Tensor:
            i = ctx.replica_id_in_sync_group
            return tf.constant(a[i * per:(i + 1) * per])

        return strategy.experimental_distribute_values_from_function(shard)

    def local(self, out: Any) -> list[tf.Tensor]:
        """Every replica's part of a result (one tensor without a strategy)."""
        return list(self.strategy.experimental_local_results(out)) if self.strategy else [out]

    def _make_train_step(self) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
        net, params, accums = self.net, self.net.trainable, self.accums
        lr = tf.constant(self.opts.lr, net.var_dtype)
        momentum = tf.constant(self.opts.momentum, net.var_dtype)
        scale, good = self.loss_scale, self.good_steps

        def apply(grads: list[tf.Tensor]) -> tf.Tensor:
            # PyTorch's SGD: buf = momentum * buf + grad; w -= lr * buf (Keras' formulation
            # is the same for a constant lr). One fused kernel per variable.
            for v, acc, g in zip(params, accums, grads, strict=True):
                tf.raw_ops.ResourceApplyMomentum(var=v.handle, accum=acc.handle, lr=lr, grad=g,
                                                 momentum=momentum)
            return tf.constant(True)

        def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                logits = net(x, training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
                scaled = loss if scale is None else loss * scale
            grads = tape.gradient(scaled, params)
            ctx = tf.distribute.get_replica_context()
            if ctx is not None and ctx.num_replicas_in_sync > 1:
                # The mean of the replicas' shard gradients: the global batch's gradient.
                grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
            if scale is None or good is None:
                apply(grads)
                return loss
            grads = [g / scale for g in grads]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            tf.cond(finite, lambda: apply(grads), lambda: tf.constant(False))
            n = tf.where(finite, good + 1, tf.zeros_like(good))
            grow = n >= 2000
            scale.assign(tf.where(finite, tf.where(grow, scale * 2.0, scale),
                                  tf.maximum(scale / 2.0, 1.0)))
            good.assign(tf.where(grow, tf.zeros_like(n), n))
            return loss

        return step


def _feature_guard_missing() -> dict[str, Any]:
    """The instructions TF's CPU feature guard says this binary was not compiled to use.

    The guard logs one INFO line at import, which TF_CPP_MIN_LOG_LEVEL (read once, set above
    to keep the terminal quiet) hides. So it is asked in a child process that loads only the
    guard's own extension (well under a second, against several for a full TF import).
    """
    guard = next((Path(tf.__file__).parent / "python" / "platform").glob(
        "_pywrap_cpu_feature_guard*.so"), None)
    if guard is None:
        return {"cpu_feature_guard_missing": None,
                "cpu_feature_guard_error": "no _pywrap_cpu_feature_guard in this build"}
    code = ("import importlib.util as u, sys; s = u.spec_from_file_location("
            "'_pywrap_cpu_feature_guard', sys.argv[1]); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); m.InfoAboutUnusedCPUFeatures()")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(guard)], env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"cpu_feature_guard_missing": None, "cpu_feature_guard_error": str(exc)}
    m = re.search(r"To enable the following instructions: ([A-Za-z0-9_ ]+?), in other",
                  proc.stderr)
    if m:
        return {"cpu_feature_guard_missing": m.group(1).split()}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()
        return {"cpu_feature_guard_missing": None,
                "cpu_feature_guard_error": tail[-1] if tail else f"exit {proc.returncode}"}
    return {"cpu_feature_guard_missing": []}  # the binary uses everything this CPU has


_GUARD: dict[str, Any] | None = None


def _onednn_enabled() -> bool:
    from tensorflow.python.util import _pywrap_util_port as port

    return bool(port.IsMklEnabled())


class TensorFlowAdapter(ClockedRanks, Adapter):
    name = "tensorflow"
    _strategies: ClassVar[dict[tuple[str, ...], tf.distribute.Strategy]] = {}
    # TF's eager runtime is synchronous by default: a tf.function call returns once its ops
    # have run on the CPU (on a GPU, once they are queued; hence the fetch in time_steps).
    async_dispatch_on_cpu = False

    def framework_version(self) -> str:
        return str(tf.__version__)

    def setup_devices(self, device: str) -> None:
        if base.tf_workers() is not None:
            self._check_worker_device(device)
            return
        ds = base.device_set(device)
        if ds.simulated and ds.indices is not None:
            # Logical CPU devices exist only if made before the runtime starts (the first op).
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * len(ds.indices))

    @staticmethod
    def _check_worker_device(device: str) -> None:
        """Unsupported unless ``device`` is what a TF_CONFIG worker runs on here: ``cpu``."""
        if device == "cpu":
            return
        why = ("several CPU devices per worker are not" if base.device_set(device).kind == "cpu"
               else "GPU workers are not")
        raise Unsupported(f"under TF_CONFIG each worker runs on device cpu (one CPU device per "
                          f"worker is what is tested; {why} tested here), not {device}")

    def _worker_strategy(self) -> tf.distribute.Strategy:
        """The MultiWorkerMirroredStrategy of the TF_CONFIG cluster, made once per process
        (it joins the cluster; a second one would configure the collectives again)."""
        key = ("TF_CONFIG",)
        if key not in self._strategies:
            # RING: TF's own collectives over gRPC, which run on the CPU (NCCL needs GPUs).
            options = tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING)
            try:
                self._strategies[key] = tf.distribute.MultiWorkerMirroredStrategy(
                    communication_options=options)
            except RuntimeError as exc:  # the runtime had started: too late to configure
                raise Unsupported("MultiWorkerMirroredStrategy must be made before TensorFlow's "
                                  f"runtime starts (setup() does): {exc}") from None
        return self._strategies[key]

    def _strategy(self, device: str) -> tf.distribute.Strategy | None:
        if base.tf_workers() is not None:
            self._check_worker_device(device)
            return self._worker_strategy()
        ds = base.device_set(device)
        if not ds.parallel:
            return None
        if ds.kind == "cpu":
            assert ds.indices is not None
            have = tf.config.list_logical_devices("CPU")
            if len(have) < len(ds.indices):
                raise Unsupported(f"{device} needs {len(ds.indices)} logical CPU devices and "
                                  f"TensorFlow has {len(have)} (setup_devices makes them)")
            names = [d.name for d in have[:len(ds.indices)]]
        else:
            gpus = tf.config.list_logical_devices("GPU")
            if not gpus:
                raise Unsupported("TensorFlow sees no GPU (a tensorflow-cpu build, or no CUDA "
                                  "device visible); install tensorflow[and-cuda] on a CUDA "
                                  "machine")
            idx = ds.indices if ds.indices is not None else tuple(range(len(gpus)))
            if max(idx) >= len(gpus):
                raise Unsupported(f"no GPU {max(idx)} (TensorFlow sees {len(gpus)})")
            names = [gpus[i].name for i in idx]
        # One strategy per device set and process: a second MirroredStrategy over the same
        # devices reuses its collectives' instance keys, and its all-reduce then meets the
        # first one's ("Shape mismatch in the collective instance").
        key = tuple(names)
        if key not in self._strategies:
            self._strategies[key] = tf.distribute.MirroredStrategy(devices=names)
        return self._strategies[key]

    def setup(self, threads: int | None) -> Threads:
        if threads:
            # Settable only before the runtime starts (the first op); the worker calls this
            # first. A single model has no inter-op parallelism worth a second pool.
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        if base.tf_workers() is not None:
            # After the thread counts (the strategy copies the config into its server) and
            # before the first op; this waits until every worker has joined.
            self._worker_strategy()
        return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}

    def build_facts(self) -> dict[str, Any]:
        global _GUARD
        if _GUARD is None:
            _GUARD = _feature_guard_missing()
        info = dict(tf.sysconfig.get_build_info())
        facts: dict[str, Any] = {
            "version": tf.__version__,
            "build_info": info,
            # oneDNN's default is on only where the CPU has AVX512_VNNI, AVX512_BF16,
            # AVX_VNNI or AMX (TF's IsMKLEnabled); TF_ENABLE_ONEDNN_OPTS overrides it. TF
            # bundles oneDNN into its own library and reports no version of it at run time.
            "onednn": {"enabled": _onednn_enabled(), "version": None},
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            **_GUARD,
            "cuda": info.get("cuda_version"),
            "cudnn": info.get("cudnn_version"),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            **self.math_facts(),
        }
        return facts

    def math_facts(self) -> dict[str, Any]:
        # TF32 matters on NVIDIA GPUs only (it is switched off when the adapter loads);
        # TF_SET_ONEDNN_FPMATH_MODE=BF16 lets TF's oneDNN matmuls and convolutions compute
        # fp32 in bf16 (on CPUs with AMX).
        tf32 = bool(tf.config.experimental.tensor_float_32_execution_enabled())
        fpmath = os.environ.get("TF_SET_ONEDNN_FPMATH_MODE", "").strip()
        reduced: dict[str, Any] = {"tensor_float_32_execution": True} if tf32 else {}
        if fpmath and fpmath.upper() != "STRICT":
            reduced["TF_SET_ONEDNN_FPMATH_MODE"] = fpmath
        return {"math": {"tensor_float_32_execution": tf32,
                         "TF_SET_ONEDNN_FPMATH_MODE": fpmath or None},
                "math_mode": base.math_mode(reduced)}

    def compiler_facts(self) -> dict[str, Any]:
        return {"xla_target": "the host CPU (the xla mode JIT-compiles for the machine it runs on)"}

    def device_name(self, device: str) -> str:
        if base.device_set(device).kind == "cpu":
            return base.cpu_model_name()
        device = str(base.device_set(device).base)
        self._device(device)  # refuses a GPU TensorFlow does not see, with the reason
        gpu = tf.config.list_physical_devices("GPU")[base.gpu_index(device) or 0]
        return str(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, (tf.errors.ResourceExhaustedError, MemoryError))

    @staticmethod
    def _tf_gpu(device: str) -> str:
        return "GPU:" + device[4:].split("+")[0].replace("all", "0")

    def reset_device_peak(self, device: str) -> None:
        if base.device_set(device).kind == "gpu":
            tf.config.experimental.reset_memory_stats(self._tf_gpu(device))

    def device_peak_bytes(self, device: str) -> int | None:
        if base.device_set(device).kind != "gpu":
            return None
        return int(tf.config.experimental.get_memory_info(self._tf_gpu(device))["peak"])

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _device(device: str) -> str:
        idx = base.gpu_index(device)
        if idx is None:
            return "/CPU:0"
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            raise Unsupported("TensorFlow sees no GPU (a tensorflow-cpu build, or no CUDA "
                              "device visible); install tensorflow[and-cuda] on a CUDA machine")
        if idx >= len(gpus):
            raise Unsupported(f"no GPU {idx} (TensorFlow sees {len(gpus)})")
        return f"/GPU:{idx}"

    @staticmethod
    def _gpu_math(device: str) -> None:
        if device.startswith("/GPU"):
            # fp32 means true fp32: TF runs fp32 matmuls and convs as TF32 on Ampere and later.
            tf.config.experimental.enable_tensor_float_32_execution(False)

    @staticmethod
    def _nhwc(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x

    # -- model -------------------------------------------------------------------------
    def build(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> TFModel:
        self.check_options(opts)
        strategy = self._strategy(opts.device)
        if strategy is not None and opts.exec_mode == "xla":
            raise Unsupported("xla (jit_compile) with MirroredStrategy is not supported here: "
                              "use graph for data parallel")
        if strategy is not None and opts.precision == "fp16":
            raise Unsupported("fp16 loss scaling is not written for MirroredStrategy")
        device = self._device(str(base.device_set(opts.device).base))
        p = opts.precision
        self._gpu_math(device)
        with strategy.scope() if strategy else tf.device(device):
            net = SpecNet(spec, COMPUTE_DTYPES[p], opts.dtype == "float64")
            model = TFModel(net, opts, device, strategy)
            self.load_weights(model, weights)
            if p == "fp16":
                model.loss_scale = tf.Variable(2.0**15, trainable=False)
                model.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        if opts.mode == "train":
            model.train_fn()
        return model

    def load_weights(self, model: TFModel, weights: Weights) -> None:
        net = model.net
        for key, arr in weights.items():
            v = net.variables_by_key[key]
            native = net.layouts[key][0](np.asarray(arr, net.var_dtype.as_numpy_dtype))
            if tuple(v.shape) != native.shape:
                raise ValueError(f"{key}: model shape {tuple(v.shape)} != {native.shape}")
            v.assign(native)

    def export_weights(self, model: TFModel) -> Weights:
        return self.replica_weights(model)[0]

    def replica_weights(self, model: TFModel) -> list[Weights]:
        """Every replica's copy of the (mirrored) variables."""
        net = model.net
        copies = {key: model.local(v) for key, v in net.variables_by_key.items()}
        n = len(next(iter(copies.values())))
        return [{key: np.ascontiguousarray(net.layouts[key][1](vs[i].numpy()), dtype=np.float32)
                 for key, vs in copies.items()} for i in range(n)]

    def num_params(self, model: TFModel) -> int:
        return sum(int(np.prod(v.shape)) for v in model.net.trainable_variables)

    def predict(self, model: TFModel, x: np.ndarray) -> np.ndarray:
        with tf.device(model.device):
            out = model.infer_fn()(tf.constant(self._nhwc(x)))
        return np.asarray(out.numpy(), dtype=np.float32)

    def train_step(self, model: TFModel, x: np.ndarray, y: np.ndarray) -> float:
        step = model.train_fn()
        with tf.device(model.device):
            loss = step(model.distribute(self._nhwc(x)), model.distribute(y))
        if model.strategy is None:
            return float(loss.numpy())
        # The global batch's loss: the mean of the replicas' shard losses (equal shards), over
        # every worker's replica under TF_CONFIG, which makes it a collective there.
        return float(model.strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None).numpy())

    # -- benchmark ---------------------------------------------------------------------
    def _worker_allsum(self) -> Callable[[np.ndarray], np.ndarray]:
        """A float64 vector summed over every worker: an all-reduce in the strategy's own
        collectives (one replica per worker)."""
        strategy = self._worker_strategy()

        @tf.function
        def reduce(v: tf.Tensor) -> Any:
            def one(v: tf.Tensor) -> tf.Tensor:
                ctx = tf.distribute.get_replica_context()
                # A tensor of the replica's own: the argument itself lives on no device.
                return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(v))
            return strategy.run(one, args=(v,))

        def allsum(v: np.ndarray) -> np.ndarray:
            out = reduce(tf.constant(v, dtype=tf.float64))
            return np.asarray(strategy.experimental_local_results(out)[0].numpy())

        return allsum

    def prepare(self, model: TFModel, x: np.ndarray, y: np.ndarray,
                sync: bool = True) -> TimeSteps:
        time_steps = self._prepare(model, x, y, sync)
        workers = base.tf_workers()
        if workers is None:
            return time_steps
        self._clock = RankClock(workers[0], workers[1], self._worker_allsum())
        self._inner = time_steps
        return self._clock.driven(time_steps)

    def _prepare(self, model: TFModel, x: np.ndarray, y: np.ndarray,
                 sync: bool) -> TimeSteps:
        xt, yt = model.distribute(self._nhwc(x)), model.distribute(y)
        device = model.device
        local = model.local
        clock = time.perf_counter

        if model.opts.mode == "train":
            train = model.train_fn()

            def step() -> tf.Tensor:
                return train(xt, yt)
        else:
            infer = model.infer_fn()

            def step() -> tf.Tensor:
                return infer(xt)

        def time_steps(n: int) -> float:
            t0 = clock()
            with tf.device(device):
                for _ in range(n):
                    out = step()
                if sync:
                    # Fetching the last result to the host waits for the device: asynchronous
                    # execution cannot flatter the figure. Every replica's, with several.
                    for t in local(out):
                        t.numpy()
            return clock() - t0

        return time_steps

    def prepare_gemm(self, n: int, opts: BuildOptions) -> TimeSteps:
        self.check_precision(opts)
        device = self._device(opts.device)
        dtype = COMPUTE_DTYPES[opts.precision]
        self._gpu_math(device)
        rng = np.random.default_rng(0)
        with tf.device(device):
            a = tf.cast(tf.constant(rng.standard_normal((n, n), dtype=np.float32)), dtype)
            b = tf.cast(tf.constant(rng.standard_normal((n, n), dtype=np.float32)), dtype)
        clock = time.perf_counter

        def time_steps(k: int) -> float:
            t0 = clock()
            with tf.device(device):
                for _ in range(k):
                    out = tf.matmul(a, b)
                out[0, 0].numpy()  # waits for the device
            return clock() - t0

        return time_steps


# fp32 means fp32 (adapters.base.FP32_MATH): TF runs fp32 matmuls and convolutions as TF32 on
# Ampere and later GPUs unless this is off. A global flag, harmless on the CPU.
tf.config.experimental.enable_tensor_float_32_execution(False)
ADAPTER = TensorFlowAdapter()

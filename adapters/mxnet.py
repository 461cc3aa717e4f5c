"""MXNet/Gluon adapter: a spec becomes one HybridBlock that walks the layer graph.

MXNet 1.9.1 is the last release of a retired framework and needs numpy<1.24, so it lives in
its own environment (tox -e mxnet). Layout is NCHW with canonical weights as-is (Conv2D OIHW
and Dense (out, in) are Gluon's own layouts). Symmetric padding goes into the conv/pool
itself (so oneDNN sees one op); asymmetric padding is an explicit pad op, or, for max-pools
whose extra padding is only at the bottom/right, Pooling's "full" convention, which clips
windows at the edge exactly as -inf padding would. Two spec conventions MXNet does not share
are made good here: batch norm's running variance is moved to the unbiased batch variance after
each step (_UnbiasedRunningVar), and LRN is built from plain ops (see _lrn_fn for why).
Precision: fp32, and fp16 (cast with fp32 master weights) on CUDA builds. BuildOptions.dtype
"float64" runs an fp32 model in float64 on the CPU: the conformance suite's check of the
translation free of rounding, not a benchmark.
Execution: eager (imperative Gluon) or hybrid (hybridize with static_alloc/static_shape).

Data parallel (a device set: cpu*N, gpu:0+1): the parameters live on a list of contexts
(mx.cpu(0..N-1) share the same cores), gluon.utils.split_and_load gives each its shard of the
global batch, and the Trainer's kvstore ("local" on the CPU, "device" on GPUs) sums the
gradients and hands every context the same update. With one context Gluon makes no kvstore.
Batch norm normalises each context's shard, and each context keeps its own running
statistics (they are no gradients, so the kvstore leaves them alone); context 0's are
exported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from workloads import Layer, WorkloadSpec

from . import base, padding
from .base import Adapter, BuildOptions, Threads, TimeSteps, Unsupported, Weights

# Canonical batch-norm names -> Gluon's.
_BN_PARAMS = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean",
              "running_var": "running_var"}
# multi_sgd_update packs its arguments into fixed arrays of 60 (MultiSGDKernelParam::N);
# more than that per call overruns them and crashes the process.
_MULTI_MAX = 50


def _padded(pad: padding.Padding, value: float, op: gluon.HybridBlock) -> gluon.HybridBlock:
    return op if pad.explicit is None else _PadThen(pad.explicit, value, op)


class _PadThen(gluon.HybridBlock):
    """Explicit padding followed by an op that takes no padding of its own."""

    def __init__(self, pad: padding.Pad, value: float, op: gluon.HybridBlock) -> None:
        super().__init__()
        pt, pb, pl, pr = pad
        # mx pad works on 4D inputs in constant mode, with zero padding of N and C.
        self.pad_width = (0, 0, 0, 0, pt, pb, pl, pr)
        self.value = value
        with self.name_scope():
            self.op = op

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return self.op(F.pad(x, mode="constant", pad_width=self.pad_width,
                             constant_value=self.value))


class SpecNet(gluon.HybridBlock):
    """Executes a WorkloadSpec. Child blocks are named after the spec's layers."""

    def __init__(self, spec: WorkloadSpec) -> None:
        super().__init__()
        self.spec = spec
        shapes = spec.shapes()
        self._blocks: dict[str, gluon.HybridBlock] = {}
        with self.name_scope():
            for layer in spec.layers:
                block = self._make(layer, shapes[layer.inputs[0]], shapes[layer.name])
                self.register_child(block, layer.name)
                self._blocks[layer.name] = block
        self._plan = [(s.layer.name, s.inputs, s.free) for s in spec.schedule()]

    @staticmethod
    def _make(layer: Layer, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
              ) -> gluon.HybridBlock:
        a, op = layer.attrs, layer.op
        if op == "conv2d":
            pad = padding.for_conv(a["padding"])
            return _padded(pad, 0.0, nn.Conv2D(
                a["out_channels"], a["kernel"], a["stride"], padding=pad.native,
                groups=a["groups"], use_bias=a["bias"], in_channels=in_shape[0]))
        if op == "batchnorm":
            # Gluon's momentum is the weight of the *old* running statistic.
            return nn.BatchNorm(momentum=1.0 - a["momentum"], epsilon=a["eps"],
                                in_channels=in_shape[0])
        if op == "relu":
            return nn.Activation("relu")
        if op == "relu6":
            return nn.HybridLambda(lambda F, x: F.clip(x, 0.0, 6.0))
        if op == "maxpool":
            pad = padding.for_maxpool(a["padding"], a["kernel"])
            full = None if pad.explicit is None else padding.ceil_mode_pad(
                a["padding"], a["kernel"], a["stride"], in_shape[1:3])
            if full is not None:
                return nn.MaxPool2D(a["kernel"], a["stride"], padding=full, ceil_mode=True)
            return _padded(pad, float("-inf"),
                           nn.MaxPool2D(a["kernel"], a["stride"], padding=pad.native))
        if op == "avgpool":
            return nn.AvgPool2D(a["kernel"], a["stride"])
        if op == "global_avgpool":
            seq = nn.HybridSequential()
            seq.add(nn.GlobalAvgPool2D(), nn.Flatten())
            return seq
        if op == "lrn":
            return nn.HybridLambda(_lrn_fn(a["depth_radius"], a["bias"], a["alpha"], a["beta"], in_shape))
        if op == "flatten":
            return nn.Flatten()  # C-major over (C, H, W), as the spec defines it
        if op == "dense":
            return nn.Dense(a["out_features"], use_bias=a["bias"], flatten=False,
                            in_units=in_shape[0])
        if op == "dropout":
            return nn.Dropout(a["rate"])
        if op == "add":
            return nn.HybridLambda(lambda F, x, y: F.elemwise_add(x, y))
        if op == "pad_channels":
            return nn.HybridLambda(_pad_channels_fn(a["stride"], a["before"], a["after"], out_shape))
        raise Unsupported(f"mxnet adapter has no op {op!r}")

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        acts: dict[str, Any] = {"input": x}
        out = x
        for name, inputs, free in self._plan:
            out = self._blocks[name](*[acts[s] for s in inputs])
            acts[name] = out
            for s in free:
                del acts[s]
        return out

    # canonical weights <-> Gluon parameters
    def param_for(self, key: str) -> gluon.Parameter:
        layer, param = key.rsplit("/", 1)
        block = self._blocks[layer]
        if isinstance(block, _PadThen):
            block = block.op
        if isinstance(block, nn.BatchNorm):
            param = _BN_PARAMS[param]
        p: gluon.Parameter = getattr(block, param)
        return p


def _lrn_fn(radius: int, bias: float, alpha: float, beta: float, shape: tuple[int, ...]
            ) -> Callable[..., Any]:
    """TF's LRN built from plain ops: an average pool of x^2 across channels, as PyTorch's
    LocalResponseNorm does it.

    MXNet's own LRN op runs on oneDNN, whose LRN backward gives wrong gradients (0.3-1%) when
    its neighbours hand it blocked layouts (after a conv, before a pool, in eager and hybrid
    mode); with MXNET_MKLDNN_ENABLED=0 it is right. Its forward is right, but one graph must
    serve training and inference, so we never use it.
    """
    c, h, w = shape
    size = 2 * radius + 1

    def fn(F: Any, x: Any) -> Any:
        sq = F.reshape(F.square(x), shape=(0, 1, c, h * w))  # channels become a pool axis
        avg = F.Pooling(sq, kernel=(size, 1), stride=(1, 1), pad=(radius, 0), pool_type="avg",
                        count_include_pad=True)
        avg = F.reshape(avg, shape=(0, c, h, w))
        return x * ((avg * (alpha * size) + bias) ** (-beta))

    return fn


def _pad_channels_fn(stride: int, before: int, after: int, out_shape: tuple[int, ...]
                     ) -> Callable[..., Any]:
    c_out, h, w = out_shape
    c_in = c_out - before - after

    def fn(F: Any, x: Any) -> Any:
        x = F.slice(x, begin=(None,) * 4, end=(None,) * 4, step=(1, 1, stride, stride))
        # mx pad only pads the last two axes of a 4D tensor: fold (C, H*W) into them.
        x = F.reshape(x, shape=(0, 1, c_in, h * w))
        x = F.pad(x, mode="constant", pad_width=(0, 0, 0, 0, before, after, 0, 0),
                  constant_value=0.0)
        return F.reshape(x, shape=(0, c_out, h, w))

    return fn


class _UnbiasedRunningVar:
    """Makes batch norm's running variance use the unbiased batch variance, as PyTorch does.

    MXNet updates running_var with the biased batch variance v_b:
        r1 = a r0 + (1 - a) v_b,       a = Gluon momentum.
    The spec (PyTorch's convention) wants (1 - a) v_b n/(n-1), n = values per channel, i.e.
        r1' = r1 + (r1 - a r0) / (n - 1) = (1 + k) r1 - a k r0,   k = 1/(n-1).
    We keep a copy of r0 before each step and apply that fix after it, each as one fused
    multi_sgd_update call (w - lr*(g + wd*w) is the affine map we need) per 50 layers.
    """

    def __init__(self, block: SpecNet, ctx: mx.Context) -> None:
        spec = block.spec
        shapes = spec.shapes()
        self.items: list[tuple[mx.nd.NDArray, mx.nd.NDArray, float, int]] = []
        for layer in spec.layers:
            if layer.op != "batchnorm":
                continue
            rv = block.param_for(f"{layer.name}/running_var").data(ctx)
            per_image = int(np.prod(shapes[layer.inputs[0]][1:]))  # H*W, or 1 after dense
            self.items.append((rv, mx.nd.zeros_like(rv), 1.0 - layer.attrs["momentum"],
                               per_image))
        self._coef: dict[int, list[tuple[tuple[float, ...], tuple[float, ...]]]] = {}

    def _chunks(self) -> range:
        return range(0, len(self.items), _MULTI_MAX)

    def before(self) -> None:
        for i in self._chunks():
            chunk = self.items[i:i + _MULTI_MAX]
            zero = (0.0,) * len(chunk)
            args = [t for rv, _, _, _ in chunk for t in (rv, rv)]
            mx.nd.multi_sgd_update(*args, lrs=zero, wds=zero, num_weights=len(chunk),
                                   out=[r0 for _, r0, _, _ in chunk])

    def after(self, batch: int) -> None:
        coef = self._coef.get(batch)
        if coef is None:
            coef = self._coef[batch] = []
            for i in self._chunks():
                lrs, wds = [], []
                for _, _, a, per_image in self.items[i:i + _MULTI_MAX]:
                    n = batch * per_image
                    k = 1.0 / (n - 1) if n > 1 else 0.0
                    # weight = r0, grad = r1:  r0 - lr*(r1 + wd*r0) = (1+k) r1 - a k r0
                    lr = -(1.0 + k)
                    lrs.append(lr)
                    wds.append((1.0 + a * k) / lr)
                coef.append((tuple(lrs), tuple(wds)))
        for i, (chunk_lrs, chunk_wds) in zip(self._chunks(), coef, strict=True):
            chunk = self.items[i:i + _MULTI_MAX]
            args = [t for rv, r0, _, _ in chunk for t in (r0, rv)]
            mx.nd.multi_sgd_update(*args, lrs=chunk_lrs, wds=chunk_wds, num_weights=len(chunk),
                                   out=[rv for rv, _, _, _ in chunk])


class MXModel:
    """What build() returns: the block, the loss, the trainer and the step state."""

    def __init__(self, block: SpecNet, opts: BuildOptions, ctxs: list[mx.Context]) -> None:
        self.block = block
        self.opts = opts
        self.ctxs = ctxs  # one context, or the data-parallel replicas'
        self.ctx = ctxs[0]
        self.dtype = "float16" if opts.precision == "fp16" else "float32"
        if opts.dtype == "float64":
            self.dtype = "float64"
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer: gluon.Trainer | None = None
        self.bn_fixes: list[_UnbiasedRunningVar] = []  # one per context


class MXNetAdapter(Adapter):
    name = "mxnet"
    # MXNet's engine queues every op and returns at once, on the CPU too.
    async_dispatch_on_cpu = True

    def framework_version(self) -> str:
        return str(mx.__version__)

    # What setup() could not apply (reported in build_facts), or None.
    _threads_note: str | None = None

    def setup(self, threads: int | None) -> Threads:
        # MXNet sizes its OpenMP pool when it is imported, from OMP_NUM_THREADS (the runner
        # sets it in the worker's environment); without it MXNet takes half the visible CPUs.
        # Nothing here can change it afterwards, so report what is in force.
        env = os.environ
        if env.get("MXNET_OMP_MAX_THREADS"):
            omp = int(env["MXNET_OMP_MAX_THREADS"])
        elif env.get("OMP_NUM_THREADS"):
            omp = int(env["OMP_NUM_THREADS"].split(",")[0])
        else:
            omp = max(1, len(os.sched_getaffinity(0)) // 2)
        if threads and threads != omp:
            self._threads_note = (f"{threads} threads requested but MXNet runs {omp}: it reads "
                                  "OMP_NUM_THREADS at import")
        # The engine's CPU worker threads are what runs independent ops concurrently.
        return {"intra_op": omp,
                "inter_op": int(env.get("MXNET_CPU_WORKER_NTHREADS", "1"))}

    def build_facts(self) -> dict[str, Any]:
        features = {name: bool(f.enabled) for name, f in mx.runtime.Features().items()}
        mkldnn_env = os.environ.get("MXNET_MKLDNN_ENABLED")
        facts: dict[str, Any] = {
            "version": mx.__version__,
            "features": features,
            # What its own code was compiled for (CPU_SSE..CPU_AVX2, F16C), apart from the
            # oneDNN it bundles, which picks its ISA at run time.
            "compiled_for": sorted(k.removeprefix("CPU_") for k, on in features.items()
                                   if on and (k.startswith("CPU_") or k == "F16C")),
            "cuda": features.get("CUDA", False),
            "cudnn": features.get("CUDNN", False),
            # oneDNN is compiled in, and MXNET_MKLDNN_ENABLED=0 switches it off at run time.
            # MXNet reports no version of the oneDNN it bundles.
            "onednn": {"enabled": features.get("MKLDNN", False) and mkldnn_env != "0",
                       "version": None},
            "MXNET_MKLDNN_ENABLED": mkldnn_env,
            "DNNL_MAX_CPU_ISA": os.environ.get("DNNL_MAX_CPU_ISA"),
            "gpus": self._num_gpus() if features.get("CUDA") else 0,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "threads_note": self._threads_note,
            **self.math_facts(),
        }
        return facts

    def math_facts(self) -> dict[str, Any]:
        # MXNet has no fp32-precision switch of its own on the CPU; its bundled oneDNN reads
        # DNNL_DEFAULT_FPMATH_MODE (counted by base.math_mode), and on CUDA these two together
        # let fp32 convolutions run on fp16 tensor cores.
        env = {v: os.environ.get(v) for v in ("MXNET_CUDA_ALLOW_TENSOR_CORE",
                                              "MXNET_CUDA_TENSOR_OP_MATH_ALLOW_CONVERSION")}
        conversion = env["MXNET_CUDA_TENSOR_OP_MATH_ALLOW_CONVERSION"] == "1"
        return {"math": {**env, "switch": "none on the CPU (oneDNN's fpmath variable only)"},
                "math_mode": base.math_mode({"MXNET_CUDA_TENSOR_OP_MATH_ALLOW_CONVERSION": "1"}
                                       if conversion else {})}

    def device_name(self, device: str) -> str:
        if base.device_set(device).kind == "cpu":
            return base.cpu_model_name()
        ctx = self._contexts(device)[0]
        try:
            return f"GPU {ctx.device_id} (sm_{mx.util.get_cuda_compute_capability(ctx)})"
        except (OSError, RuntimeError, ValueError):
            return device

    def is_oom(self, exc: BaseException) -> bool:
        if isinstance(exc, MemoryError):
            return True
        msg = str(exc)
        return isinstance(exc, mx.base.MXNetError) and (
            "out of memory" in msg or "Failed to allocate" in msg)

    def device_peak_bytes(self, device: str) -> int | None:
        # MXNet 1.9 keeps no peak: gpu_memory_info gives (free, total) now, so this is the
        # memory in use after the rounds, its pool included (a lower bound of the peak).
        if base.device_set(device).kind != "gpu":
            return None
        free, total = mx.context.gpu_memory_info(self._contexts(device)[0].device_id)
        return int(total - free)

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _num_gpus() -> int:
        try:
            return int(mx.context.num_gpus())
        except mx.base.MXNetError:  # a CUDA build on a machine without a driver
            return 0

    def _device(self, device: str) -> mx.Context:
        idx = base.gpu_index(device)
        if idx is None:
            return mx.cpu()
        if not mx.runtime.Features().is_enabled("CUDA"):
            raise Unsupported("this MXNet build has no CUDA (mx.runtime.Features CUDA off)")
        n = self._num_gpus()
        if idx >= n:
            raise Unsupported(f"no CUDA device {idx} (MXNet sees {n})")
        ctx = mx.gpu(idx)
        try:
            # A GPU newer than the build's CUDA architectures fails at the first kernel.
            mx.nd.Convolution(mx.nd.ones((1, 1, 3, 3), ctx=ctx), mx.nd.ones((1, 1, 3, 3), ctx=ctx),
                              kernel=(3, 3), num_filter=1, no_bias=True).asnumpy()
        except mx.base.MXNetError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Unsupported(f"MXNet {mx.__version__} cannot run kernels on GPU {idx} "
                              f"(its CUDA build may predate this GPU): {first}") from exc
        return ctx

    def setup_devices(self, device: str) -> None:
        pass  # contexts need no set-up: mx.cpu(i) are names for the same CPU

    def _contexts(self, device: str) -> list[mx.Context]:
        ds = base.device_set(device)
        if not ds.parallel:
            return [self._device(device)]
        if ds.kind == "cpu":
            assert ds.indices is not None
            return [mx.cpu(i) for i in ds.indices]
        idx = ds.indices if ds.indices is not None else tuple(range(self._num_gpus()))
        if not idx:
            raise Unsupported("MXNet sees no GPU")
        return [self._device(f"gpu:{i}") for i in idx]

    @staticmethod
    def _sync() -> None:
        # MXNet's engine is asynchronous: every op returns before it has run.
        mx.nd.waitall()

    # -- model -------------------------------------------------------------------------
    def build(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> MXModel:
        self.check_options(opts)
        ctxs = self._contexts(opts.device)
        p = opts.precision
        block = SpecNet(spec)
        # Every shape is known, so this allocates at once; the weights then overwrite it.
        block.initialize(mx.init.Zero(), ctx=ctxs)
        model = MXModel(block, opts, ctxs)
        self.load_weights(model, weights)
        if model.dtype != "float32":
            block.cast(model.dtype)  # for float16 Gluon keeps batch norm's parameters fp32
        if opts.exec_mode == "hybrid":
            block.hybridize(static_alloc=True, static_shape=True)
            model.loss.hybridize(static_alloc=True, static_shape=True)
        if opts.mode == "train":
            # MXNet's SGD keeps mom = momentum*mom - lr*grad and adds it; with a constant lr
            # that is PyTorch's update (buf = momentum*buf + grad; w -= lr*buf).
            # Several contexts: the kvstore sums their gradients ("device" reduces on a GPU).
            kv = "device" if ctxs[0].device_type == "gpu" else "local"
            model.trainer = gluon.Trainer(
                block.collect_params(), "sgd",
                {"learning_rate": opts.lr, "momentum": opts.momentum, "wd": 0.0,
                 "multi_precision": p == "fp16"}, kvstore=kv)
            model.bn_fixes = [_UnbiasedRunningVar(block, c) for c in ctxs]
        return model

    def load_weights(self, model: MXModel, weights: Weights) -> None:
        for key, arr in weights.items():
            param = model.block.param_for(key)
            if tuple(param.shape) != arr.shape:
                raise ValueError(f"{key}: model shape {tuple(param.shape)} != {arr.shape}")
            param.set_data(mx.nd.array(arr, ctx=model.ctx, dtype=param.dtype))

    def export_weights(self, model: MXModel) -> Weights:
        return self._weights_on(model, model.ctx)

    def _weights_on(self, model: MXModel, ctx: mx.Context) -> Weights:
        return {p.key: model.block.param_for(p.key).data(ctx).asnumpy()
                .astype(np.float32, copy=True) for p in model.block.spec.param_infos()}

    def replica_weights(self, model: MXModel) -> list[Weights]:
        return [self._weights_on(model, c) for c in model.ctxs]

    def num_params(self, model: MXModel) -> int:
        return sum(int(np.prod(p.shape)) for p in model.block.collect_params().values()
                   if p.grad_req != "null")

    def _inputs(self, model: MXModel, x: np.ndarray, y: np.ndarray | None = None
                ) -> tuple[mx.nd.NDArray, mx.nd.NDArray | None]:
        xt = mx.nd.array(x, ctx=model.ctx, dtype=model.dtype)
        # Gluon's loss picks the label's class with float indices.
        yt = None if y is None else mx.nd.array(y, ctx=model.ctx, dtype="float32")
        return xt, yt

    def predict(self, model: MXModel, x: np.ndarray) -> np.ndarray:
        xt, _ = self._inputs(model, x)
        out: np.ndarray = model.block(xt).asnumpy()  # not recording: running BN statistics
        return out.astype(np.float32)

    def _shards(self, model: MXModel, x: np.ndarray, y: np.ndarray
                ) -> tuple[list[mx.nd.NDArray], list[mx.nd.NDArray]]:
        """Each context's part of the global batch (split_and_load: equal slices, in order)."""
        xt, yt = self._inputs(model, x, y)
        assert yt is not None
        if len(model.ctxs) == 1:
            return [xt], [yt]
        return (gluon.utils.split_and_load(xt, model.ctxs, even_split=True),
                gluon.utils.split_and_load(yt, model.ctxs, even_split=True))

    def _train_once(self, model: MXModel, xs: list[mx.nd.NDArray], ys: list[mx.nd.NDArray]
                    ) -> list[mx.nd.NDArray]:
        trainer, bn_fixes = model.trainer, model.bn_fixes
        assert trainer is not None and bn_fixes, "build with mode='train' to train"
        batch = sum(x.shape[0] for x in xs)
        for fix in bn_fixes:
            fix.before()
        with autograd.record():
            losses = []
            for x, y in zip(xs, ys, strict=True):
                logits = model.block(x)
                if model.dtype == "float16":
                    logits = logits.astype("float32")
                losses.append(model.loss(logits, y))  # per sample
        # backward() of the per-sample losses sums their gradients; step(batch) rescales by
        # 1/batch (the global batch, after the kvstore has summed the contexts), which gives
        # the gradient of the mean loss (PyTorch's reduction).
        autograd.backward(losses)
        trainer.step(batch)
        for fix, x in zip(bn_fixes, xs, strict=True):
            fix.after(x.shape[0])  # each context's statistics came from its own shard
        return losses

    def train_step(self, model: MXModel, x: np.ndarray, y: np.ndarray) -> float:
        xs, ys = self._shards(model, x, y)
        losses = self._train_once(model, xs, ys)
        return float(np.mean(np.concatenate([loss.asnumpy() for loss in losses])))

    # -- benchmark ---------------------------------------------------------------------
    def prepare(self, model: MXModel, x: np.ndarray, y: np.ndarray, sync: bool = True
                ) -> TimeSteps:
        xs, ys = self._shards(model, x, y)
        self._sync()

        if model.opts.mode == "train":
            train_once = self._train_once

            def step() -> None:
                train_once(model, xs, ys)
        else:
            block = model.block

            def step() -> None:
                for xt in xs:  # queued on every context; the wait covers them all
                    block(xt)

        return self.timed_loop(step, self._sync if sync else (lambda: None))

    def prepare_gemm(self, n: int, opts: BuildOptions) -> TimeSteps:
        self.check_precision(opts)
        ctx = self._device(opts.device)
        p = opts.precision
        dtype = "float16" if p == "fp16" else "float32"
        rng = np.random.default_rng(0)
        a = mx.nd.array(rng.standard_normal((n, n)), ctx=ctx, dtype=dtype)
        b = mx.nd.array(rng.standard_normal((n, n)), ctx=ctx, dtype=dtype)
        out = mx.nd.empty((n, n), ctx=ctx, dtype=dtype)
        self._sync()
        return self.timed_loop(lambda: mx.nd.dot(a, b, out=out), self._sync)


ADAPTER = MXNetAdapter()

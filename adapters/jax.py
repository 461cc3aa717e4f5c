"""JAX adapter: a spec becomes one Flax (linen) module; optax SGD; jitted steps with donated state.

Layout is NHWC inside (XLA's CPU and GPU convolutions want channels last): the NCHW batch is
transposed once on the host, conv weights OIHW <-> HWIO and dense (out, in) <-> (in, out) on
import and export. Padding is explicit everywhere. Batch norm is written here, not Flax's,
because the spec follows PyTorch: running_var takes the *unbiased* batch variance and
momentum weighs the new statistic (Flax uses the biased variance and 1 - momentum).
Precision: fp32 (HIGHEST, so GPUs do not quietly use TF32) or bf16 compute with fp32
parameters. Execution: "jit" (one XLA executable per step, compiled ahead of time in
prepare() so the compile time is known apart from the steps) or "eager" (the same functions,
not wrapped, dispatched op by op). ``BuildOptions.dtype == "float64"`` (the conformance
suite's check of a training step) runs an fp32 cell's model in double precision on the CPU.

Why flax.linen and not flax.nnx: a linen model is a pure function of a pytree, so the step is
a plain ``jax.jit`` whose arguments are flattened by jit's C++ fast path. ``nnx.jit`` splits
and merges the module graph in Python on every call: a LeNet-5 train step at batch 32 took
6.3 ms with nnx.jit against 5.1 ms as linen + jax.jit (flax 0.12.8, 2 cores). ``nnx.split``
+ ``jax.jit`` would avoid that only by turning nnx back into linen's pure-pytree style.

Eager mode on the CPU is close to synchronous in practice: some ops (an add of two arrays, for
one) wait in the dispatching thread for their inputs, so an un-jitted ResNet or CIFAR step
returns only when its work is done. The jitted step is fully asynchronous; either way every
timed round waits for its outputs.

Data parallel (a device set: cpu*N, gpu:0+1): a one-axis Mesh over the devices, the batch
sharded along it (NamedSharding P("data")) and parameters, statistics and optimizer state
replicated (P()), under the same jitted step: XLA's SPMD partitioner inserts the gradient
all-reduce, and batch-norm statistics are reduced over the whole global batch (synced), so
a data-parallel step equals the one-device step on the global batch up to rounding. cpu*N
needs N host devices, which XLA makes only from XLA_FLAGS=--xla_force_host_platform_device_count
read when the backend starts (the runner sets it; setup_devices adds it if no backend has
started yet).

Several processes (JAX's own multi-controller launcher, one process per host; CPU only so
far): the same mesh, over every process's devices. See _process_group for the variables that
ask for it. Each process puts only its own rows of the global batch on its devices, and
replica_weights returns the copies this process holds.

Nothing here initializes a JAX backend at import time: the worker imports this module before
setup(), and the CPU client's thread count is fixed when the backend is created.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from workloads import Layer, WorkloadSpec

from . import base, padding
from .base import Adapter, BuildOptions, ClockedRanks, RankClock, Threads, TimeSteps, Unsupported, Weights

_DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16}

# A multi-process job: every process gets the same CNNBENCH_COORDINATOR (host:port where
# process 0 serves JAX's coordination service) and CNNBENCH_NUM_PROCESSES, and its own
# CNNBENCH_PROCESS_ID (0 .. N-1). Unset CNNBENCH_COORDINATOR: one process, as always.
# Under srun the last two may be left out: jax.distributed.initialize detects Slurm and
# reads them from SLURM_NTASKS and SLURM_PROCID itself.
_PROCESS_VARS = ("CNNBENCH_COORDINATOR", "CNNBENCH_NUM_PROCESSES", "CNNBENCH_PROCESS_ID")
_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
               "SLURM_LOCALID")


def _process_group() -> tuple[str, int | None, int | None] | None:
    """(coordinator, number of processes, this process's id) from _PROCESS_VARS, or None;
    the last two None in a Slurm job step, where JAX reads them from Slurm."""
    if not os.environ.get(_PROCESS_VARS[0]):
        return None
    missing = [v for v in _PROCESS_VARS if not os.environ.get(v)]
    if len(missing) == 2 and all(os.environ.get(v) for v in _SLURM_VARS):
        return os.environ[_PROCESS_VARS[0]], None, None
    if missing:
        raise Unsupported(f"{_PROCESS_VARS[0]} is set but {', '.join(missing)} is not (nor "
                          "is this a Slurm job step, whose variables JAX would read)")
    coordinator, n, pid = (os.environ[v] for v in _PROCESS_VARS)
    return coordinator, int(n), int(pid)


def _allsum(v: np.ndarray) -> np.ndarray:
    """``v`` summed over every process (RankClock's collective)."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(v), dtype=np.float64).sum(axis=0)


def _put(a: np.ndarray, where: Any) -> jax.Array:
    """A host array that is the same on every process, onto a device or a sharding. Where
    the sharding spans other processes' devices, this process transfers only the slices its
    own devices hold (device_put would first compare the whole array across processes, a
    collective on every call)."""
    if isinstance(where, NamedSharding) and not where.is_fully_addressable:
        return jax.make_array_from_callback(a.shape, where, lambda index: a[index])
    return jax.device_put(a, where)


# -- layers ------------------------------------------------------------------------------
class _BatchNorm(nn.Module):
    """Batch norm in PyTorch's convention (see the module docstring for why not nn.BatchNorm).

    Statistics are computed in the parameters' dtype (fp32, or float64 for the conformance
    check) whatever the compute dtype; the output has the compute dtype.
    """

    eps: float
    momentum: float  # weight of the new batch statistic (PyTorch convention)
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        c, pdt = x.shape[-1], self.param_dtype
        scale = self.param("scale", nn.initializers.ones, (c,), pdt)
        bias = self.param("bias", nn.initializers.zeros, (c,), pdt)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), pdt)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), pdt)
        if train:
            axes = tuple(range(x.ndim - 1))
            xf = x.astype(pdt)
            mean = xf.mean(axes)
            # Two-pass variance, as accurate as PyTorch's Welford: Flax's E[x^2] - E[x]^2
            # cancels when |mean| >> std. It cost nothing measurable (ResNet-20 train, 1%).
            var = jnp.square(xf - mean).mean(axes)
            if not self.is_initializing():
                n = x.size // c
                m = self.momentum
                ra_mean.value = (1.0 - m) * ra_mean.value + m * mean
                ra_var.value = (1.0 - m) * ra_var.value + m * var * (n / (n - 1))
        else:
            mean, var = ra_mean.value, ra_var.value
        inv = scale * lax.rsqrt(var + self.eps)
        # One multiply-add per element; XLA fuses it with the statistics and the next op.
        return x * inv.astype(self.dtype) + (bias - mean * inv).astype(self.dtype)


def _lrn(x: jax.Array, depth_radius: int, bias: float, alpha: float, beta: float) -> jax.Array:
    """TensorFlow's LRN over the channel (last) axis; Flax has none.

    Computed in fp32 even under bf16: pow(bias + alpha * sum, -beta) of a bf16 sum is too coarse.
    """
    r = depth_radius
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    window_sum = lax.reduce_window(jnp.square(xf), 0.0, lax.add, (1, 1, 1, 2 * r + 1),
                                   (1, 1, 1, 1), ((0, 0), (0, 0), (0, 0), (r, r)))
    return (xf * jnp.power(bias + alpha * window_sum, -beta)).astype(x.dtype)


def _pad_channels(x: jax.Array, stride: int, before: int, after: int) -> jax.Array:
    s = stride
    return jnp.pad(x[:, ::s, ::s, :], ((0, 0), (0, 0), (0, 0), (before, after)))


def _apply_layer(layer: Layer, ins: list[jax.Array], train: bool, dtype: Any, pdtype: Any,
                 precision: Any) -> jax.Array:
    """One spec layer, called inside SpecNet's compact __call__ (so submodules bind to it)."""
    a, op, x = layer.attrs, layer.op, ins[0]
    if op == "conv2d":
        # Explicit (low, high) pairs go straight into lax.conv_general_dilated: one op, the
        # same result as jnp.pad + 'VALID', and never Flax's asymmetric 'SAME'.
        return nn.Conv(a["out_channels"], a["kernel"], a["stride"], padding=padding.pairs(a["padding"]),
                       feature_group_count=a["groups"], use_bias=a["bias"], dtype=dtype,
                       param_dtype=pdtype, precision=precision, name=layer.name)(x)
    if op == "batchnorm":
        return _BatchNorm(a["eps"], a["momentum"], dtype, pdtype, name=layer.name)(x, train)
    if op == "relu":
        return nn.relu(x)
    if op == "relu6":
        return nn.relu6(x)
    if op == "maxpool":
        # Flax pads reduce_window with its init value, -inf for max: what the spec requires.
        return nn.max_pool(x, a["kernel"], a["stride"], padding=padding.pairs(a["padding"]))
    if op == "avgpool":
        return nn.avg_pool(x, a["kernel"], a["stride"], padding="VALID")
    if op == "global_avgpool":
        return x.mean(axis=(1, 2))
    if op == "lrn":
        return _lrn(x, a["depth_radius"], a["bias"], a["alpha"], a["beta"])
    if op == "flatten":
        # The spec flattens in (C, H, W) order; the dense weights that follow expect it.
        return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
    if op == "dense":
        return nn.Dense(a["out_features"], use_bias=a["bias"], dtype=dtype,
                        param_dtype=pdtype, precision=precision, name=layer.name)(x)
    if op == "dropout":
        return nn.Dropout(a["rate"], deterministic=not train, name=layer.name)(x)
    if op == "add":
        return ins[0] + ins[1]
    if op == "pad_channels":
        return _pad_channels(x, a["stride"], a["before"], a["after"])
    raise Unsupported(f"jax adapter has no op {op!r}")


class SpecNet(nn.Module):
    """Executes a WorkloadSpec on NHWC input. Submodules are named after the spec's layers.

    ``dtype`` is the compute dtype (bf16 casts parameters and inputs inside the forward);
    ``param_dtype`` that of the parameters, statistics and logits.
    """

    spec: WorkloadSpec
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        acts: dict[str, jax.Array] = {"input": x.astype(self.dtype)}
        for step in self.spec.schedule():
            acts[step.layer.name] = _apply_layer(step.layer, [acts[s] for s in step.inputs],
                                                 train, self.dtype, self.param_dtype,
                                                 self.precision)
            # Only matters in eager mode (under jit XLA owns buffer lifetimes): drop
            # activations nobody reads any more.
            for s in step.free:
                del acts[s]
        return acts[self.spec.output].astype(self.param_dtype)


# -- canonical weights <-> Flax variables --------------------------------------------------
def _to_flax(spec: WorkloadSpec, weights: Weights) -> tuple[dict[str, Any], dict[str, Any]]:
    params: dict[str, dict[str, np.ndarray]] = {}
    stats: dict[str, dict[str, np.ndarray]] = {}
    for p in spec.param_infos():
        layer_name, param = p.key.rsplit("/", 1)
        op = spec.layer(layer_name).op
        w = np.asarray(weights[p.key], dtype=np.float32)
        if tuple(w.shape) != p.shape:
            raise ValueError(f"{p.key}: spec shape {p.shape} != {w.shape}")
        if op == "conv2d" and param == "weight":
            params.setdefault(layer_name, {})["kernel"] = w.transpose(2, 3, 1, 0)  # OIHW->HWIO
        elif op == "dense" and param == "weight":
            params.setdefault(layer_name, {})["kernel"] = w.T  # (out, in) -> (in, out)
        elif op == "batchnorm" and param in ("running_mean", "running_var"):
            stats.setdefault(layer_name, {})["mean" if param == "running_mean" else "var"] = w
        else:
            params.setdefault(layer_name, {})["scale" if param == "weight" else "bias"] = w
    return params, stats


def _from_flax(spec: WorkloadSpec, params: Any, stats: Any) -> Weights:
    params, stats = jax.device_get((params, stats))
    out: Weights = {}
    for p in spec.param_infos():
        layer_name, param = p.key.rsplit("/", 1)
        op = spec.layer(layer_name).op
        if op == "conv2d" and param == "weight":
            w = np.asarray(params[layer_name]["kernel"]).transpose(3, 2, 0, 1)
        elif op == "dense" and param == "weight":
            w = np.asarray(params[layer_name]["kernel"]).T
        elif op == "batchnorm" and param in ("running_mean", "running_var"):
            w = np.asarray(stats[layer_name]["mean" if param == "running_mean" else "var"])
        else:
            w = np.asarray(params[layer_name]["scale" if param == "weight" else "bias"])
        out[p.key] = np.ascontiguousarray(w, dtype=np.float32)
    return out


# -- the model -----------------------------------------------------------------------------
class _TrainState(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: Any  # None unless the spec has dropout


class JaxModel:
    """What build() returns: the Flax module, its variables on the device, and the steps."""

    def __init__(self, spec: WorkloadSpec, net: SpecNet, opts: BuildOptions,
                 device: Any, batch_device: Any = None) -> None:
        # ``device``: where state lives (one device, or replicated over a mesh);
        # ``batch_device``: where a batch goes (the same device, or sharded over the mesh).
        self.spec, self.net, self.opts, self.device = spec, net, opts, device
        self.batch_device = device if batch_device is None else batch_device
        self.float64 = opts.dtype == "float64"
        self.host_dtype = np.float64 if self.float64 else np.float32
        self.params: Any = None
        self.batch_stats: Any = None
        self.opt_state: Any = None
        self.rng: Any = None
        self.tx = optax.sgd(opts.lr, momentum=opts.momentum)
        self.has_dropout = any(layer.op == "dropout" for layer in spec.layers)
        self.forward: Callable[..., jax.Array] = self._forward
        self.train_fn: Callable[..., tuple[_TrainState, jax.Array]] = self._train
        self.facts: dict[str, Any] = {}  # compile times and the like, filled by prepare()
        # prepare()'s ahead-of-time executables, by (train, batch shape): predict() and
        # train_step() at the timed shape call the very program that is timed (the tuner's
        # accuracy gate checks it) instead of compiling the jitted function a second time.
        self.compiled: dict[tuple[bool, tuple[int, ...]], Callable[..., Any]] = {}

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where this model's arrays are made and used. JAX truncates float64 to float32
        unless x64 is on; it is switched on only around a float64 model's calls, so that the
        process-wide default (and every fp32 cell) stays as JAX ships it."""
        return jax.enable_x64(True) if self.float64 else contextlib.nullcontext()

    # The state lives in the model object: a jitted step donates its input state, so the
    # arrays it was called with are gone afterwards and only the returned state is valid.
    @property
    def state(self) -> _TrainState:
        if self.opt_state is None:  # built for inference: make the optimizer state on demand
            self.opt_state = jax.device_put(self.tx.init(self.params), self.device)
        return _TrainState(self.params, self.batch_stats, self.opt_state, self.rng)

    @state.setter
    def state(self, s: _TrainState) -> None:
        self.params, self.batch_stats, self.opt_state, self.rng = s

    def _forward(self, params: Any, batch_stats: Any, x: jax.Array) -> jax.Array:
        return self.net.apply({"params": params, "batch_stats": batch_stats}, x, train=False)

    def _train(self, state: _TrainState, x: jax.Array,
               y: jax.Array) -> tuple[_TrainState, jax.Array]:
        rngs, next_rng = {}, state.rng
        if state.rng is not None:
            next_rng, sub = jax.random.split(state.rng)
            rngs = {"dropout": sub}

        def loss_fn(params: Any) -> tuple[jax.Array, Any]:
            logits, updates = self.net.apply(
                {"params": params, "batch_stats": state.batch_stats}, x, train=True,
                mutable=["batch_stats"], rngs=rngs)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, updates.get("batch_stats", {})

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return _TrainState(params, batch_stats, opt_state, next_rng), loss


def _xla_threads() -> int:
    """Threads of XLA's CPU intra-op (Eigen) pool that exist in this process right now."""
    n = 0
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/comm"):
        try:
            with open(path, encoding="utf-8") as f:
                n += "XLAEigen" in f.read()
        except OSError:
            pass
    return n


class JaxAdapter(ClockedRanks, Adapter):
    name = "jax"
    # The sharded jit reduces batch statistics over every shard: the global batch's.
    dp_batch_norm = "synced"
    # Why setup() could not apply a thread count (reported in build_facts), or None.
    _threads_not_applied: str | None = None
    # Processes in the job (set by setup_devices from _PROCESS_VARS): more than one, and every
    # model's mesh spans all of them.
    _processes = 1

    def framework_version(self) -> str:
        return str(jax.__version__)

    def setup_devices(self, device: str) -> None:
        from jax._src import xla_bridge

        ds = base.device_set(device)
        if ds.simulated and ds.indices is not None:
            flag = "--xla_force_host_platform_device_count"
            flags = os.environ.get("XLA_FLAGS", "")
            if flag not in flags and not xla_bridge.backends_are_initialized():
                os.environ["XLA_FLAGS"] = f"{flags} {flag}={len(ds.indices)}".strip()
        group = _process_group()
        if group is not None:
            self._join(ds, *group)

    def _join(self, ds: base.DeviceSet, coordinator: str, n: int | None,
              process_id: int | None) -> None:
        """Join the other processes; before anything starts a backend, as JAX requires (it
        raises otherwise), since the CPU client learns its peers when it is created."""
        if ds.kind != "cpu":
            raise Unsupported("multi-process JAX is implemented (and tested) on the CPU only")
        if jax.distributed.is_initialized():  # a second cell in the same process
            return
        # Cross-process collectives on the CPU; gloo is jax 0.10's default, but older jaxlibs
        # had none, and then the first all-reduce fails instead of this line.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator, n, process_id)
        # Not jax.process_count(): it would start the backend before setup() sizes its pool.
        self._processes = n if n is not None else int(os.environ["SLURM_NTASKS"])

    def _mesh_devices(self, device: str) -> list[Any] | None:
        """The devices of a data-parallel cell, or None for one device."""
        ds = base.device_set(device)
        if self._processes > 1:
            return self._process_mesh_devices(device, ds)
        if not ds.parallel:
            return None
        if ds.kind == "cpu":
            assert ds.indices is not None
            have = jax.devices("cpu")
            if len(have) < len(ds.indices):
                raise Unsupported(
                    f"{device} needs {len(ds.indices)} host devices and JAX has {len(have)}: "
                    "set XLA_FLAGS=--xla_force_host_platform_device_count="
                    f"{len(ds.indices)} before JAX starts (cnnbench run does)")
            return have[:len(ds.indices)]
        gpus = self._gpus()
        if not gpus:
            raise Unsupported("no GPU backend in this jaxlib or on this machine (install "
                              "jax[cuda] on a CUDA machine)")
        idx = ds.indices if ds.indices is not None else tuple(range(len(gpus)))
        if max(idx) >= len(gpus):
            raise Unsupported(f"no GPU {max(idx)} (this machine has {len(gpus)})")
        return [gpus[i] for i in idx]

    def _process_mesh_devices(self, device: str, ds: base.DeviceSet) -> list[Any]:
        """Every process's devices: ``device`` names one process's share (cpu: one device,
        cpu*N: N), so the mesh holds that many times the number of processes."""
        local = jax.local_devices(backend="cpu")
        assert ds.indices is not None  # _join let only the CPU through
        if len(local) != len(ds.indices):
            raise Unsupported(f"{device} needs {len(ds.indices)} host devices in each process "
                              f"and this one has {len(local)}")
        return list(jax.devices("cpu"))

    def between_cells(self) -> None:
        jax.clear_caches()  # compiled executables of the earlier candidate

    def setup(self, threads: int | None) -> Threads:
        from jax._src import xla_bridge

        if threads:
            # XLA_FLAGS has no thread-count flag (intra_op_parallelism_threads is not one, and
            # an unknown flag is fatal); --xla_cpu_multi_thread_eigen=false can only say "1".
            # The CPU client sizes its intra-op pool from PJRT_NPROC when it is created, so
            # this works only before the first backend use, which is why nothing in this
            # module touches a backend at import.
            if xla_bridge.backends_are_initialized():
                if os.environ.get("PJRT_NPROC") != str(threads):  # not set by an earlier cell
                    self._threads_not_applied = "backend already initialized"
            else:
                os.environ["PJRT_NPROC"] = str(threads)
        jax.devices()  # create the client now, so the pool it made can be reported
        # What JAX honoured, read back: the threads its CPU client actually started. XLA has
        # no inter-op pool of its own to size: one executable's ops run on that same pool.
        return {"intra_op": _xla_threads(), "inter_op": 1}

    def build_facts(self) -> dict[str, Any]:
        devices = jax.devices()
        return {
            "version": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
            "backend": jax.default_backend(),
            "platform_version": devices[0].client.platform_version,
            "device_kind": devices[0].device_kind,
            "device_count": jax.device_count(),
            "gpus": len(self._gpus()),
            # XLA's CPU backend runs convolutions and dots on its own (Eigen-based) kernels,
            # and jaxlib reports no oneDNN use or version; so none is claimed here.
            "onednn": {"enabled": False, "version": None},
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "PJRT_NPROC": os.environ.get("PJRT_NPROC"),
            "PJRT_NPROC_not_applied": self._threads_not_applied,
            "xla_cpu_threads": _xla_threads(),
            **self.math_facts(),
        }

    def math_facts(self) -> dict[str, Any]:
        # fp32 cells pass Precision.HIGHEST to every conv and dense (build), so JAX's global
        # default matmul precision (which lets GPUs use TF32) does not reach them; it is
        # reported, not counted. XLA's CPU fast math (off by default; its honor_* flags only
        # narrow it) would reach them.
        flags = os.environ.get("XLA_FLAGS", "")
        fast = re.findall(r"--(xla_cpu_enable_fast_math)=(?:true|1)\b", flags)
        return {"math": {"layer_precision": "HIGHEST (fp32 cells)",
                         "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
                         "xla_fast_math": fast},
                "math_mode": base.math_mode({f: True for f in fast})}

    def compiler_facts(self) -> dict[str, Any]:
        m = re.search(r"--xla_cpu_max_isa=(\S+)", os.environ.get("XLA_FLAGS", ""))
        return {"xla_target": "the host CPU (XLA compiles for the machine it runs on)",
                "xla_cpu_max_isa": m.group(1) if m else None,
                "precompiled": "convolutions and library fusions (Eigen, YNNPACK): not capped"}

    def device_name(self, device: str) -> str:
        if base.device_set(device).kind == "cpu":
            return base.cpu_model_name()
        devs = self._mesh_devices(device) or [self._device(device)]
        return str(devs[0].device_kind)

    def is_oom(self, exc: BaseException) -> bool:
        if isinstance(exc, MemoryError):
            return True
        return isinstance(exc, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(exc)

    def device_peak_bytes(self, device: str) -> int | None:
        # XLA's allocator has no reset: its peak counts from the process's start (the build
        # included). The largest over the cell's devices.
        if base.device_set(device).kind != "gpu":
            return None
        devs = self._mesh_devices(device) or [self._device(device)]
        peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in devs]
        return max((int(p) for p in peaks if p is not None), default=None)

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _gpus() -> list[Any]:
        try:
            return list(jax.devices("gpu"))
        except RuntimeError:  # no GPU backend in this jaxlib, or no GPU on this machine
            return []

    def _device(self, device: str) -> Any:
        idx = base.gpu_index(device)
        if idx is None:
            return jax.devices("cpu")[0]
        gpus = self._gpus()
        if not gpus:
            raise Unsupported("no GPU backend in this jaxlib or on this machine (install "
                              "jax[cuda] on a CUDA machine)")
        if idx >= len(gpus):
            raise Unsupported(f"no GPU {idx} (this machine has {len(gpus)})")
        return gpus[idx]

    def _put_batch(self, model: JaxModel, x: np.ndarray,
                   y: np.ndarray | None = None) -> tuple[jax.Array, jax.Array | None]:
        # One NCHW -> NHWC transpose on the host; int32 labels because JAX runs without x64.
        xd = _put(np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=model.host_dtype),
                  model.batch_device)
        yd = None if y is None else _put(np.asarray(y, dtype=np.int32), model.batch_device)
        return xd, yd

    # -- model -------------------------------------------------------------------------
    def build(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> JaxModel:
        self.check_options(opts)
        mesh_devices = self._mesh_devices(opts.device)
        batch_device = None
        if mesh_devices is None:
            device: Any = self._device(opts.device)
        else:
            mesh = Mesh(np.array(mesh_devices), ("data",))
            device = NamedSharding(mesh, PartitionSpec())  # replicated on every device
            batch_device = NamedSharding(mesh, PartitionSpec("data"))  # split along the batch
        pdtype = jnp.float64 if opts.dtype == "float64" else jnp.float32
        dtype = pdtype if opts.precision == "fp32" else _DTYPES[opts.precision]
        # JAX's default precision lets GPUs run fp32 convs and dots in TF32; "fp32" means fp32
        # (the PyTorch adapter turns TF32 off too). bf16 inputs make the choice moot.
        precision = lax.Precision.HIGHEST if opts.precision == "fp32" else None
        net = SpecNet(spec, dtype=dtype, param_dtype=pdtype, precision=precision)
        model = JaxModel(spec, net, opts, device, batch_device)
        self.load_weights(model, weights)
        with model.scope():
            if model.has_dropout:
                model.rng = jax.device_put(jax.random.key(0), device)
            if opts.mode == "train":
                model.opt_state = jax.device_put(model.tx.init(model.params), device)
        if opts.exec_mode == "jit" and mesh_devices is None:
            model.forward = jax.jit(model._forward)
            model.train_fn = jax.jit(model._train, donate_argnums=0)
        elif opts.exec_mode == "jit":
            # The state stays replicated and the logits stay split along the batch.
            model.forward = jax.jit(model._forward, out_shardings=batch_device)
            model.train_fn = jax.jit(model._train, donate_argnums=0,
                                     out_shardings=(device, device))
        return model

    @staticmethod
    def _check_structure(model: JaxModel, params: Any, stats: Any) -> None:
        """The imported tree must be exactly what Flax would create (abstractly: no compute)."""
        c, h, w = model.spec.input_shape
        x = jax.ShapeDtypeStruct((1, h, w, c), jnp.float32)
        want = jax.eval_shape(lambda x: model.net.init(jax.random.key(0), x, train=False), x)
        got = {"params": params, "batch_stats": stats} if stats else {"params": params}
        shapes = jax.tree.map(lambda a: tuple(a.shape), got)
        want_shapes = jax.tree.map(lambda a: tuple(a.shape), dict(want))
        if shapes != want_shapes:
            raise ValueError(f"{model.spec.name}: imported variables do not match the Flax model")

    def load_weights(self, model: JaxModel, weights: Weights) -> None:
        params, stats = _to_flax(model.spec, weights)
        with model.scope():
            self._check_structure(model, params, stats)
            params, stats = jax.tree.map(lambda a: a.astype(model.host_dtype), (params, stats))
            model.params, model.batch_stats = jax.device_put((params, stats), model.device)

    def export_weights(self, model: JaxModel) -> Weights:
        return _from_flax(model.spec, model.params, model.batch_stats)

    def replica_weights(self, model: JaxModel) -> list[Weights]:
        """Every device's copy of the replicated state, read shard by shard (in a
        multi-process job, the copies on this process's devices)."""
        def copies(a: jax.Array) -> list[Any]:
            return [s.data for s in sorted(a.addressable_shards, key=lambda s: s.device.id)]

        trees = (model.params, model.batch_stats)
        n = len(copies(jax.tree.leaves(trees)[0]))
        return [_from_flax(model.spec, *jax.tree.map(lambda a, i=i: copies(a)[i], trees))
                for i in range(n)]

    def num_params(self, model: JaxModel) -> int:
        return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(model.params))

    def predict(self, model: JaxModel, x: np.ndarray) -> np.ndarray:
        with model.scope():
            xd, _ = self._put_batch(model, x)
            fn = model.compiled.get((False, xd.shape), model.forward)
            logits = fn(model.params, model.batch_stats, xd)
        return np.asarray(logits, dtype=np.float32)

    def train_step(self, model: JaxModel, x: np.ndarray, y: np.ndarray) -> float:
        with model.scope():
            xd, yd = self._put_batch(model, x, y)
            fn = model.compiled.get((True, xd.shape), model.train_fn)
            model.state, loss = fn(model.state, xd, yd)
            return float(loss)

    # -- benchmark ---------------------------------------------------------------------
    # A jitted step returns as soon as its work is enqueued and the CPU runs it later (eager
    # ops mostly wait for their inputs; see the module docstring).
    async_dispatch_on_cpu = True

    def prepare(self, model: JaxModel, x: np.ndarray, y: np.ndarray,
                sync: bool = True) -> TimeSteps:
        with model.scope():
            time_steps = self._prepare(model, x, y, sync)
        if self._processes > 1:
            # Every process runs every step (the step is one SPMD program): rank 0 decides
            # the rounds, and a round lasts until the slowest process is done.
            self._clock = RankClock(jax.process_index(), self._processes, _allsum)
            self._inner = time_steps
            return self._clock.driven(time_steps)
        if not model.float64:
            return time_steps

        def time_steps_x64(n: int) -> float:
            with model.scope():  # outside the timed region, which time_steps measures itself
                return time_steps(n)

        return time_steps_x64

    def _prepare(self, model: JaxModel, x: np.ndarray, y: np.ndarray, sync: bool) -> TimeSteps:
        xd, yd = self._put_batch(model, x, y)
        clock = time.perf_counter
        train = model.opts.mode == "train"
        args = (model.state, xd, yd) if train else (model.params, model.batch_stats, xd)
        fn: Callable[..., Any] = model.train_fn if train else model.forward
        if model.opts.exec_mode == "jit":
            # Compile ahead of time so the compile is measured on its own (compile_s) instead
            # of hiding in the first step; the steps then call this very executable (its call
            # takes the same C++ fast path as a jitted function's).
            t0 = clock()
            lowered = fn.lower(*args)  # type: ignore[attr-defined]
            t1 = clock()
            fn = model.compiled[(train, xd.shape)] = lowered.compile()
            model.facts.update(lower_s=t1 - t0, compile_s=clock() - t1)
        jax.block_until_ready(args)
        # Dispatch is asynchronous: without the wait a round would time only the enqueueing.
        wait = jax.block_until_ready if sync else (lambda _outputs: None)

        if train:
            def time_steps(n: int) -> float:
                t0 = clock()
                state = model.state
                for _ in range(n):
                    state, loss = fn(state, xd, yd)
                model.state = state  # the old state was donated: only this one is valid
                wait((state, loss))
                return clock() - t0
        else:
            params, stats = model.params, model.batch_stats

            def time_steps(n: int) -> float:
                t0 = clock()
                # Executions on one device ran in dispatch order when we looked, but waiting
                # on every (small) logits array does not depend on that.
                outs = [fn(params, stats, xd) for _ in range(n)]
                wait(outs)
                return clock() - t0

        return time_steps

    # -- several processes: rank 0's rounds through ClockedRanks ----------------------------
    def _dp_done(self) -> None:
        jax.distributed.shutdown()  # on every rank: rank 0 hosts the coordination service

    def prepare_facts(self, model: JaxModel) -> dict[str, Any]:
        """Seconds spent lowering and compiling the timed step in prepare() (jit mode only)."""
        return dict(model.facts)

    def prepare_gemm(self, n: int, opts: BuildOptions) -> TimeSteps:
        self.check_precision(opts)
        device = self._device(opts.device)
        dtype = _DTYPES[opts.precision]
        precision = lax.Precision.HIGHEST if opts.precision == "fp32" else None
        ka, kb = jax.random.split(jax.random.key(0))
        a = jax.device_put(jax.random.normal(ka, (n, n), dtype), device)
        b = jax.device_put(jax.random.normal(kb, (n, n), dtype), device)
        matmul = jax.jit(lambda a, b: jnp.matmul(a, b, precision=precision))
        jax.block_until_ready(matmul(a, b))  # compile outside the timed rounds
        clock = time.perf_counter

        def time_steps(k: int) -> float:
            t0 = clock()
            for _ in range(k):
                out = matmul(a, b)
            # Executions on one device run in dispatch order (the first one finished before
            # a later tiny one could when we checked), so the last product's readiness
            # covers the others; keeping only it bounds memory at one n x n result.
            jax.block_until_ready(out)
            return clock() - t0

        return time_steps


ADAPTER = JaxAdapter()

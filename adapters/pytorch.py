"""PyTorch adapter: a spec becomes one nn.Module that walks the layer graph.

Layout is NCHW with canonical weights as-is (conv OIHW and Linear (out, in) are PyTorch's own
layouts). Symmetric padding goes into the conv/pool itself (so oneDNN/cuDNN see one op);
asymmetric padding (the CIFAR tutorial's TF-style pools) is an explicit F.pad.
Precision: fp32 (TF32 off on CUDA), tf32 (CUDA), bf16 autocast (CPU and CUDA), fp16 AMP with
a GradScaler (CUDA). Execution: eager, or compiled with torch.compile (inductor).

Data parallel (a device set: cpu*N, gpu:0+1): DistributedDataParallel, one process per
device launched by torchrun (gloo on the CPU, NCCL on GPUs; the runner starts it). Each rank
takes its shard of the global batch; rank 0 runs the timing protocol and broadcasts each
round's step count, the others follow, and every round ends with an all-gather of the ranks'
times (a barrier): the round lasted as long as its slowest rank. Batch norm normalises each
rank's own shard (SyncBatchNorm has no CPU path) and DDP broadcasts rank 0's running
statistics at the start of every forward. Inference needs no gradient reduction, so each
rank runs the plain module on its shard.

Adapter option ``memory_format=channels_last`` (the built-in variant ``channels-last``) puts
the parameters and the input batch in NHWC memory order, which oneDNN and cuDNN prefer; the
logical shapes and weight layout are unchanged. ``contiguous`` (NCHW) is the default.
Adapter option ``compile_mode`` (``default``, ``reduce-overhead``, ``max-autotune``) is
torch.compile's ``mode`` for the ``compiled`` execution mode.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workloads import Layer, WorkloadSpec

from . import base, padding
from .base import Adapter, BuildOptions, Threads, TimeSteps, Unsupported, Weights


def _key(name: str) -> str:
    return name.replace(".", "__")  # nn.Module names cannot hold dots


class _PadThen(nn.Module):
    """Explicit padding followed by an op that takes no padding of its own."""

    def __init__(self, pad: padding.Pad, value: float, op: nn.Module) -> None:
        super().__init__()
        pt, pb, pl, pr = pad
        self.pad, self.value, self.op = (pl, pr, pt, pb), value, op  # F.pad: last dim first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(F.pad(x, self.pad, value=self.value))


def _padded(pad: padding.Padding, value: float, op: nn.Module) -> nn.Module:
    return op if pad.explicit is None else _PadThen(pad.explicit, value, op)


class SpecNet(nn.Module):
    """Executes a WorkloadSpec. Modules are named after the spec's layers."""

    def __init__(self, spec: WorkloadSpec) -> None:
        super().__init__()
        self.spec = spec
        shapes, consumers = spec.shapes(), spec.consumers()
        self.layers = nn.ModuleDict()
        for layer in spec.layers:
            self.layers[_key(layer.name)] = self._make(layer, shapes[layer.inputs[0]], consumers)
        self._plan = [(_key(s.layer.name), s.layer.name, s.inputs, s.free)
                      for s in spec.schedule()]
        self._param_owner = {p.key: (_key(p.key.rsplit("/", 1)[0]), p.key.rsplit("/", 1)[1])
                             for p in spec.param_infos()}

    @staticmethod
    def _make(layer: Layer, in_shape: tuple[int, ...], consumers: dict[str, int]) -> nn.Module:
        a, op = layer.attrs, layer.op
        if op == "conv2d":
            pad = padding.for_conv(a["padding"])
            return _padded(pad, 0.0, nn.Conv2d(
                in_shape[0], a["out_channels"], a["kernel"], a["stride"], padding=pad.native,
                groups=a["groups"], bias=a["bias"]))
        if op == "batchnorm":
            cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
            return cls(in_shape[0], eps=a["eps"], momentum=a["momentum"])
        if op in ("relu", "relu6"):
            # In place only when nothing else reads the input (never the graph input).
            src = layer.inputs[0]
            inplace = src != "input" and consumers.get(src, 0) == 1
            return nn.ReLU(inplace=inplace) if op == "relu" else nn.ReLU6(inplace=inplace)
        if op == "maxpool":
            pad = padding.for_maxpool(a["padding"], a["kernel"])
            return _padded(pad, float("-inf"),
                           nn.MaxPool2d(a["kernel"], a["stride"], padding=pad.native))
        if op == "avgpool":
            return nn.AvgPool2d(a["kernel"], a["stride"])
        if op == "global_avgpool":
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        if op == "lrn":
            size = 2 * a["depth_radius"] + 1
            # TF sums alpha * x^2 over the window; PyTorch averages, so alpha scales by size.
            return nn.LocalResponseNorm(size, alpha=a["alpha"] * size, beta=a["beta"], k=a["bias"])
        if op == "flatten":
            return nn.Flatten(1)
        if op == "dense":
            return nn.Linear(in_shape[0], a["out_features"], bias=a["bias"])
        if op == "dropout":
            return nn.Dropout(a["rate"])
        if op == "add":
            return _Add()
        if op == "pad_channels":
            return _PadChannels(a["stride"], a["before"], a["after"])
        raise Unsupported(f"pytorch adapter has no op {op!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts: dict[str, torch.Tensor] = {"input": x}
        out = x
        for key, name, inputs, free in self._plan:
            mod = self.layers[key]
            out = mod(*[acts[s] for s in inputs])
            acts[name] = out
            for s in free:
                del acts[s]
        return out

    # canonical weights <-> module tensors
    def tensor_for(self, key: str) -> torch.Tensor:
        mod_key, param = self._param_owner[key]
        mod = self.layers[mod_key]
        if isinstance(mod, _PadThen):
            mod = mod.op
        t: torch.Tensor = getattr(mod, param)
        return t


class _Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _PadChannels(nn.Module):
    def __init__(self, stride: int, before: int, after: int) -> None:
        super().__init__()
        self.stride, self.before, self.after = stride, before, after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, self.before, self.after))


MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


class TorchModel:
    """What build() returns: the module, its (maybe compiled) callable and the step state."""

    def __init__(self, module: SpecNet, opts: BuildOptions, device: torch.device) -> None:
        self.module = module
        self.opts = opts
        self.device = device
        self.dtype = torch.float64 if opts.dtype == "float64" else torch.float32
        self.fn: Callable[[torch.Tensor], torch.Tensor] = module
        self.ddp: nn.Module | None = None  # DistributedDataParallel(module) when training DP
        self.optimizer: torch.optim.Optimizer | None = None
        self.scaler: torch.amp.GradScaler | None = None
        fmt = (opts.options or {}).get("memory_format", "contiguous")
        if fmt not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, "
                             f"not {fmt!r}")
        self.memory_format = MEMORY_FORMATS[fmt]

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        """An input batch on the model's device, dtype and memory format."""
        t = torch.from_numpy(x).to(self.device, self.dtype)
        return t.contiguous(memory_format=self.memory_format)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def _compile_mode(opts: BuildOptions) -> str:
    mode = str((opts.options or {}).get("compile_mode", "default"))
    if mode not in COMPILE_MODES:
        raise Unsupported(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, not {mode!r}")
    return mode


class _Ranks:
    """This process's place in a data-parallel job and the per-rank times of its rounds."""

    def __init__(self, rank: int, world: int, local_rank: int, device: torch.device) -> None:
        self.rank, self.world, self.local_rank, self.device = rank, world, local_rank, device
        self.round: Callable[[int], float] | None = None
        self.times: list[list[float]] = []  # per round: every rank's per-step seconds

    def shard(self, a: np.ndarray) -> np.ndarray:
        """This rank's slice of a global batch (equal slices, in rank order)."""
        per = a.shape[0] // self.world
        return a[self.rank * per:(self.rank + 1) * per]

    def tell(self, n: int) -> int:
        """Rank 0's step count for the next round, to every rank (0: stop)."""
        t = torch.tensor([n], dtype=torch.int64, device=self.device)
        torch.distributed.broadcast(t, src=0)
        return int(t.item())


class PyTorchAdapter(Adapter):
    name = "pytorch"
    _ranks: _Ranks | None = None

    def framework_version(self) -> str:
        return str(torch.__version__)

    def setup_devices(self, device: str) -> None:
        ds, dist = base.device_set(device), base.dist_env()
        if dist is None:
            if ds.parallel:
                raise Unsupported("PyTorch data parallel runs one process per device: launch "
                                  "the worker under torchrun (cnnbench run does)")
            return
        rank, world, local_rank = dist
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        if ds.kind == "gpu":
            if not torch.cuda.is_available():
                raise Unsupported("CUDA is not available in this PyTorch build or machine")
            gpus = ds.indices if ds.indices is not None else tuple(range(
                torch.cuda.device_count()))
            if len(gpus) != local:
                raise Unsupported(f"{device} has {len(gpus)} GPUs but torchrun started "
                                  f"{local} processes on this node")
            dev = self._device(f"gpu:{gpus[local_rank]}")
            torch.cuda.set_device(dev)
        else:
            if ds.indices is not None and len(ds.indices) != local:
                raise Unsupported(f"{device} has {len(ds.indices)} devices but torchrun "
                                  f"started {local} processes on this node")
            dev = torch.device("cpu")
        import datetime

        # A rank that died leaves the others in a collective: fail in minutes, not the
        # default half hour (torchrun then ends the job, the runner records why).
        torch.distributed.init_process_group(
            "nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world,
            timeout=datetime.timedelta(seconds=300))
        self._ranks = _Ranks(rank, world, local_rank, dev)

    def between_cells(self) -> None:
        import torch._dynamo

        torch._dynamo.reset()  # compiled graphs, guards and the recompilation counts

    def setup(self, threads: int | None) -> Threads:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if self._ranks else 1
        if threads:
            # The ranks of one node share its cores: each takes its part of the cell's threads.
            torch.set_num_threads(max(1, threads // local))
            # A single model has no inter-op parallelism worth a second pool of threads.
            with contextlib.suppress(RuntimeError):  # only settable before parallel work
                torch.set_num_interop_threads(1)
        out: Threads = {"intra_op": torch.get_num_threads(),
                        "inter_op": torch.get_num_interop_threads()}
        if local > 1:
            out["processes"] = local
        return out

    def build_facts(self) -> dict[str, Any]:
        config = torch.__config__.show()

        def grab(pattern: str) -> str | None:
            m = re.search(pattern, config)
            return m.group(1).strip() if m else None

        facts: dict[str, Any] = {
            "version": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn": {"enabled": bool(torch.backends.mkldnn.is_available()),
                       "version": grab(r"(?:oneDNN|MKL-DNN)\s*\(?\s*(v[\d.]+)")},
            "mkl": grab(r"Math Kernel Library Version ([\d.]+)"),
            "parallel_backend": grab(r"ATen parallel backend:\s*(\S+)")
            or grab(r"(OpenMP|TBB|Native)"),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cuda_available": torch.cuda.is_available(),
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            # What the binary was compiled for: ATen ships kernel sets per ISA (PERF_WITH_*)
            # and picks one at run time ("CPU capability usage").
            "compiled_for": sorted(re.findall(r"PERF_WITH_(\w+)=1", config)),
            "config": {k: grab(rf"{k}=([^,]*)") for k in ("USE_MKLDNN", "USE_MKL", "BLAS_INFO",
                                                            "USE_OPENMP", "USE_CUDA")},
            **self.math_facts(),
        }
        return facts

    def math_facts(self) -> dict[str, Any]:
        settings = _fp32_math()
        return {"math": settings, "math_mode": base.math_mode(
            {k: v for k, v in settings.items() if v not in ("ieee", "none", "highest")})}

    def compiler_facts(self) -> dict[str, Any]:
        """torch.compile's C++ backend (inductor) generates code for the host CPU: the vector
        ISA it picks (capped by ATEN_CPU_CAPABILITY)."""
        from torch._inductor import cpu_vec_isa

        return {"inductor_vec_isa": str(cpu_vec_isa.pick_vec_isa()) or "none (scalar)"}

    def kernel_facts(self, cell: dict[str, Any]) -> dict[str, Any]:
        facts: dict[str, Any] = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
        if cell.get("exec_mode") == "compiled" and cell.get("device") == "cpu":
            facts.update(self.compiler_facts())
        return facts

    def device_name(self, device: str) -> str:
        if base.device_set(device).kind == "cpu":
            return base.cpu_model_name()
        return str(torch.cuda.get_device_name(self._local_device(device)))

    def is_oom(self, exc: BaseException) -> bool:
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
            return True
        msg = str(exc)
        return isinstance(exc, RuntimeError) and (
            "out of memory" in msg or "can't allocate memory" in msg)

    def reset_device_peak(self, device: str) -> None:
        if base.device_set(device).kind == "gpu":
            torch.cuda.reset_peak_memory_stats(self._local_device(device))

    def device_peak_bytes(self, device: str) -> int | None:
        if base.device_set(device).kind != "gpu":
            return None
        return int(torch.cuda.max_memory_allocated(self._local_device(device)))

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _device(device: str) -> torch.device:
        idx = base.gpu_index(device)
        if idx is None:
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise Unsupported("CUDA is not available in this PyTorch build or machine")
        if idx >= torch.cuda.device_count():
            raise Unsupported(f"no CUDA device {idx} (this machine has {torch.cuda.device_count()})")
        return torch.device("cuda", idx)

    @staticmethod
    def _autocast(model: TorchModel) -> contextlib.AbstractContextManager[Any]:
        p = model.opts.precision
        if p in ("bf16", "fp16"):
            dtype = torch.bfloat16 if p == "bf16" else torch.float16
            return torch.autocast(model.device.type, dtype=dtype)
        return contextlib.nullcontext()

    @staticmethod
    def _sync(device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # -- model -------------------------------------------------------------------------
    def _local_device(self, device: str) -> torch.device:
        """The device this process drives: its rank's device in a data-parallel cell."""
        if self._ranks is not None:
            return self._ranks.device
        if base.device_set(device).parallel:
            raise Unsupported("PyTorch data parallel runs one process per device: launch "
                              "the worker under torchrun (cnnbench run does)")
        return self._device(device)

    def build(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> TorchModel:
        self.check_options(opts)
        device = self._local_device(opts.device)
        p = opts.precision
        if device.type == "cuda":
            # fp32 means true fp32: PyTorch lets cuDNN use TF32 by default.
            tf32 = p == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
        module = SpecNet(spec)
        model = TorchModel(module, opts, device)
        self.load_weights(model, weights)
        if opts.dtype == "float64":
            module.double()
        module.to(device, memory_format=model.memory_format)
        if self._ranks is not None and opts.mode == "train":
            from torch.nn.parallel import DistributedDataParallel

            # DDP broadcasts rank 0's parameters and buffers here, and all-reduces (averages)
            # the gradients in backward(): every replica takes the same SGD step.
            model.ddp = DistributedDataParallel(
                module, device_ids=[device.index] if device.type == "cuda" else None)
            model.fn = model.ddp
        if opts.exec_mode == "compiled":
            model.fn = torch.compile(model.fn, mode=_compile_mode(opts))
        model.optimizer = torch.optim.SGD(module.parameters(), lr=opts.lr, momentum=opts.momentum)
        if p == "fp16":
            model.scaler = torch.amp.GradScaler(device.type)
        return model

    def load_weights(self, model: TorchModel, weights: Weights) -> None:
        with torch.no_grad():
            for key, arr in weights.items():
                t = model.module.tensor_for(key)
                if tuple(t.shape) != arr.shape:
                    raise ValueError(f"{key}: model shape {tuple(t.shape)} != {arr.shape}")
                t.copy_(torch.from_numpy(np.ascontiguousarray(arr)).to(t.dtype))

    def export_weights(self, model: TorchModel) -> Weights:
        return {p.key: model.module.tensor_for(p.key).detach().float().cpu().numpy().copy()
                for p in model.module.spec.param_infos()}

    def num_params(self, model: TorchModel) -> int:
        return sum(p.numel() for p in model.module.parameters() if p.requires_grad)

    def predict(self, model: TorchModel, x: np.ndarray) -> np.ndarray:
        model.module.eval()
        # The input is made outside inference mode, as prepare() makes the timed one: an
        # inference tensor has other dispatch keys, which a compiled module's guards see as
        # another input (a recompile), so the accuracy gate would check another program.
        xt = model.tensor(x)
        with torch.inference_mode(), self._autocast(model):
            out = model.fn(xt)
        return out.float().cpu().numpy()

    def _train_once(self, model: TorchModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        opt = model.optimizer
        assert opt is not None
        opt.zero_grad(set_to_none=True)
        with self._autocast(model):
            loss = F.cross_entropy(model.fn(x), y)
        if model.scaler is not None:
            model.scaler.scale(loss).backward()
            model.scaler.step(opt)
            model.scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss

    def _shard(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._ranks is None:
            return x, y
        return self._ranks.shard(x), self._ranks.shard(y)

    def train_step(self, model: TorchModel, x: np.ndarray, y: np.ndarray) -> float:
        """One step on the global batch ``x``: in a data-parallel cell, on this rank's shard
        (the loss returned is this rank's)."""
        model.module.train()
        x, y = self._shard(x, y)
        xt = model.tensor(x)
        yt = torch.from_numpy(y).to(model.device)
        return float(self._train_once(model, xt, yt).item())

    # -- benchmark ---------------------------------------------------------------------
    def prepare(self, model: TorchModel, x: np.ndarray, y: np.ndarray,
                sync: bool = True) -> TimeSteps:
        x, y = self._shard(x, y)
        xt = model.tensor(x)
        yt = torch.from_numpy(y).to(model.device)
        device = model.device
        self._sync(device)

        if model.opts.mode == "train":
            model.module.train()
            train_once = self._train_once

            def step() -> None:
                train_once(model, xt, yt)
        else:
            model.module.eval()
            autocast = self._autocast

            def step() -> None:
                with torch.inference_mode(), autocast(model):
                    model.fn(xt)

        inner = self.timed_loop(step, (lambda: self._sync(device)) if sync else (lambda: None))
        ranks = self._ranks
        if ranks is None:
            return inner

        def round_(n: int) -> float:
            # Every rank times its own steps (ending in its device's sync); the all-gather is
            # the barrier that ends the round once the slowest rank is done.
            dt = torch.tensor([inner(n)], dtype=torch.float64, device=ranks.device)
            got = [torch.zeros_like(dt) for _ in range(ranks.world)]
            torch.distributed.all_gather(got, dt)
            times = [float(t.item()) for t in got]
            ranks.times.append([t / n for t in times])
            return max(times)

        ranks.round = round_

        def time_steps(n: int) -> float:
            ranks.tell(n)
            return round_(n)

        return time_steps

    # -- data parallel -----------------------------------------------------------------
    def dp_rank(self) -> int:
        return self._ranks.rank if self._ranks else 0

    def dp_follow(self) -> None:
        ranks = self._ranks
        assert ranks is not None and ranks.round is not None, "prepare() first"
        while (n := ranks.tell(0)) > 0:
            ranks.round(n)

    def dp_release(self) -> None:
        if self._ranks is not None:
            self._ranks.tell(0)

    def dp_facts(self, rounds: int) -> dict[str, Any]:
        if self._ranks is None:
            return {}
        timed = self._ranks.times[-rounds:] if rounds else []
        return {"replica_samples_s": [list(r) for r in zip(*timed, strict=True)]}

    def replica_weights(self, model: TorchModel) -> list[Weights]:
        mine = self.export_weights(model)
        if self._ranks is None:
            return [mine]
        everyone: list[Any] = [None] * self._ranks.world
        torch.distributed.all_gather_object(everyone, mine)
        return everyone

    def prepare_gemm(self, n: int, opts: BuildOptions) -> TimeSteps:
        self.check_precision(opts)
        device = self._device(opts.device)
        p = opts.precision
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = p == "tf32"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p, torch.float32)
        gen = torch.Generator(device="cpu").manual_seed(0)
        a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
        b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)
        return self.timed_loop(lambda: torch.matmul(a, b, out=out), lambda: self._sync(device))


# PyTorch's fp32 precision switches (2.9+): "ieee" is fp32; "tf32" and "bf16" let cuDNN,
# cuBLAS or oneDNN compute fp32 operations in less, and cuDNN's convolutions default to tf32.
# "highest" is the legacy matmul setting's fp32 (it mirrors the matmul switches).
_FP32_SWITCHES = ("mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn", "cuda.matmul", "cudnn.conv",
                  "cudnn.rnn")


def _switch(path: str) -> Any:
    obj: Any = torch.backends
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def _fp32_math() -> dict[str, str]:
    out = {"matmul_precision": torch.get_float32_matmul_precision()}
    for path in _FP32_SWITCHES:
        value = getattr(_switch(path), "fp32_precision", None)
        if value is not None:
            out[f"{path}.fp32_precision"] = str(value)
    return out


def _strict_fp32() -> None:
    """Every fp32 operation in fp32 (see adapters.base.FP32_MATH)."""
    for path in _FP32_SWITCHES:
        switch = _switch(path)
        if switch is not None and hasattr(switch, "fp32_precision"):
            switch.fp32_precision = "ieee"
    torch.set_float32_matmul_precision("highest")


_strict_fp32()
ADAPTER = PyTorchAdapter()

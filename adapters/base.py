"""The contract every adapter implements: the same small set of methods per framework.

The harness owns warm-up, calibration, rounds, stopping and statistics (cnnbench.measure.timing);
an adapter only builds the model and returns the elapsed time of n synchronized steps.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from cnnbench.core.cells import DeviceSet, PlanError
from workloads import WorkloadSpec

Weights = dict[str, np.ndarray]
# time_steps(n) runs n steps, waits until the device has finished them, returns seconds.
TimeSteps = Callable[[int], float]


class Unsupported(Exception):
    """This adapter cannot run this combination; recorded as status 'unsupported'."""


class Threads(TypedDict):
    """What setup() pinned, the same keys in every adapter (the row's `threads_set`)."""

    intra_op: int  # threads inside one op (convolution, GEMM)
    inter_op: int  # ops run concurrently
    processes: NotRequired[int]  # data-parallel processes on this node sharing the cell's threads


# Precisions with no CPU path in any adapter: fp16 mixed precision needs GPU tensor cores to
# be worth benchmarking (CPU kernels have no fast float16 path), and TF32 is an NVIDIA mode.
GPU_ONLY_PRECISIONS = ("fp16", "tf32")


def gpu_index(device: str) -> int | None:
    """None for "cpu", N for "gpu:N"; Unsupported for anything else."""
    ds = device_set(device)
    if ds.kind == "cpu" and not ds.simulated:
        return None
    if ds.kind != "gpu" or ds.indices is None or len(ds.indices) != 1:
        raise Unsupported(f"no device {device!r} (use cpu or gpu:N)")
    return ds.indices[0]


def device_set(device: str) -> DeviceSet:
    """The cell's device set (`cnnbench.core.cells.DeviceSet`, the one parser of device
    strings); a string that is none is Unsupported here."""
    try:
        return DeviceSet.parse(device)
    except PlanError:
        raise Unsupported(f"no device {device!r} (use cpu, cpu*N, gpu:N, gpu:0+1 or gpu:all)"
                          ) from None


def dist_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when torchrun (or any launcher with its variables)
    started this process as one of several; None otherwise."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
            int(os.environ.get("LOCAL_RANK", "0")))


def _tf_config_from_workers() -> None:
    """Set TF_CONFIG from the runner's multi-node settings, when it is not set: every
    worker's address in rank order (CNNBENCH_TF_WORKERS) and this process's index, which is
    its Slurm task (SLURM_PROCID, under the runner's srun) or CNNBENCH_PROCESS_ID. This is
    what tf.distribute's SlurmClusterResolver does, but with the addresses Slurm reaches
    the nodes at (NodeAddr) and a port per worker, where the resolver takes node names (not
    always DNS names) and one port base for every node (two workers on one host collide)."""
    import json
    import os

    workers = os.environ.get("CNNBENCH_TF_WORKERS", "").strip()
    if not workers or os.environ.get("TF_CONFIG", "").strip():
        return
    index = os.environ.get("CNNBENCH_PROCESS_ID") or os.environ.get("SLURM_PROCID") or ""
    if not index.isdigit():
        raise Unsupported("CNNBENCH_TF_WORKERS is set but neither CNNBENCH_PROCESS_ID nor "
                          "SLURM_PROCID gives this worker's index")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers.split(",")},
                                          "task": {"type": "worker", "index": int(index)}})


def tf_workers() -> tuple[int, int] | None:
    """(this worker's index, number of workers) when TF_CONFIG names a TensorFlow cluster of
    more than one worker; None when it is unset or names one worker. Unsupported, with the
    reason, for a TF_CONFIG that cnnbench does not run: not JSON, no worker list, a cluster
    with chief, ps or evaluator tasks, or a task that is not one of its workers."""
    import json
    import os

    _tf_config_from_workers()
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        conf = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Unsupported(f"TF_CONFIG is not JSON ({exc})") from None
    cluster = conf.get("cluster") if isinstance(conf, dict) else None
    if not isinstance(cluster, dict):
        raise Unsupported("TF_CONFIG has no 'cluster' object")
    # Peers only: worker i feeds rows i*B/W.. of the batch. A chief also takes a replica and
    # ps/evaluator tasks none, and neither layout is written or tested here.
    others = sorted(set(cluster) - {"worker"})
    if others:
        raise Unsupported(f"TF_CONFIG's cluster has {', '.join(others)} tasks; cnnbench runs "
                          "clusters of 'worker' tasks only")
    workers = cluster.get("worker")
    if not isinstance(workers, list) or not workers:
        raise Unsupported("TF_CONFIG's cluster lists no workers")
    task = conf.get("task")
    if not isinstance(task, dict):
        raise Unsupported("TF_CONFIG has no 'task' object (this process's type and index)")
    if task.get("type") != "worker":
        raise Unsupported(f"TF_CONFIG's task type is {task.get('type')!r}; cnnbench runs "
                          "'worker' tasks only (no chief, ps or evaluator)")
    index = task.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(workers):
        raise Unsupported(f"TF_CONFIG's task index {index!r} is not one of its "
                          f"{len(workers)} workers")
    return (index, len(workers)) if len(workers) > 1 else None


class RankClock:
    """Rounds of a multi-process cell whose processes all run every step (JAX's processes,
    TensorFlow's workers): rank 0 decides each round's step count (the protocol's stopping
    rule reads its own clock) and tells the others; every rank times its own steps, and
    the round ends when the slowest is done. ``allsum`` sums a float64 vector over the
    processes (a collective): a vector that is zero but at one's own index gathers."""

    def __init__(self, rank: int, world: int,
                 allsum: Callable[[np.ndarray], np.ndarray]) -> None:
        self.rank, self.world, self.allsum = rank, world, allsum
        self.times: list[list[float]] = []  # per round: every rank's per-step seconds

    def tell(self, n: int) -> int:
        """Rank 0's step count for the next round, to every rank (0: stop)."""
        v = np.zeros(1)
        if self.rank == 0:
            v[0] = n
        return round(float(self.allsum(v)[0]))

    def round(self, inner: TimeSteps, n: int) -> float:
        v = np.zeros(self.world)
        v[self.rank] = inner(n)
        times = [float(t) for t in self.allsum(v)]
        self.times.append([t / n for t in times])
        return max(times)

    def driven(self, inner: TimeSteps) -> TimeSteps:
        """rank 0's time_steps: tell, then time the round with everyone."""
        def time_steps(n: int) -> float:
            self.tell(n)
            return self.round(inner, n)
        return time_steps

    def follow(self, inner: TimeSteps) -> None:
        while (n := self.tell(0)) > 0:
            self.round(inner, n)

    def facts(self, rounds: int) -> dict[str, Any]:
        timed = self.times[-rounds:] if rounds else []
        return {"replica_samples_s": [list(r) for r in zip(*timed, strict=True)]}


class ClockedRanks:
    """The data-parallel hooks of an adapter whose processes follow rank 0's rounds through a
    RankClock (JAX's processes, TensorFlow's workers): ``_clock`` and ``_inner`` are set in
    prepare() when the cell spans several processes; ``_dp_done`` runs on every rank when
    the rounds end (JAX shuts its coordination service down there)."""

    _clock: RankClock | None = None
    _inner: TimeSteps | None = None

    def dp_rank(self) -> int:
        return self._clock.rank if self._clock else 0

    def dp_follow(self) -> None:
        assert self._clock is not None and self._inner is not None, "prepare() first"
        self._clock.follow(self._inner)
        self._dp_done()

    def dp_release(self) -> None:
        if self._clock is not None:
            self._clock.tell(0)
            self._dp_done()

    def dp_facts(self, rounds: int) -> dict[str, Any]:
        return self._clock.facts(rounds) if self._clock else {}

    def _dp_done(self) -> None:
        return None


@dataclass
class BuildOptions:
    device: str = "cpu"  # "cpu", "gpu:N", or a device set run data parallel (device_set)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision) | tf32
    exec_mode: str = "eager"
    mode: str = "infer"  # train | infer (decides e.g. whether an optimizer is made)
    lr: float = 0.01
    momentum: float = 0.9
    options: dict[str, Any] | None = None  # adapter-specific knobs from --adapter-opt
    # "float64" runs an fp32 model in double precision on the CPU. Only the conformance
    # suite uses it: a training step compared in fp32 can flip a ReLU whose input rounds to
    # either side of zero (ResNet-20's fixture batch has one at +7.9e-6), which says nothing
    # about the translation. Every adapter must support it.
    dtype: str = "float32"


# What the fp32 math of a cell computes in (the row's ``math_mode``). Frameworks may run fp32
# operations in less by a switch of their own: TF32 on NVIDIA GPUs (PyTorch's cuDNN
# convolutions, TensorFlow and JAX by default), bf16 through oneDNN's fpmath mode (on CPUs
# with AMX, where oneDNN has kernels that down-convert; without AMX it keeps fp32 kernels).
# An fp32 row that is faster for that reason measures another precision. So each adapter
# switches what its framework's API controls to strict fp32 when it loads, and reports the
# settings; an environment switch set on purpose (a variant's ONEDNN_DEFAULT_FPMATH_MODE)
# cannot be undone from Python and is named in math_mode instead.
FP32_MATH = "fp32"
FPMATH_ENV = ("ONEDNN_DEFAULT_FPMATH_MODE", "DNNL_DEFAULT_FPMATH_MODE")


def fpmath_env() -> dict[str, str]:
    """The oneDNN fpmath-mode variables set in this process (any value)."""
    return {v: os.environ[v] for v in FPMATH_ENV if os.environ.get(v, "").strip()}


def math_mode(reduced: dict[str, Any]) -> str:
    """'fp32' where every fp32 operation computes in fp32; else the settings that allow less
    ('reduced: ONEDNN_DEFAULT_FPMATH_MODE=BF16, matmul_precision=medium')."""
    reduced = {**reduced, **{k: v for k, v in fpmath_env().items()
                             if v.strip().upper() != "STRICT"}}
    if not reduced:
        return FP32_MATH
    return "reduced: " + ", ".join(f"{k}={v}" for k, v in sorted(reduced.items()))


class Adapter(ABC):
    name: str = ""

    # -- refusals every adapter shares -----------------------------------------------------
    def check_precision(self, opts: BuildOptions) -> None:
        """Unsupported unless this adapter runs opts.precision on opts.device."""
        from .table import get_info

        info = get_info(self.name)
        p, on_cpu = opts.precision, device_set(opts.device).kind == "cpu"
        if p not in info.precisions:
            raise Unsupported(f"{self.name} has no precision {p!r} "
                              f"(it has {', '.join(info.precisions)})")
        if on_cpu and p in GPU_ONLY_PRECISIONS:
            cpu = [q for q in info.precisions if q not in GPU_ONLY_PRECISIONS]
            raise Unsupported(f"{p} is a GPU-only precision (CUDA); use {' or '.join(cpu)} "
                              f"on the CPU")

    def check_options(self, opts: BuildOptions) -> None:
        """The refusals of build() that do not depend on the framework: precision, the
        float64 check, and the execution mode (the static table in adapters/__init__)."""
        from .table import get_info

        self.check_precision(opts)
        info = get_info(self.name)
        if opts.dtype not in ("float32", "float64"):
            raise Unsupported(f"{self.name} has no dtype {opts.dtype!r} (float32, float64)")
        on_cpu = device_set(opts.device).kind == "cpu"
        if opts.dtype == "float64" and (not on_cpu or opts.precision != "fp32"):
            raise Unsupported("float64 is the conformance check of fp32 cells on the CPU, "
                              f"not of {opts.precision} on {opts.device}")
        if opts.exec_mode not in info.exec_modes:
            raise Unsupported(f"{self.name} has no execution mode {opts.exec_mode!r} "
                              f"(it has {', '.join(info.exec_modes)})")

    # -- facts ---------------------------------------------------------------------------
    @abstractmethod
    def framework_version(self) -> str: ...

    @abstractmethod
    def build_facts(self) -> dict[str, Any]:
        """Version, ISA in use, math libraries, CUDA/cuDNN: what makes two builds differ;
        ``math`` (the framework's fp32 math settings) and ``math_mode`` (see math_mode())."""

    def math_facts(self) -> dict[str, Any]:
        """What fp32 operations compute in, now: ``math`` (the framework's own settings) and
        ``math_mode`` ('fp32', or 'reduced: ...' naming the settings that allow less)."""
        return {"math": {}, "math_mode": math_mode({})}

    @abstractmethod
    def setup(self, threads: int | None) -> Threads:
        """Pin intra-/inter-op threads before anything runs; return what is in force."""

    def device_name(self, device: str) -> str:
        return device

    # -- data parallel ---------------------------------------------------------------------
    # How batch norm computes its statistics with several replicas (the row's batch_norm).
    dp_batch_norm: str = "per-replica"

    def setup_devices(self, device: str) -> None:
        """Called first, before setup(): make the devices a device set needs (TF's logical
        CPUs must exist before its runtime starts). Unsupported where this adapter has no
        data-parallel path."""
        if device_set(device).parallel:
            raise Unsupported(f"{self.name} has no data-parallel path")

    def dp_rank(self) -> int:
        """This process's rank among the processes of a data-parallel cell (0: the one that
        reports to the runner; the others follow its rounds)."""
        return 0

    def dp_follow(self) -> None:
        """On a rank other than 0: run the rounds rank 0 asks for until it says stop."""
        return None  # one process per cell: there are no other ranks

    def dp_release(self) -> None:
        """On rank 0 after the last round: tell the other ranks to stop."""
        return None

    def dp_facts(self, rounds: int) -> dict[str, Any]:
        """Row fields of a data-parallel cell only this adapter knows, e.g. the per-replica
        timings of the last ``rounds`` rounds (the timed ones)."""
        return {}

    def replica_weights(self, model: Any) -> list[Weights]:
        """Every replica's weights (canonical layout), the conformance check that they stay
        identical; one replica: [export_weights(model)]."""
        return [self.export_weights(model)]

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, MemoryError)

    def between_cells(self) -> None:
        """Called after a cell when the next cell runs in the same process (the tuner's
        shared early rungs): drop the framework's caches of compiled graphs, so a candidate
        neither reuses nor is limited by an earlier one's (torch.compile stops compiling after
        its cache-size limit of recompilations of one function). Nothing to drop by default."""
        return None

    # -- device memory ------------------------------------------------------------------
    def reset_device_peak(self, device: str) -> None:
        """After the build: start the framework's peak-allocated counter of a GPU afresh."""
        return None

    def device_peak_bytes(self, device: str) -> int | None:
        """The framework's own peak of device memory since reset_device_peak(); None on the
        CPU (the worker's peak RSS is the measure there) or where the framework has none."""
        return None

    # -- model ---------------------------------------------------------------------------
    @abstractmethod
    def build(self, spec: WorkloadSpec, weights: Weights, opts: BuildOptions) -> Any:
        """A native model holding `weights` (canonical layout), ready on the device.

        Starts with check_options(opts); Unsupported, with the reason, for what it cannot run."""

    @abstractmethod
    def load_weights(self, model: Any, weights: Weights) -> None:
        """Overwrite the model's weights with `weights` (canonical layout)."""

    @abstractmethod
    def export_weights(self, model: Any) -> Weights:
        """The model's current weights in canonical layout (float32 numpy)."""

    @abstractmethod
    def num_params(self, model: Any) -> int:
        """Trainable parameters as the framework counts them."""

    @abstractmethod
    def predict(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Inference-mode logits for an NCHW float32 batch."""

    @abstractmethod
    def train_step(self, model: Any, x: np.ndarray, y: np.ndarray) -> float:
        """One step: forward, mean cross-entropy, backward, SGD (momentum); returns the loss."""

    # -- benchmark -----------------------------------------------------------------------
    # True where the framework returns to Python before the CPU has done the work it
    # queued (JAX, MXNet): there a missing sync would time only the dispatch.
    async_dispatch_on_cpu: bool = False

    @abstractmethod
    def prepare(self, model: Any, x: np.ndarray, y: np.ndarray, sync: bool = True) -> TimeSteps:
        """Put the batch on the device once and return time_steps(n) for the model's mode.

        ``sync=False`` leaves out the wait for the device: it exists only so the sync-trap
        test can show what a benchmark without it would (mis)measure."""

    @staticmethod
    def timed_loop(step: Callable[[], object], wait: Callable[[], object]) -> TimeSteps:
        """time_steps(n): n calls of `step`, then `wait` until the device has done them."""
        clock = time.perf_counter

        def time_steps(n: int) -> float:
            t0 = clock()
            for _ in range(n):
                step()
            wait()
            return clock() - t0

        return time_steps

    def compiler_facts(self) -> dict[str, Any]:
        """For execution modes that compile: the ISA the compiler generates code for (asked
        by `cnnbench env` only, since finding out can take seconds)."""
        return {}

    def kernel_facts(self, cell: dict[str, Any]) -> dict[str, Any]:
        """What the framework says about the kernels it dispatched to, after the kernel probe
        ran the cell's steps (e.g. PyTorch's ATen kernel set); oneDNN's verbose log and XLA's
        dump are read by the worker itself."""
        return {}

    def prepare_facts(self, model: Any) -> dict[str, Any]:
        """What prepare() measured on its own, e.g. ahead-of-time ``compile_s``."""
        return {}

    def prepare_gemm(self, n: int, opts: BuildOptions) -> TimeSteps:
        """time_steps(k) for k products of two n x n matrices in opts.precision on opts.device,
        made with the framework's own matmul: the probe of the device's peak FLOP/s."""
        raise Unsupported(f"{self.name} has no GEMM probe")


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (workers have no py-cpuinfo)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"

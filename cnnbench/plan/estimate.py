"""Wall-time estimates of a plan: before it runs (``run --dry-run``) and while it runs (ETA).

A cell's wall time is its **setup** (process start, framework import, canonical weights,
model build) plus its **timed part** as the protocol in `timing` spends it: the first step
(with graph capture or compilation in compiled modes), warm-up, then rounds until the
confidence target is met or the budget is spent, and never fewer than ``min_rounds``. The
budget runs from the end of the first step (a compile does not eat into it); a cell whose step
is slower than about budget / (min_warmup + min_rounds) overruns it, by exactly that rule.

Step times come from FLOPs: the device's GEMM peak (the plan's probe if one has been measured,
else a typical figure) times an MFU that each framework reaches on each workload, taken from
a full sweep on our 2-core machines and made a little slower on purpose, since noise makes
steps slower and almost never faster. Fixed costs were measured here (see the constants).

`Eta` corrects the estimate of the cells left as cells finish: observed/estimated step speed
(the cells left are re-estimated with it), setup, and timed part of budget-bound and of
step-bound cells, each a median shrunk towards 1, so one odd cell does not swing it. Pure
standard library plus our registries (rich only inside `eta_column`): the CLI imports it.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters import ADAPTERS
from cnnbench.core.cells import MODES, Cell, base_device
from cnnbench.core.keys import probe_peak
from cnnbench.measure.timing import Protocol
from cnnbench.plan.expand import expand
from cnnbench.plan.probes import TRAIN_FLOP_FACTOR, probe_cells
from cnnbench.plan.variants import VariantSet, missing_flags
from workloads import get_workload

# --------------------------------------------------------------------------- calibration
#
# Fixed costs, measured 2026-12-02 on our 2-vCPU AMD EPYC VM (AVX-512 kind, Python 3.11, the
# framework versions in FACTS.md) while three other engineers shared its two cores: the load
# average was 2 at first and 6-11 later, which stretched wall times 2-4x. Where a phase is
# single-threaded its CPU time is what a quiet machine's wall time would be, so the constants
# follow the CPU seconds and the load-2 wall times, rounded up.
#
#   `python -c "import X"` (wall, load 2-6, 3 runs): numpy 0.45-0.49 s; torch 3.8-3.8 s
#       (7.5 s cold); tensorflow 7.3-7.8 s; jax+flax+optax 3.4-3.5 s; mxnet 5.4-6.5 s (load 6)
#   canonical weights in numpy (workloads.reference.init_weights, load 2): lenet5 0.04 s,
#       resnet20 0.02 s, resnet50 0.73 s, mobilenet_v2 0.16 s, vgg16 5.1 s (37 ns a parameter)
#   one worker, `python -m cnnbench.measure.worker`, batch 1, budget 0.05 s, under /usr/bin/time
#   (CPU = user + sys of the whole worker; setup = wall before the first step):
#       pytorch  lenet5 infer: CPU 5.9-6.5 s; setup 5.7 s at load 2 (build_s 2.8: the first
#                torch.optim pulls in torch._dynamo), 12.6-14.3 s at load 7.5
#       tensorflow lenet5 infer: CPU 7.9-8.1 s (build_s 0.3-0.5); graph capture on the first
#                step, wall at load 9-10: lenet5 0.36, resnet20 infer 2.1 / train 6.6,
#                resnet50 infer 6.5 s (its build_s 7.0: 25.6 M weights copied in)
#       jax      lenet5 infer: CPU 3.8-4.2 s in all. lower+compile (in prepare, wall at load
#                9.5-11): lenet5 1.8-2.2, resnet20 infer 5.1 / train 30.5 (CPU +11 s over
#                lenet5), resnet50 infer 9.9 s
#       mxnet    lenet5 infer: CPU 5.3 s; hybridize on the first step (load 6-8, minus the
#                step): lenet5 0.3 / train 1.4, resnet20 infer 1.6 / train 2.8 s

PROCESS_S = 0.9  # interpreter + numpy + our packages (0.45 s) + runner: noise check 0.2 s, spawn
IMPORT_S = {  # the adapter's import of its framework and its set-up (threads, build facts)
    "null": 0.0,
    "pytorch": 3.8,
    "tensorflow": 8.0,
    "jax": 3.5,
    "mxnet": 3.0,
}
INIT_S_PER_PARAM = 3.7e-8  # numpy init of canonical weights: VGG-16's 138 M params took 5.1 s
BUILD_BASE_S = {  # build of a tiny model: optimizer, thread pools, first kernels
    "null": 0.0,
    "pytorch": 2.0,
    "tensorflow": 0.5,
    "jax": 0.5,
    "mxnet": 1.0,
}
BUILD_S_PER_PARAM = 6e-8  # copying canonical weights into the framework (TF/JAX ResNet-50: ~2 s)
# Graph capture / compilation, per execution mode: base + per layer of the spec, times
# TRAIN_COMPILE_FACTOR[mode] for a training step (forward, backward and optimizer update).
COMPILE_BASE_S = {
    "graph": 0.1,  # tf.function tracing + grappler, on the first step
    "xla": 1.0,  # tf.function(jit_compile=True), on the first step (guess: not measured)
    "jit": 0.3,  # jax: lowered and compiled ahead of time in prepare(), before the budget
    "hybrid": 0.2,  # mxnet hybridize(static_alloc) on the first step
    "compiled": 10.0,  # torch.compile (inductor) on CPU: C++ codegen (guess: not measured)
}
COMPILE_S_PER_LAYER = {"graph": 0.01, "xla": 0.04, "jit": 0.02, "hybrid": 0.01, "compiled": 0.3}
TRAIN_COMPILE_FACTOR = {"graph": 3.0, "xla": 3.0, "jit": 6.0, "hybrid": 2.0, "compiled": 3.0}
# JAX compiles in prepare(), outside the budget; the others compile inside the first step.
COMPILE_BEFORE_FIRST_STEP = frozenset({"jit"})
FIRST_STEP_FACTOR = 1.5  # the first step also creates kernels / primitives (eager too)

# Steady speed. REFERENCE_IMAGES_S is the previous full sweep on the 2-core machine (fp32,
# default batches, each framework's default execution mode, 2 threads), whose GEMM probes
# measured ~165-185 GFLOP/s: MFU = flops x images/s (x 3 for train) / REFERENCE_PEAK.
REFERENCE_PEAK = 175e9
_SWEPT = ("pytorch", "tensorflow", "jax", "mxnet")  # the column order of the rows below
REFERENCE_IMAGES_S: dict[str, dict[str, tuple[float, float]]] = {  # (train, infer) images/s
    w: dict(zip(_SWEPT, figures, strict=True)) for w, figures in {
        "lenet5": ((8960, 29588), (5251, 13443), (6525, 14494), (7540, 22475)),
        "cifar10_tutorial": ((634, 1231), (706, 3192), (365, 1869), (500, 1412)),
        "resnet20": ((407, 1305), (244, 1411), (156, 1000), (476, 1515)),
        "resnet50": ((3.1, 8.7), (3.2, 15.8), (1.3, 10.2), (5.9, 19.4)),
        "vgg16": ((1.3, 4.1), (1.3, 4.8), (0.5, 3.8), (1.6, 5.7)),
        "mobilenet_v2": ((11.0, 30.8), (13.8, 52.0), (1.9, 10.5), (15.1, 55.0)),
    }.items()
}
# Ladder levels below this CPU's slow the kernels down: images/s as a share of the default
# build's, ResNet-20 at batch 32 (issue 12's table, 2-core AVX-512 machine, the low end of
# PyTorch, TensorFlow and MXNet; JAX's convolutions ignore the cap). `avx` is a guess between.
ISA_SPEED: dict[str, dict[str, float]] = {
    "x86-64-v2": {"train": 0.26, "infer": 0.20},
    "isa-generic": {"train": 0.26, "infer": 0.20},
    "avx": {"train": 0.5, "infer": 0.4},
}
# One figure varied by +-15-25% between runs of a few seconds (FACTS.md), and noise only ever
# slows a step: assume steps this much slower than the reference sweep.
SLOWDOWN = 1.1
# Workloads or frameworks the sweep did not cover get this fraction of the framework's median
# MFU over the reference workloads; depthwise convolutions reach far less (MobileNet-V2 ran at
# 2-20% where ResNet-50 ran at 19-93%).
UNKNOWN_MFU_SHARE = 0.7
DEPTHWISE_MFU_SHARE = 0.3
DEFAULT_MFU = 0.2  # a framework with no reference figures at all
# Speed of an execution mode relative to the framework's default one (guesses, not measured:
# op-by-op dispatch costs most on small ops).
EXEC_MODE_SPEED = {
    ("tensorflow", "eager"): 0.6,
    ("tensorflow", "xla"): 1.0,
    ("jax", "eager"): 0.3,
    ("mxnet", "eager"): 0.8,
    ("pytorch", "compiled"): 1.0,
}
BATCH_MFU_EXPONENT = 0.15  # MFU x (batch / default batch)^0.15 below the default batch
GEMM_EFFICIENCY = 0.9  # a probe's median round against its best round (the peak)
MIN_STEP_S = 5e-4  # dispatch floor of one synchronized step

# Typical peaks when no probe has been measured: ~170 GFLOP/s for 2 AVX-512 threads here;
# a GPU's fp32 figure is deliberately low (a plan on a GPU is rarely run on a guess).
CPU_PEAK_PER_THREAD = 85e9
GPU_PEAK = 15e12
PRECISION_SPEED = {
    "cpu": {"fp32": 1.0, "tf32": 1.0, "bf16": 1.0, "fp16": 0.5},
    "gpu": {"fp32": 1.0, "tf32": 2.0, "bf16": 4.0, "fp16": 4.0},
}

# --------------------------------------------------------------------------- one cell


@dataclass(frozen=True)
class CellEstimate:
    """Where one cell's wall time goes, in seconds."""

    setup_s: float  # process start, import, weights, build (and an AOT compile): before the first step
    compile_s: float  # graph capture / compile of a compiled mode, in setup or the first step
    step_s: float  # steady step
    warmup_steps: int
    steps_per_round: int
    rounds: int
    timed_s: float  # first step + warm-up + rounds, what the protocol spends
    budget_s: float
    first_s: float  # the first step: outside the budget
    step_bound: bool  # min_warmup + min_rounds steps outlast the budget
    runs: bool = True  # False: the worker declares the cell unsupported before importing
    # The kernel probe after the cell (runner.probe_kernels): a process of its own that
    # builds the cell again and runs two steps with oneDNN's verbose log on; the first
    # repeat of a CPU cell only (later ones share it). Not in the row's wall_s.
    probe_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.setup_s + self.timed_s + self.probe_s

    @property
    def over_budget(self) -> bool:
        """The protocol's own `over_budget` flag (warm-up + rounds above 1.5 x budget)."""
        return self.timed_s - self.first_s > 1.5 * self.budget_s


def _threads(cell: Cell) -> int:
    if cell.threads:
        return cell.threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def peak_flops(cell: Cell, peaks: Mapping[Any, float] | None = None) -> float:
    """FLOP/s of the cell's device: the measured probe if ``peaks`` has it, else typical.

    ``peaks`` is keyed (device, threads, precision); `peaks_from_validity` converts
    `Validity.peaks`, whose keys also start with the machine id.
    """
    if peaks:
        # Probes run on one device of a set (validity.probe_cells); N GPUs have N peaks.
        got = peaks.get((base_device(cell.device), cell.threads, cell.precision))
        if got:
            return float(got) * (1 if cell.simulated else max(1, cell.n_devices))
    kind = "cpu" if cell.device.startswith("cpu") else "gpu"
    # Simulated CPU devices share the cell's threads: the peak of those threads.
    base = (CPU_PEAK_PER_THREAD * _threads(cell) if kind == "cpu"
            else GPU_PEAK * max(1, cell.n_devices))
    return base * PRECISION_SPEED[kind].get(cell.precision, 1.0)


def peaks_from_validity(peaks: Mapping[tuple[Any, ...], float]) -> dict[Any, float]:
    """`Validity.peaks` ((machine, device, threads, precision) -> FLOP/s) keyed as here."""
    out: dict[Any, float] = {}
    for key, v in peaks.items():
        k = tuple(key[-3:])
        out[k] = max(v, out.get(k, 0.0))
    return out


def peaks_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[Any, float]:
    """Peaks keyed as here from result rows (a previous run's probes, for ``--dry-run``)."""
    out: dict[Any, float] = {}
    for row in rows:
        if row.get("mode") == "peak" and (peak := probe_peak(dict(row))) is not None:
            k = (row["device"], row["threads"], row["precision"])
            out[k] = max(peak, out.get(k, 0.0))
    return out


def _reference_mfu(framework: str, workload: str, mode: str) -> float | None:
    ref = REFERENCE_IMAGES_S.get(workload, {}).get(framework)
    if ref is None:
        return None
    ips = ref[0] if mode == "train" else ref[1]
    factor = TRAIN_FLOP_FACTOR if mode == "train" else 1
    return get_workload(workload).flops_per_image * ips * factor / REFERENCE_PEAK


def mfu(cell: Cell) -> float:
    """Assumed steady MFU of a workload cell (before the SLOWDOWN margin)."""
    info = ADAPTERS.get(cell.framework)
    default_exec = info.default_exec_mode if info else cell.exec_mode
    m = _reference_mfu(cell.framework, cell.workload, cell.mode)
    if m is None:
        known = [v for w in REFERENCE_IMAGES_S
                 if (v := _reference_mfu(cell.framework, w, cell.mode)) is not None]
        m = UNKNOWN_MFU_SHARE * statistics.median(known) if known else DEFAULT_MFU
        if "depthwise" in get_workload(cell.workload).tags:
            m *= DEPTHWISE_MFU_SHARE
    if cell.exec_mode != default_exec:
        m *= EXEC_MODE_SPEED.get((cell.framework, cell.exec_mode), 0.5)
    m *= ISA_SPEED.get(cell.variant, {}).get(cell.mode, 1.0) if cell.framework != "jax" else 1.0
    default_batch = get_workload(cell.workload).default_batch
    if cell.batch_size < default_batch:
        m *= (cell.batch_size / default_batch) ** BATCH_MFU_EXPONENT
    return m


def step_seconds(cell: Cell, peaks: Mapping[Any, float] | None = None) -> float:
    """Estimated steady time of one synchronized step (a round is k of these)."""
    if cell.framework == "null":  # its step is a busy-wait of the `step_s` option
        return float(cell.options.get("step_s", 0.0)) + 2e-5
    if cell.mode == "peak":
        flops, eff = 2.0 * cell.batch_size**3, GEMM_EFFICIENCY
    else:
        factor = TRAIN_FLOP_FACTOR if cell.mode == "train" else 1
        flops = get_workload(cell.workload).flops_per_image * cell.batch_size * factor
        eff = mfu(cell)
    return max(MIN_STEP_S, SLOWDOWN * flops / (eff * peak_flops(cell, peaks)))


@functools.cache
def _builtin_variants() -> tuple[VariantSet, frozenset[str]]:
    from cnnbench.core.machine import cpu_flags

    return VariantSet(), cpu_flags()


def _variant_skipped(cell: Cell) -> bool:
    """A built-in variant that the runner records without a worker: one not defined for the
    cell's framework, or a ladder level above this CPU (variants from a file: assumed to run)."""
    if cell.variant == "default":
        return False
    builtin, flags = _builtin_variants()
    v = builtin.get(cell.framework, cell.variant)
    if v is None:
        return cell.variant in builtin.names()
    return v.level is not None and bool(missing_flags(v.level, flags))


def _declared_unsupported(cell: Cell) -> bool:
    """What the runner or the worker rejects before importing anything (see
    runner.WorkerProcess._launch and worker.run_cell)."""
    if _variant_skipped(cell):
        return True
    info = ADAPTERS.get(cell.framework)
    if info is None:
        return False
    kind = cell.device.split(":")[0].split("*")[0]
    return (cell.exec_mode not in info.exec_modes or cell.precision not in info.precisions
            or kind not in info.device_kinds)


def _setup_and_compile(cell: Cell) -> tuple[float, float]:
    fw = cell.framework
    setup = PROCESS_S + IMPORT_S.get(fw, 5.0) + BUILD_BASE_S.get(fw, 2.0)
    if cell.mode == "peak":
        return setup, 0.0
    spec = get_workload(cell.workload)
    setup += spec.params * (INIT_S_PER_PARAM + (BUILD_S_PER_PARAM if fw != "null" else 0.0))
    compiled = cell.exec_mode != "eager" and fw != "null"
    compile_s = 0.0
    if compiled:
        per_layer = COMPILE_S_PER_LAYER.get(cell.exec_mode, 0.05)
        compile_s = COMPILE_BASE_S.get(cell.exec_mode, 2.0) + per_layer * len(spec.layers)
        if cell.mode == "train":
            compile_s *= TRAIN_COMPILE_FACTOR.get(cell.exec_mode, 3.0)
    return setup, compile_s


def gets_kernel_probe(cell: Cell) -> bool:
    """Whether the runner probes this cell's kernels (with the probe on): an ok CPU cell of
    a real framework, first of its repeats (see runner.probe_kernels)."""
    return (cell.device == "cpu" and cell.mode != "peak" and cell.repeat == 0
            and cell.framework != "null" and not _declared_unsupported(cell))


PROBE_STEPS = 3  # its two steps, and what oneDNN's verbose log costs them


def estimate_cell(cell: Cell, budget_s: float, peaks: Mapping[Any, float] | None = None,
                  protocol: Protocol | None = None, speed: float = 1.0,
                  kernel_probe: bool = False) -> CellEstimate:
    """Where one cell's wall time will go, following the protocol of `timing.measure`.

    ``budget_s`` is the cell's budget (it wins over ``protocol.budget_s``); ``protocol``
    gives the rest (warm-up, rounds), default `Protocol()`. ``speed`` multiplies the step
    time (observed/estimated steps, as `Eta` learns it). Conservative: the rounds are
    assumed to run to the budget (the confidence target is not assumed to stop them early).
    """
    proto = protocol or Protocol(budget_s=budget_s)
    if _declared_unsupported(cell):
        return CellEstimate(PROCESS_S, 0.0, 0.0, 0, 0, 0, 0.0, budget_s, 0.0, False, runs=False)
    setup, compile_s = _setup_and_compile(cell)
    step = step_seconds(cell, peaks) * speed
    compiled = cell.exec_mode != "eager" and cell.mode != "peak"
    if cell.exec_mode in COMPILE_BEFORE_FIRST_STEP:
        setup, first = setup + compile_s, FIRST_STEP_FACTOR * step
    else:
        first = compile_s + FIRST_STEP_FACTOR * step
    # The protocol's own arithmetic has sawteeth (a step a little longer can mean one warm-up
    # step or one round fewer); the estimate takes the monotone upper envelope instead, so
    # more FLOPs or more budget never estimate less time, and the estimate never falls below
    # what a constant step would cost (tests/test_estimate.py checks it on a fake clock).
    # Warm-up: steady at the earliest after 2 x window steps; past its share of the budget it
    # stops at the end of the step that crosses it, once min_warmup steps are done.
    min_warm = proto.min_warmup_compiled if compiled else proto.min_warmup
    warm_s = max(min_warm * step,
                 min(2 * proto.window * step, proto.warmup_share * budget_s + step))
    # Calibration as in timing.warm_up: k steps make a round of at least min_round_s.
    k = max(1, math.ceil(proto.min_round_s / step))
    k = max(1, min(k, int(budget_s / (proto.min_rounds * 2) / step)))
    m = proto.min_round_s
    round_s = m + step if step < m else max(step, 2 * m)  # envelope of k x step
    # Rounds: until the deadline (the budget counts from the end of the first step), the last
    # one overshooting it by at most a round; never fewer than min_rounds, nor more than
    # max_rounds.
    started = first + warm_s
    by_min_rounds = started + proto.min_rounds * round_s
    by_deadline = min(first + budget_s + round_s, started + proto.max_rounds * round_s)
    timed = max(by_min_rounds, by_deadline)
    step_bound = by_min_rounds > by_deadline
    warm = max(min_warm, round(warm_s / step))
    rounds = max(proto.min_rounds, math.ceil((timed - started) / round_s - 1e-9))
    probe = (setup + compile_s + PROBE_STEPS * step
             if kernel_probe and gets_kernel_probe(cell) else 0.0)
    return CellEstimate(setup, compile_s, step, warm, k, rounds, timed, budget_s, first,
                        step_bound, probe_s=probe)


def estimate_cell_s(cell: Cell, budget_s: float, peaks: Mapping[Any, float] | None = None,
                    *, min_rounds: int = 8, protocol: Protocol | None = None) -> float:
    """Seconds of wall time for one cell, setup included."""
    proto = protocol or Protocol(budget_s=budget_s, min_rounds=min_rounds)
    return estimate_cell(cell, budget_s, peaks, proto).total_s


def estimate_plan_s(cells: Iterable[Cell], budget_s: float,
                    peaks: Mapping[Any, float] | None = None, *, with_probes: bool = False,
                    protocol: Protocol | None = None) -> float:
    """Seconds of wall time for all ``cells`` run one after another.

    ``with_probes`` adds the GEMM probes `runner.run_plan` runs first (pass the probe cells
    yourself instead if you already have them).
    """
    cells = list(cells)
    if with_probes:
        cells = [*probe_cells(cells), *cells]
    return sum(estimate_cell(c, budget_s, peaks, protocol).total_s for c in cells)


# --------------------------------------------------------------------------- ETA


def _shrunk_ratio(ratios: Sequence[float], prior_n: float) -> float:
    """Median observed/estimated on a log scale, pulled towards 1 as if ``prior_n`` cells
    had matched their estimates: one cell moves the ETA a little, many move it fully."""
    if not ratios:
        return 1.0
    logs = [math.log(min(max(r, 1 / 20), 20.0)) for r in ratios]  # a 10x busy machine was seen
    n = len(logs)
    return math.exp(statistics.median(logs) * n / (n + prior_n))


@dataclass
class Eta:
    """The plan's remaining wall time, corrected by the cells that finished.

    Four corrections, each a median of observed/estimated shrunk towards 1 (`_shrunk_ratio`):

    * **speed**: median round step of a finished cell / its estimated step. The cells still
      to run are re-estimated with it, so a slow machine turns cells step-bound as the
      protocol would (a ratio on totals could not: a budget-bound cell's time hardly moves);
    * **setup**: what came before the first step;
    * **budget**: the timed part of cells that were budget-bound at their observed speed
      (how much of its budget a cell uses: less when the confidence target stops it early);
    * **steps**: what is left over for step-bound cells once their speed is accounted for.

    A finished probe's peak re-estimates the cells still to run too.

    rich's progress display calls ``remaining_s`` from its own refresh thread while the
    runner records cells, so every method holds one lock: iterating the estimates while a
    finished cell is popped from them raised "dictionary changed size during iteration" and
    killed the display's thread mid-sweep.
    """

    cells: list[Cell]
    budget_s: float
    peaks: dict[Any, float] = field(default_factory=dict)
    protocol: Protocol | None = None
    prior_n: float = 2.0
    clock: Callable[[], float] = time.monotonic
    kernel_probe: bool = False  # the runner probes kernels after CPU cells
    estimates: dict[str, CellEstimate] = field(init=False)
    _done: dict[str, float] = field(init=False, default_factory=dict)
    _ratios: dict[str, list[float]] = field(init=False)
    _running: dict[str, float] = field(init=False, default_factory=dict)  # cell id -> start
    _lock: threading.RLock = field(init=False, default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self._ratios = {"speed": [], "setup": [], "budget": [], "steps": []}
        self._reestimate()

    def _estimate(self, c: Cell, speed: float | None = None) -> CellEstimate:
        return estimate_cell(c, self.budget_s, self.peaks, self.protocol,
                             self.ratio("speed") if speed is None else speed,
                             kernel_probe=self.kernel_probe)

    def _reestimate(self) -> None:
        self.estimates = {c.cell_id: self._estimate(c) for c in self.cells
                          if c.cell_id not in self._done}

    def estimated_total_s(self) -> float:
        """Observed seconds of the finished cells + the (uncorrected) estimate of the rest."""
        with self._lock:
            return sum(e.total_s for e in self.estimates.values()) + sum(self._done.values())

    def ratio(self, part: str) -> float:
        """Current correction of "speed", "setup", "budget" or "steps" (1.0 = as estimated)."""
        return _shrunk_ratio(self._ratios[part], self.prior_n)

    def start(self, cell: Cell) -> None:
        """A cell started (`run_plan`'s ``on_start``; interleaved cells start together)."""
        with self._lock:
            self._running[cell.cell_id] = self.clock()

    def done(self, cell: Cell, wall_s: float, timed_s: float | None = None,
             ok: bool = True, step_s: float | None = None) -> None:
        """Record a finished cell. ``timed_s`` (first step + warm-up + rounds, from its row)
        splits setup from the timed part, ``step_s`` (its median round step) gives its speed;
        without them the ratio of totals is used. Cells that did not run to the end
        (``ok=False``) tell nothing about speed."""
        with self._lock:
            self._record(cell, wall_s, timed_s, ok, step_s)

    def _record(self, cell: Cell, wall_s: float, timed_s: float | None, ok: bool,
                step_s: float | None) -> None:
        est = self.estimates.pop(cell.cell_id, None)
        self._done[cell.cell_id] = float(wall_s)
        self._running.pop(cell.cell_id, None)
        if est is None or not ok or not est.runs or wall_s <= 0:
            return
        if timed_s is None or not 0 <= timed_s <= wall_s:
            r = wall_s / (est.setup_s + est.timed_s)
            self._ratios["setup"].append(r)
            self._ratios["steps" if est.step_bound else "budget"].append(r)
            return
        self._ratios["setup"].append((wall_s - timed_s) / est.setup_s)
        if step_s and step_s > 0 and est.step_s > 0 and cell.mode != "peak":
            own_speed = step_s / (est.step_s / self.ratio("speed"))
            at_own = self._estimate(cell, own_speed)  # what it was, at the speed it ran
            self._ratios["speed"].append(own_speed)
            self._ratios["steps" if at_own.step_bound else "budget"].append(
                timed_s / at_own.timed_s)
            self._reestimate()
        else:
            self._ratios["steps" if est.step_bound else "budget"].append(timed_s / est.timed_s)

    def done_row(self, cell: Cell, row: Mapping[str, Any]) -> None:
        """`done` from a result row (as `runner.run_plan` hands to ``on_done``)."""
        ok = row.get("status") == "ok"
        parts = [row.get(k) for k in ("first_step_s", "warmup_s", "measure_s")]
        timed = sum(float(p) for p in parts if p is not None) if ok and None not in parts else None
        samples = row.get("samples_s") or []
        step = statistics.median(samples) if ok and samples else None
        with self._lock:
            self._record(cell, float(row.get("wall_s") or 0.0), timed, ok, step)
            if ok and cell.mode == "peak" and samples:
                peak = 2.0 * cell.batch_size**3 / min(samples)
                key = (cell.device, cell.threads, cell.precision)
                if peak > self.peaks.get(key, 0.0):
                    self.peaks[key] = peak
                    self._reestimate()

    def _corrected(self, est: CellEstimate) -> float:
        timed = self.ratio("steps" if est.step_bound else "budget") * est.timed_s
        return self.ratio("setup") * (est.setup_s + est.probe_s) + timed

    def remaining_s(self) -> float:
        """Seconds until the plan ends: the cells not finished, corrected, less the time
        the running ones have spent (they run side by side when interleaved, so that time
        counts once; never below a second while one runs)."""
        with self._lock:
            waiting = running = 0.0
            for cid, est in self.estimates.items():
                if cid in self._running:
                    running += self._corrected(est)
                else:
                    waiting += self._corrected(est)
            if self._running:
                running = max(1.0, running - (self.clock() - min(self._running.values())))
            return waiting + running


def format_duration(s: float) -> str:
    """A rough duration for people: "about 40 s", "about 18 min", "about 1 h 25 min"."""
    if s < 90:
        return f"about {max(5, round(s / 5) * 5):.0f} s"
    minutes = round(s / 60)
    if minutes < 90:
        return f"about {minutes} min"
    h, m = divmod(minutes, 60)
    return f"about {h} h {m} min" if m else f"about {h} h"


def format_clock(s: float) -> str:
    """H:MM:SS, as rich's TimeRemainingColumn shows it."""
    s = max(0, round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def eta_column(eta: Eta) -> Any:
    """A rich progress column that shows ``eta.remaining_s()`` (rich imported here only)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        max_refresh = 0.5

        def render(self, task: Any) -> Text:
            return Text(f"ETA {format_clock(eta.remaining_s())}", style="progress.remaining")

    return EtaColumn()


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class PlanEntry:
    workload: str
    modes: tuple[str, ...] = MODES
    batch_size: int | None = None  # None: the workload's default batch
    # Variants of this entry when the run names none (--variants): the build question the
    # preset answers. They run beside the default (runner: cells differing in variant are
    # interleaved); with --variants, every entry runs the run's own.
    variants: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PlanPreset:
    """Workloads x modes x batch and a budget: what `cnnbench run` does without options."""

    name: str
    entries: tuple[PlanEntry, ...]
    budget_s: float
    description: str

    def expand(self, frameworks: Sequence[str], *, own_variants: bool = True,
               **kwargs: Any) -> list[Cell]:
        """Cells of the preset for these frameworks, one framework's cells together;
        ``kwargs`` go to `plan.expand` (precisions, devices, threads, variants...).
        ``own_variants``: entries that name variants run those (False: the run named its
        own, which every entry runs)."""
        cells: list[Cell] = []
        for fw in frameworks:
            for e in self.entries:
                kw = dict(kwargs)
                if own_variants and e.variants:
                    kw["variants"] = list(e.variants)
                cells += expand([fw], [e.workload], modes=e.modes,
                                batch_sizes=[e.batch_size] if e.batch_size else None, **kw)
        return cells


FULL_PLAN = PlanPreset(
    "full",
    tuple(PlanEntry(w) for w in REFERENCE_IMAGES_S),
    8.0,
    "all six workloads, train and infer, default batches, 3 runs of 8 s per cell",
)

# What the estimator says of the candidates (2 threads, typical 170 GFLOP/s peak, the 4 GEMM
# probes included, 2026-12-02):
#   all 48 cells at 20 s (the old default; measured 56 min) ......... 78 min, 21 over budget
#   all 48 cells at 10 s ............................................ 73 min, 24 over budget
#     (the slow ImageNet cells are step-bound: a lower budget hardly shortens them)
#   small train+infer, ImageNet train+infer at batch 8, 10 s ......... 26 min, 16 over budget
#   small train+infer, ImageNet infer at batch 8, 10 s ............... 16 min,  9 over budget
#   small train+infer, ImageNet infer at batch 8, 15 s ............... 18 min,  4 over budget
#   small train+infer, ImageNet infer at batch 4, 15 s ............... 17 min,  2 over budget
#   the same plus ResNet-50/MobileNet-V2 training at batch 2, 15 s ... 22 min,  5 over budget
# ("small" = lenet5, cifar10_tutorial, resnet20 at their default batches.) The default is the
# sixth: every workload and framework in one run of about 17 minutes, estimated on the
# careful side, where only VGG-16 inference of TF and JAX outlasts its budget (step-bound:
# flagged over_budget, and their 8 rounds will likely be flagged ci_wide); the budget-bound
# cells get 15 s, enough rounds of 0.1 s to meet a 3% interval on a quiet machine.
# ImageNet-scale training (10-40 s a step on two cores; 12 minutes for JAX's VGG-16 alone) and
# batch-2 training figures nobody would quote are what `--full` is for.
# x86-64-v2 (SSE4.2) stands for a binary built for a 2008 CPU, as the stock TensorFlow of the
# seeds' claim was; x86-64-v3 (AVX2 + FMA) for today's usual distribution target, so on an
# AVX-512 CPU its gap to default is what AVX-512 buys, and on an AVX2 one it should be none.
LADDER_VARIANTS = ("default", "x86-64-v2", "x86-64-v3")
DEFAULT_PLAN = PlanPreset(
    "default",
    (
        PlanEntry("lenet5"),
        PlanEntry("cifar10_tutorial"),
        # The build question (issue 12): the stock build against itself capped to two
        # ladder levels that every x86-64 CPU running these frameworks has, at batch 32
        # (capped to SSE4 a training step at 128 takes seconds: 8 rounds outlast 5 s).
        PlanEntry("resnet20", batch_size=32, variants=LADDER_VARIANTS),
        PlanEntry("resnet50", ("infer",), 4),
        PlanEntry("vgg16", ("infer",), 4),
        PlanEntry("mobilenet_v2", ("infer",), 4),
    ),
    5.0,
    "LeNet-5 and the CIFAR-10 tutorial net train+infer at their default batch, ResNet-20 "
    "train+infer at batch 32 on the default build and capped to x86-64-v2 and x86-64-v3, "
    "ImageNet models infer at batch 4; 3 runs of 5 s per cell (--full: all six train+infer "
    "at default batches, 8 s)",
)
PRESETS = {p.name: p for p in (DEFAULT_PLAN, FULL_PLAN)}


def describe_plan(cells: Sequence[Cell], budget_s: float,
                  peaks: Mapping[Any, float] | None = None, *,
                  probes: Sequence[Cell] = (), protocol: Protocol | None = None,
                  top: int = 5, kernel_probe: bool = False) -> list[str]:
    """Lines for ``run --dry-run``: the estimated wall time and the cells that overrun."""
    ests = [(c, estimate_cell(c, budget_s, peaks, protocol, kernel_probe=kernel_probe))
            for c in [*probes, *cells]]
    total = sum(e.total_s for _, e in ests)
    what = f"{len(cells)} cells" + (f" + {len(probes)} GEMM probe" if probes else "")
    what += "s" if len(probes) > 1 else ""
    n_kernel = sum(e.probe_s > 0 for _, e in ests)
    if n_kernel:
        what += f" + {n_kernel} kernel probe" + ("s" if n_kernel > 1 else "")
    lines = [f"estimated wall time: {format_duration(total)} ({what}, {budget_s:g} s budget "
             f"per cell, setup included)"]
    over = sorted(((c, e) for c, e in ests if e.over_budget), key=lambda t: -t[1].total_s)
    if over:
        what = "1 cell" if len(over) == 1 else f"{len(over)} cells"
        lines.append(f"{what} will be flagged over_budget: too slow a step for "
                     f"{(protocol or Protocol()).min_rounds} rounds within the budget, and the "
                     "protocol never stops before that many:")
        lines += [f"  {c.label()}: {format_duration(e.total_s)} ({e.step_s:.1f} s a step)"
                  for c, e in over[:top]]
        if len(over) > top:
            lines.append(f"  ... and {len(over) - top} more")
    return lines

"""Wall-time estimates of a plan before it runs (``run --dry-run``), and of each cell for the ETA.

A cell's wall time is its **setup** (process start, framework import, canonical weights,
model build) plus its **timed part** as the protocol in `timing` spends it: the first step
(with graph capture or compilation in compiled modes), warm-up, then rounds until the
confidence target is met or the budget is spent, and never fewer than ``min_rounds``. The
budget runs from the end of the first step (a compile does not eat into it); a cell whose step
is slower than about budget / (min_warmup + min_rounds) overruns it, by exactly that rule.

Step times come from FLOPs: the device's GEMM peak (the plan's probe if one has been measured,
else a typical figure) times an MFU that each framework reaches on each workload, taken from
a full sweep on our 2-core machines and made a little slower on purpose, since noise makes
steps slower and almost never faster. Those figures and the fixed costs were measured on one
machine: they are data, in `calibration.toml` (read by `calibration`). The ETA that corrects
these estimates as cells finish is `cnnbench.sweep.eta`; the run presets are `presets`.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters import ADAPTERS
from cnnbench.core.cells import Cell, base_device
from cnnbench.core.keys import probe_key, probe_peak
from cnnbench.measure.timing import Protocol
from cnnbench.plan import calibration
from cnnbench.plan.probes import TRAIN_FLOP_FACTOR
from cnnbench.plan.variants import VariantSet, missing_flags
from workloads import get_workload

CAL = calibration.load()

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

    ``peaks`` is keyed (device, threads, precision), as `peaks_from_rows` gives it.
    """
    if peaks:
        # Probes run on one device of a set (probes.probe_cells); N GPUs have N peaks.
        got = peaks.get((base_device(cell.device), cell.threads, cell.precision))
        if got:
            return float(got) * (1 if cell.simulated else max(1, cell.n_devices))
    kind = "cpu" if cell.device.startswith("cpu") else "gpu"
    # Simulated CPU devices share the cell's threads: the peak of those threads.
    base = (CAL.peaks.cpu_per_thread * _threads(cell) if kind == "cpu"
            else CAL.peaks.gpu * max(1, cell.n_devices))
    speed = CAL.peaks.precision_speed[kind].get(cell.precision, 1.0)
    if kind == "cpu" and cell.precision == "bf16" and _native_bf16():
        speed = CAL.peaks.native_bf16_cpu.get(cell.framework, speed)
    return base * speed


@functools.cache
def _native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512_BF16 or AMX)."""
    return bool({"avx512_bf16", "amx_bf16"} & _builtin_variants()[1])


def peaks_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[Any, float]:
    """Peaks keyed as here from result rows (a previous run's probes, for ``--dry-run``)."""
    out: dict[Any, float] = {}
    for row in rows:
        if row.get("mode") == "peak" and (peak := probe_peak(dict(row))) is not None:
            k = (row["device"], row["threads"], row["precision"])
            out[k] = max(peak, out.get(k, 0.0))
    return out


def _reference_mfu(framework: str, workload: str, mode: str) -> float | None:
    ref = CAL.speed.reference_images_s.get(workload, {}).get(framework)
    if ref is None:
        return None
    ips = ref[0] if mode == "train" else ref[1]
    factor = TRAIN_FLOP_FACTOR if mode == "train" else 1
    return get_workload(workload).flops_per_image * ips * factor / CAL.speed.reference_peak


def mfu(cell: Cell) -> float:
    """Assumed steady MFU of a workload cell (before the calibration's slowdown margin)."""
    sp = CAL.speed
    info = ADAPTERS.get(cell.framework)
    default_exec = info.default_exec_mode if info else cell.exec_mode
    m = _reference_mfu(cell.framework, cell.workload, cell.mode)
    if m is None:
        known = [v for w in sp.reference_images_s
                 if (v := _reference_mfu(cell.framework, w, cell.mode)) is not None]
        m = sp.unknown_mfu_share * statistics.median(known) if known else sp.default_mfu
        if "depthwise" in get_workload(cell.workload).tags:
            m *= sp.depthwise_mfu_share
    if cell.exec_mode != default_exec:
        m *= sp.exec_mode_speed.get(cell.framework, {}).get(cell.exec_mode,
                                                            CAL.fallback.exec_mode_speed)
    m *= sp.isa_speed.get(cell.variant, {}).get(cell.mode, 1.0) if cell.framework != "jax" else 1.0
    default_batch = get_workload(cell.workload).default_batch
    if cell.batch_size < default_batch:
        m *= (cell.batch_size / default_batch) ** sp.batch_mfu_exponent
    return m


def step_seconds(cell: Cell, peaks: Mapping[Any, float] | None = None) -> float:
    """Estimated steady time of one synchronized step (a round is k of these)."""
    if cell.framework == "null":  # its step is a busy-wait of the `step_s` option
        return float(cell.options.get("step_s", 0.0)) + 2e-5
    if cell.mode == "peak":
        flops, eff = 2.0 * cell.batch_size**3, CAL.speed.gemm_efficiency
    else:
        factor = TRAIN_FLOP_FACTOR if cell.mode == "train" else 1
        flops = get_workload(cell.workload).flops_per_image * cell.batch_size * factor
        eff = mfu(cell)
    return max(CAL.speed.min_step_s, CAL.speed.slowdown * flops / (eff * peak_flops(cell, peaks)))


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


def process_and_import_s(framework: str) -> float:
    """A worker's start and its framework's import: what cells sharing one process pay once."""
    return CAL.setup.process_s + CAL.setup.import_s.get(framework, CAL.fallback.import_s)


def _setup_and_compile(cell: Cell) -> tuple[float, float]:
    fw = cell.framework
    su, comp, fb = CAL.setup, CAL.compile, CAL.fallback
    setup = process_and_import_s(fw) + su.build_base_s.get(fw, fb.build_base_s)
    if cell.mode == "peak":
        return setup, 0.0
    spec = get_workload(cell.workload)
    setup += spec.params * (su.init_s_per_param + (su.build_s_per_param if fw != "null" else 0.0))
    compiled = cell.exec_mode != "eager" and fw != "null"
    compile_s = 0.0
    if compiled:
        per_layer = comp.s_per_layer.get(cell.exec_mode, fb.compile_s_per_layer)
        compile_s = (comp.base_s.get(cell.exec_mode, fb.compile_base_s)
                     + per_layer * len(spec.layers))
        if cell.mode == "train":
            compile_s *= comp.train_factor.get(cell.exec_mode, fb.train_compile_factor)
    return setup, compile_s


def gets_kernel_probe(cell: Cell) -> bool:
    """Whether the runner may probe this cell's kernels (with the probe on): an ok CPU cell
    of a real framework (see runner.probe_kernels; `first_probes` says which one of the
    cells sharing a probe runs it)."""
    return (cell.device == "cpu" and cell.mode != "peak" and cell.framework != "null"
            and not _declared_unsupported(cell))


def first_probes(cells: Iterable[Cell]) -> set[str]:
    """The ids of the cells whose kernel probe runs: the first of each `probe_key`."""
    seen: set[str] = set()
    out: set[str] = set()
    for c in cells:
        if gets_kernel_probe(c) and probe_key(c) not in seen:
            seen.add(probe_key(c))
            out.add(c.cell_id)
    return out


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
        return CellEstimate(CAL.setup.process_s, 0.0, 0.0, 0, 0, 0, 0.0, budget_s, 0.0, False, runs=False)
    setup, compile_s = _setup_and_compile(cell)
    step = step_seconds(cell, peaks) * speed
    compiled = cell.exec_mode != "eager" and cell.mode != "peak"
    first_factor = CAL.setup.first_step_factor
    if cell.exec_mode in CAL.compile.before_first_step:
        setup, first = setup + compile_s, first_factor * step
    else:
        first = compile_s + first_factor * step
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


def format_duration(s: float) -> str:
    """A rough duration for people: "about 40 s", "about 18 min", "about 1 h 25 min"."""
    if s < 90:
        return f"about {max(5, round(s / 5) * 5):.0f} s"
    minutes = round(s / 60)
    if minutes < 90:
        return f"about {minutes} min"
    h, m = divmod(minutes, 60)
    return f"about {h} h {m} min" if m else f"about {h} h"


def describe_plan(cells: Sequence[Cell], budget_s: float,
                  peaks: Mapping[Any, float] | None = None, *,
                  probes: Sequence[Cell] = (), protocol: Protocol | None = None,
                  top: int = 5, kernel_probe: bool = False) -> list[str]:
    """Lines for ``run --dry-run``: the estimated wall time and the cells that overrun."""
    probed = first_probes(cells) if kernel_probe else set()
    ests = [(c, estimate_cell(c, budget_s, peaks, protocol, kernel_probe=c.cell_id in probed))
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

"""The tuner's candidates: each adapter's declared knobs (adapters.knobs) as cells.

One search group is a framework, workload, mode and device: its candidates are every
combination of the knobs the adapter declares valid there, times the thread counts and
(inference only) the batch sizes asked for. Its default is the cell a plain ``cnnbench run``
measures: the adapter's default execution mode, fp32, no options, all cores, the workload's
default batch. The default is always a candidate, so the ceiling is never below it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters import get_info
from adapters.knobs import Knobs, knobs
from cnnbench.core.cells import Cell, PlanError, normalize_device
from workloads import get_workload


@dataclass(frozen=True)
class Group:
    """The candidates that compete for one ceiling."""

    framework: str
    workload: str
    mode: str
    device: str
    default: Cell
    candidates: tuple[Cell, ...]
    absent: dict[str, str] = field(default_factory=dict)
    pruned: dict[str, str] = field(default_factory=dict)  # had, but not searched (Knobs)

    @property
    def label(self) -> str:
        return f"{self.framework} {self.workload} {self.mode} {self.device}"


def _options(k: Knobs, exec_mode: str, extra: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the adapter's options valid with ``exec_mode`` (a value equal to
    the option's default is left out of the dict, so the default cell keeps ``{}``), and of
    the user's ``--try-opt`` values (kept as given; they replace a declared option's values,
    and an option of one execution mode, such as torch.compile's mode, stays with it)."""
    axes: list[list[tuple[str, Any]]] = []
    for name, declared in k.options.items():
        if k.option_modes.get(name, exec_mode) == exec_mode and name not in extra:
            axes.append([(name, v) for v in declared])
    for name, values in extra.items():
        if k.option_modes.get(name, exec_mode) == exec_mode:
            axes.append([(name, v) for v in values])
    out = []
    for combo in itertools.product(*axes):
        out.append({n: v for n, v in combo
                    if n in extra or v != k.options[n][0]})
    return out


def _keep(values: Sequence[str], only: Sequence[str] | None) -> list[str]:
    return [v for v in values if only is None or v in only]


def group(framework: str, workload: str, mode: str, device: str, *,
          cpu_flags: Iterable[str] = (), threads: Sequence[int | None] = (None,),
          batch_sizes: Sequence[int] | None = None, exec_modes: Sequence[str] | None = None,
          precisions: Sequence[str] | None = None,
          try_opts: dict[str, Sequence[Any]] | None = None,
          base_options: dict[str, Any] | None = None) -> Group:
    """The search group of one framework, workload, mode and device. ``exec_modes`` and
    ``precisions`` narrow the declared space (never widen it; ``exec_modes`` may name a mode
    the search leaves out by default, ``Knobs.pruned``); ``batch_sizes`` apply to
    inference only: a training step on another batch is another training problem.
    ``base_options`` (``--adapter-opt``) go into every cell, the default's too; ``try_opts``
    (``--try-opt``) are more option values to search over."""
    info, spec = get_info(framework), get_workload(workload)
    device = normalize_device(device)
    kind = "cpu" if device.startswith("cpu") else "gpu"
    if kind not in info.device_kinds:
        raise PlanError(f"{framework} does not run on {kind}")
    k = knobs(framework, kind, cpu_flags)
    batches = list(batch_sizes or [spec.default_batch]) if mode == "infer" else [
        spec.default_batch]
    default = Cell(framework, "default", device, workload, mode, spec.default_batch, "fp32",
                   info.default_exec_mode, threads[-1] if threads else None,
                   dict(base_options or {}))
    cells: list[Cell] = [default]
    modes = k.searched_exec_modes if exec_modes is None else _keep(k.exec_modes, exec_modes)
    for ex, prec, th, b in itertools.product(modes,
                                             _keep(k.precisions, precisions), threads, batches):
        for opts in _options(k, ex, dict(try_opts or {})):
            c = Cell(framework, "default", device, workload, mode, b, prec, ex, th,
                     {**(base_options or {}), **opts})
            if c.cell_id not in {x.cell_id for x in cells}:
                cells.append(c)
    absent = dict(k.absent)
    if mode == "train":
        absent["batch_size"] = "training keeps the workload's batch: another batch is " \
                               "another training problem"
    # What is still left out: not the execution modes once named, nor an option's values
    # once --try-opt gives them.
    pruned = {what: why for what, why in k.pruned.items()
              if not (what.startswith("exec_mode=") and exec_modes is not None)
              and what.partition("=")[0] not in (try_opts or {})}
    return Group(framework, workload, mode, device, default, tuple(cells), absent, pruned)


def groups(frameworks: Sequence[str], workloads: Sequence[str], modes: Sequence[str],
           devices: Sequence[str], **kw: Any) -> list[Group]:
    """Every search group of the product, in a stable order."""
    return [group(f, w, m, d, **kw)
            for f, w, m, d in itertools.product(frameworks, workloads, modes, devices)]

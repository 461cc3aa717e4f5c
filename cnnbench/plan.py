"""The plan: frameworks x variants x devices x workloads x modes x batch sizes x precisions x
execution modes x thread counts, expanded into cells. Pure standard library + our registries.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from adapters import ADAPTERS, get_info
from workloads import get_workload

MODES = ("train", "infer")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_DEVICE_RE = re.compile(r"^(cpu|gpu:\d+(,\d+)*)$")


class PlanError(ValueError):
    """Bad input to the plan; the CLI prints it as one line."""


@dataclass(frozen=True)
class Cell:
    framework: str
    variant: str
    device: str
    workload: str
    mode: str
    batch_size: int
    precision: str
    exec_mode: str
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    repeat: int = 0

    @property
    def n_devices(self) -> int:
        return 1 if self.device == "cpu" else len(self.device.split(":", 1)[1].split(","))

    @property
    def cell_id(self) -> str:
        """Stable across runs: the resume key and the log file name."""
        key = json.dumps([self.framework, self.variant, self.device, self.workload, self.mode,
                          self.batch_size, self.precision, self.exec_mode, self.threads,
                          sorted(self.options.items())], default=str)
        h = hashlib.sha1(key.encode()).hexdigest()[:8]
        dev = self.device.replace(":", "").replace(",", "-")
        rep = f"-r{self.repeat}" if self.repeat else ""
        return (f"{self.framework}-{self.variant}-{dev}-{self.workload}-{self.mode}-"
                f"b{self.batch_size}-{self.precision}-{self.exec_mode}-t{self.threads}-{h}{rep}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return (f"{self.framework}/{self.variant} {self.workload} {self.mode} "
                f"b{self.batch_size} {self.precision} {self.exec_mode} {self.device}"
                + (f" t{self.threads}" if self.threads else "")
                + (f" #{self.repeat}" if self.repeat else ""))


def normalize_device(dev: str) -> str:
    """`cuda:N` is accepted as an alias of `gpu:N`, so rows compare across frameworks."""
    d = dev.strip().lower().replace("cuda:", "gpu:")
    if d in ("gpu", "cuda"):
        d = "gpu:0"
    if not _DEVICE_RE.match(d):
        raise PlanError(f"bad device {dev!r} (use cpu, gpu:N, cuda:N or gpu:0,1 for several)")
    return d


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for i in items:
        if i not in seen:
            seen.append(i)
    return seen


def expand(
    frameworks: Sequence[str],
    workloads: Sequence[str],
    modes: Sequence[str] = MODES,
    batch_sizes: Sequence[int] | None = None,
    precisions: Sequence[str] = ("fp32",),
    exec_modes: Sequence[str] = ("default",),
    devices: Sequence[str] = ("cpu",),
    variants: Sequence[str] = ("default",),
    threads: Sequence[int | None] = (None,),
    options: dict[str, Any] | None = None,
) -> list[Cell]:
    """All cells, in an order that keeps one framework's cells together.

    ``batch_sizes=None`` uses each workload's default batch. ``exec_modes`` may contain
    "default" (each adapter's own default). Combinations an adapter cannot run are still
    planned: the worker records them as `unsupported` with a reason, so nothing is dropped
    silently.
    """
    for f in frameworks:
        get_info(f)
    for w in workloads:
        get_workload(w)
    for m in modes:
        if m not in MODES:
            raise PlanError(f"unknown mode {m!r} (known: {', '.join(MODES)})")
    for p in precisions:
        if p not in PRECISIONS:
            raise PlanError(f"unknown precision {p!r} (known: {', '.join(PRECISIONS)})")
    for b in batch_sizes or ():
        if not isinstance(b, int) or b <= 0:
            raise PlanError(f"batch size must be a positive integer, got {b!r}")
    for t in threads:
        if t is not None and (not isinstance(t, int) or t <= 0):
            raise PlanError(f"thread count must be a positive integer, got {t!r}")
    known_modes = {m for info in ADAPTERS.values() for m in info.exec_modes} | {"default"}
    for e in exec_modes:
        if e not in known_modes:
            raise PlanError(f"unknown execution mode {e!r} (known: {', '.join(sorted(known_modes))})")
    devs = _unique(normalize_device(d) for d in devices)

    cells: list[Cell] = []
    for fw in _unique(frameworks):
        info = get_info(fw)
        fw_exec = _unique(info.default_exec_mode if e == "default" else e for e in exec_modes)
        for var, dev, wl, mode, prec, ex, th in itertools.product(
            _unique(variants), devs, _unique(workloads), _unique(modes), _unique(precisions),
            fw_exec, _unique(threads),
        ):
            for b in _unique(batch_sizes or [get_workload(wl).default_batch]):
                cells.append(Cell(fw, var, dev, wl, mode, b, prec, ex, th, dict(options or {})))
    return cells

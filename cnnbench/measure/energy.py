"""Energy over the timed rounds: Linux RAPL on the CPU, NVML's energy counter on GPUs.

Both are cumulative counters that the hardware keeps, so reading them costs nothing during a
step: the meter reads them before and after each timed round (or latency step) and adds the
differences, so warm-up, the runner's turns with other workers and the build are not counted.

* RAPL: ``/sys/class/powercap/intel-rapl:*`` zones whose ``name`` is ``package-N`` or
  ``dram`` (``core`` and ``uncore`` are parts of a package and would count twice);
  ``energy_uj`` wraps at ``max_energy_range_uj``. Since 2020 kernels make ``energy_uj``
  readable by root only, and virtual machines usually have no powercap at all: the row then
  says why in ``energy_reason``.
* NVML: ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver loaded, Volta
  and later), summed over the cell's GPUs.

Pure standard library; pynvml is imported only for a GPU cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

POWERCAP = Path("/sys/class/powercap")


class Counter(Protocol):
    """One cumulative energy counter: read() in joules; the value at which it wraps."""

    name: str
    wrap_j: float | None

    def read(self) -> float: ...


@dataclass
class RaplZone:
    name: str
    path: Path
    wrap_j: float | None

    def read(self) -> float:
        return int((self.path / "energy_uj").read_text().strip()) / 1e6


def rapl_zones(root: Path = POWERCAP) -> tuple[list[RaplZone], str | None]:
    """The package and DRAM zones under ``root`` that can be read, or ([], the reason)."""
    if not root.is_dir():
        return [], f"no RAPL: {root} does not exist (a virtual machine exposes none)"
    zones, denied = [], []
    for d in sorted(root.glob("intel-rapl*")):
        try:
            name = (d / "name").read_text().strip()
        except OSError:
            continue  # the control type folder itself has no name and no counter
        if not (name.startswith("package") or name == "dram"):
            continue
        try:
            rng = (d / "max_energy_range_uj").read_text().strip()
            zone = RaplZone(f"rapl:{name}", d, int(rng) / 1e6 if rng else None)
            zone.read()
        except PermissionError:
            denied.append(name)
            continue
        except (OSError, ValueError):
            continue
        zones.append(zone)
    if zones:
        return zones, None
    if denied:
        return [], (f"RAPL {', '.join(denied)}: energy_uj is readable by root only "
                    "(sudo chmod o+r /sys/class/powercap/intel-rapl*/energy_uj)")
    return [], f"no RAPL package or dram zone under {root}"


@dataclass
class NvmlGpu:
    name: str
    handle: Any
    nvml: Any
    wrap_j: float | None = None  # 64-bit millijoules: never wraps in practice

    def read(self) -> float:
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) / 1e3


def nvml_gpus(indices: list[int] | None) -> tuple[list[NvmlGpu], str | None]:
    """NVML energy counters of the GPUs ``indices`` (None: all), or ([], the reason)."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return [], "no NVML: nvidia-ml-py is not installed in this framework's environment"
    try:
        pynvml.nvmlInit()
        idx = list(range(pynvml.nvmlDeviceGetCount())) if indices is None else indices
        gpus = [NvmlGpu(f"nvml:gpu{i}", pynvml.nvmlDeviceGetHandleByIndex(i), pynvml)
                for i in idx]
        for g in gpus:
            g.read()
    except Exception as exc:  # NVMLError_NotSupported on pre-Volta GPUs, no driver, ...
        return [], f"NVML energy counter not readable: {type(exc).__name__}: {exc}"[:300]
    return gpus, None


@dataclass
class EnergyMeter:
    """Adds the counters' differences over the intervals between begin() and end()."""

    counters: list[Any]
    reason: str | None = None
    joules: float = 0.0
    seconds: float = 0.0
    clock: Callable[[], float] = time.perf_counter
    _start: list[float] = field(default_factory=list)
    _t0: float = 0.0

    def begin(self) -> None:
        if self.counters:
            self._start = [c.read() for c in self.counters]
            self._t0 = self.clock()

    def end(self) -> None:
        if not self.counters:
            return
        self.seconds += self.clock() - self._t0
        for c, before in zip(self.counters, self._start, strict=True):
            now = c.read()
            # A counter that passed its maximum started again from 0 (at most once: RAPL's
            # range lasts minutes at full power, far longer than a round).
            self.joules += now - before if now >= before or not c.wrap_j else (
                now + c.wrap_j - before)

    def around(self, step: Callable[[], float]) -> float:
        self.begin()
        t = step()
        self.end()
        return t

    def fields(self, images: int) -> dict[str, object]:
        """The row's energy fields for ``images`` processed in the metered intervals."""
        if not self.counters:
            return {"energy_reason": self.reason}
        return {"energy_j": self.joules, "energy_s": self.seconds,
                "joules_per_image": self.joules / images if images else None,
                "mean_watts": self.joules / self.seconds if self.seconds > 0 else None,
                "energy_source": "+".join(c.name for c in self.counters), "energy_reason": None}


def meter_for(device: str, root: Path = POWERCAP) -> EnergyMeter:
    """The meter of a cell's device: RAPL for cpu (and simulated cpu*N), NVML for GPUs."""
    if device.startswith("gpu"):
        idx = None if device == "gpu:all" else [int(i) for i in device[4:].split("+")]
        gpus, why = nvml_gpus(idx)
        return EnergyMeter(list(gpus), why)
    zones, why = rapl_zones(root)
    return EnergyMeter(list(zones), why)

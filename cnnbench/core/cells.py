"""The typed cell and the device set: what one measurement is, and where it runs.

Pure standard library. The plan (``cnnbench.plan.expand``) builds cells; every floor above
passes them on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import lru_cache
from typing import Any

MODES = ("train", "infer")
# Planned only when asked (--latency, --modes latency): an inference cell whose every step is
# timed on its own, for latency percentiles (cnnbench.measure.latency).
LATENCY_MODE = "latency"
ALL_MODES = (*MODES, LATENCY_MODE)
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
SCALINGS = ("weak", "strong")
# One device (cpu, gpu:N), a set of GPUs joined by "+" (gpu:0+1) or all of them (gpu:all),
# or N simulated CPU devices (cpu*2). "+" and "*", not ",": a device set must survive the
# comma-separated lists of the command line.
_DEVICE_RE = re.compile(r"^(cpu|cpu\*[1-9]\d*|gpu:\d+(\+\d+)*|gpu:all)$")


class PlanError(ValueError):
    """Bad input to the plan; the CLI prints it as one line."""


class CellError(PlanError):
    """A cell read from a file (`Cell.from_dict`) that is not a cell."""


_TEXT_FIELDS = ("framework", "variant", "device", "workload", "mode", "precision", "exec_mode")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CellError(f"cell field {name} must be an integer >= {minimum}, got {value!r}")


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
    # Data parallel only (None on one device, where weak and strong scaling coincide):
    # "weak" keeps the per-device batch, "strong" the global batch. batch_size is global.
    scaling: str | None = None

    @property
    def devices(self) -> DeviceSet:
        """The cell's device set, parsed (``device`` holds its normalized spelling)."""
        return DeviceSet.parse(self.device)

    @property
    def n_devices(self) -> int:
        """Devices of the cell; 0 for gpu:all, whose count only the machine knows."""
        return self.devices.count

    @property
    def simulated(self) -> bool:
        return self.devices.simulated

    @property
    def per_device_batch(self) -> int | None:
        n = self.n_devices
        return self.batch_size // n if n and self.batch_size % n == 0 else None

    @property
    def cell_id(self) -> str:
        """Stable across runs: the resume key and the log file name."""
        fields: list[Any] = [self.framework, self.variant, self.device, self.workload,
                             self.mode, self.batch_size, self.precision, self.exec_mode,
                             self.threads, sorted(self.options.items())]
        if self.scaling:  # one-device cells keep the ids they had before device sets
            fields.append(self.scaling)
        h = hashlib.sha1(json.dumps(fields, default=str).encode()).hexdigest()[:8]
        dev = self.device.replace(":", "").replace("+", "-").replace("*", "x")
        rep = f"-r{self.repeat}" if self.repeat else ""
        sc = f"-{self.scaling}" if self.scaling else ""
        return (f"{self.framework}-{self.variant}-{dev}-{self.workload}-{self.mode}-"
                f"b{self.batch_size}-{self.precision}-{self.exec_mode}-t{self.threads}{sc}-"
                f"{h}{rep}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Cell:
        """A cell from its `to_dict` form (a cell file, a Slurm sweep's state), checked
        field by field: a `CellError` with one line says what is wrong, so nothing past
        this point meets a cell that is not one."""
        if not isinstance(data, dict):
            raise CellError(f"a cell is a JSON object, not {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = [f.name for f in fields(cls)
                   if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
        if unknown or missing:
            raise CellError("cell fields: " + "; ".join(
                ([f"unknown {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])))
        for name in _TEXT_FIELDS:
            if not isinstance(data[name], str) or not data[name]:
                raise CellError(f"cell field {name} must be a non-empty string, got {data[name]!r}")
        _check_int("batch_size", data["batch_size"], minimum=1)
        _check_int("repeat", data.get("repeat", 0), minimum=0)
        if data.get("threads") is not None:
            _check_int("threads", data["threads"], minimum=1)
        if not isinstance(data.get("options", {}), dict):
            raise CellError(f"cell field options must be an object, got {data['options']!r}")
        if data.get("scaling") not in (None, *SCALINGS):
            raise CellError(f"cell field scaling must be one of {', '.join(SCALINGS)} or null, "
                            f"got {data['scaling']!r}")
        try:
            device = normalize_device(data["device"])
        except PlanError as exc:
            raise CellError(f"cell field device: {exc}") from None
        return cls(**{**data, "device": device, "options": dict(data.get("options") or {})})

    def label(self) -> str:
        return (f"{self.framework}/{self.variant} {self.workload} {self.mode} "
                f"b{self.batch_size} {self.precision} {self.exec_mode} {self.device}"
                + (f" t{self.threads}" if self.threads else "")
                + (f" {self.scaling}" if self.scaling else "")
                + (f" #{self.repeat}" if self.repeat else ""))


@dataclass(frozen=True)
class DeviceSet:
    """The devices of a cell, parsed once: ``kind`` "cpu" or "gpu"; ``indices`` the GPUs
    (None: gpu:all, every GPU the machine has) or, for ``cpu*N``, 0..N-1 simulated CPU
    devices on the same cores. ``str()`` gives the normalized spelling back, which
    `parse` reads again to the same set."""

    kind: str
    indices: tuple[int, ...] | None
    simulated: bool = False

    @classmethod
    def parse(cls, text: str) -> DeviceSet:
        """Read any accepted spelling (see `_parse`); cached, as rows and cells ask often."""
        return _parse(text)

    @classmethod
    def _read(cls, text: str) -> DeviceSet:
        """Read any accepted spelling: `cuda:N` is an alias of `gpu:N` (rows compare across
        frameworks), a GPU set is sorted and deduplicated (gpu:1+0 is gpu:0+1), gpu:0,1 (the
        Python API's old spelling) is gpu:0+1, and a set of one is that device (cpu*1 is
        cpu). Anything else is a `PlanError` with one line saying what is accepted."""
        d = str(text).strip().lower().replace("cuda:", "gpu:")
        if d in ("gpu", "cuda"):
            d = "gpu:0"
        if d.startswith("gpu:") and "," in d:
            d = d.replace(",", "+")
        if d.isdigit():  # what is left of gpu:0,1 once a comma-separated list is split
            raise PlanError(f"bad device {text!r}: several GPUs are joined with '+' (gpu:0+1), "
                            "not ','")
        if not _DEVICE_RE.match(d):
            raise PlanError(f"bad device {text!r} (use cpu, cpu*N for N simulated CPU devices, "
                            "gpu:N, cuda:N, gpu:0+1 for several GPUs or gpu:all)")
        if d == "gpu:all":
            return cls("gpu", None)
        if d.startswith("gpu:"):
            return cls("gpu", tuple(sorted({int(i) for i in d[4:].split("+")})))
        n = int(d[4:]) if d.startswith("cpu*") else 1
        return cls("cpu", tuple(range(n)), simulated=n > 1)

    def __str__(self) -> str:
        if self.kind == "cpu":
            return f"cpu*{self.count}" if self.simulated else "cpu"
        if self.indices is None:
            return "gpu:all"
        return "gpu:" + "+".join(map(str, self.indices))

    @property
    def count(self) -> int:
        """Devices in the set; 0 for gpu:all (the machine decides)."""
        return 0 if self.indices is None else len(self.indices)

    @property
    def is_simulated(self) -> bool:
        """cpu*N: N devices that share the same cores (they measure overhead, not speedup)."""
        return self.simulated

    @property
    def parallel(self) -> bool:
        """Run data parallel: several devices, or gpu:all (which may be one)."""
        return self.indices is None or len(self.indices) > 1

    @property
    def base(self) -> DeviceSet:
        """The one device a set is made of (its GEMM probe's device): cpu*2 -> cpu,
        gpu:0+1 -> gpu:0, gpu:all -> gpu:0."""
        if self.kind == "cpu":
            return DeviceSet("cpu", (0,))
        return DeviceSet("gpu", (self.indices or (0,))[:1])

    @property
    def gpus_needed(self) -> int:
        """GPUs a machine must have for the set to exist on it (gpu:0+3 needs 4); 0 on the
        CPU, 1 for gpu:all."""
        if self.kind == "cpu":
            return 0
        return max(self.indices) + 1 if self.indices else 1

    def resolve(self, gpu_count: int) -> DeviceSet:
        """gpu:all as a machine's GPUs (gpu:0+1+...); left as it is when there are none, so
        the cell is recorded unavailable with the reason."""
        if self.kind != "gpu" or self.indices is not None or gpu_count <= 0:
            return self
        return DeviceSet("gpu", tuple(range(gpu_count)))


_parse = lru_cache(maxsize=4096)(DeviceSet._read)


# The device-string helpers of the plan and the rows: thin wrappers over DeviceSet.

def normalize_device(dev: str) -> str:
    """The normalized spelling of a device set (see `DeviceSet.parse`); PlanError if bad."""
    return str(DeviceSet.parse(dev))


def device_count(device: str) -> int:
    """Devices in a device string; 0 for gpu:all (the machine decides). A value that is no
    device (a damaged row) counts as one, so reading rows never raises."""
    try:
        return DeviceSet.parse(str(device)).count
    except PlanError:
        return 1


def is_simulated(device: str) -> bool:
    """cpu*N: N devices that share the same cores (they measure overhead, not speedup). A
    value that is no device (a damaged row) is not simulated."""
    try:
        return DeviceSet.parse(str(device)).simulated
    except PlanError:
        return False


def base_device(device: object) -> str:
    """The one device a set is made of (its GEMM probe's device): cpu*2 -> cpu,
    gpu:0+1 -> gpu:0, gpu:all -> gpu:0. A value that is no device (a damaged row) is
    returned as its text, so grouping rows by it never raises."""
    try:
        return str(DeviceSet.parse(str(device)).base)
    except PlanError:
        return str(device)


def resolve_all_gpus(device: str, gpu_count: int) -> str:
    """gpu:all as this machine's GPUs (gpu:0+1+...); left as it is when there are none, so
    the cell is recorded unavailable with the reason."""
    return str(DeviceSet.parse(device).resolve(gpu_count))

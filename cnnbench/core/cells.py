"""The typed cell and the device strings: what one measurement is, and where it runs.

Pure standard library. The plan (``cnnbench.plan.expand``) builds cells; every floor above
passes them on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
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
    def n_devices(self) -> int:
        """Devices of the cell; 0 for gpu:all, whose count only the machine knows."""
        return device_count(self.device)

    @property
    def simulated(self) -> bool:
        return is_simulated(self.device)

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

    def label(self) -> str:
        return (f"{self.framework}/{self.variant} {self.workload} {self.mode} "
                f"b{self.batch_size} {self.precision} {self.exec_mode} {self.device}"
                + (f" t{self.threads}" if self.threads else "")
                + (f" {self.scaling}" if self.scaling else "")
                + (f" #{self.repeat}" if self.repeat else ""))


def normalize_device(dev: str) -> str:
    """`cuda:N` is accepted as an alias of `gpu:N`, so rows compare across frameworks; a GPU
    set is sorted and deduplicated (gpu:1+0 is gpu:0+1), gpu:0,1 (the Python API's old
    spelling) is gpu:0+1, and a set of one is that device (gpu:3+3 is gpu:3, cpu*1 is cpu)."""
    d = dev.strip().lower().replace("cuda:", "gpu:")
    if d in ("gpu", "cuda"):
        d = "gpu:0"
    if d.startswith("gpu:") and "," in d:
        d = d.replace(",", "+")
    if d.isdigit():  # what is left of gpu:0,1 once a comma-separated list is split
        raise PlanError(f"bad device {dev!r}: several GPUs are joined with '+' (gpu:0+1), "
                        "not ','")
    if not _DEVICE_RE.match(d):
        raise PlanError(f"bad device {dev!r} (use cpu, cpu*N for N simulated CPU devices, "
                        "gpu:N, cuda:N, gpu:0+1 for several GPUs or gpu:all)")
    if d.startswith("gpu:") and d != "gpu:all":
        idx = sorted({int(i) for i in d[4:].split("+")})
        d = "gpu:" + "+".join(map(str, idx))
    return "cpu" if d == "cpu*1" else d


def device_count(device: str) -> int:
    """Devices in a normalized device string; 0 for gpu:all (the machine decides)."""
    if device == "gpu:all":
        return 0
    if device.startswith("cpu*"):
        return int(device[4:])
    if device.startswith("gpu:"):
        return len(device[4:].split("+"))
    return 1


def is_simulated(device: str) -> bool:
    """cpu*N: N devices that share the same cores (they measure overhead, not speedup)."""
    return device.startswith("cpu*")


def base_device(device: str) -> str:
    """The one device a set is made of (its GEMM probe's device): cpu*2 -> cpu,
    gpu:0+1 -> gpu:0, gpu:all -> gpu:0."""
    if device.startswith("cpu"):
        return "cpu"
    if device == "gpu:all":
        return "gpu:0"
    return "gpu:" + device[4:].split("+")[0]


def resolve_all_gpus(device: str, gpu_count: int) -> str:
    """gpu:all as this machine's GPUs (gpu:0+1+...); left as it is when there are none, so
    the cell is recorded unavailable with the reason."""
    if device != "gpu:all" or gpu_count <= 0:
        return device
    return normalize_device("gpu:" + "+".join(str(i) for i in range(gpu_count)))

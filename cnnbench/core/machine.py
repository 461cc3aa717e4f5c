"""The machine record: CPU model and ISA flags, cores, memory, GPUs and driver, OS, Python.

Uses py-cpuinfo (CPU model and flags), psutil (cores, memory, load) and nvidia-ml-py
(GPUs and driver) so no framework is imported to describe the hardware.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import socket
from pathlib import Path
from typing import Any

from cnnbench.core.files import write_json_atomic

# What every x86-64 machine the ids were first made on had; more than this goes in the id.
_BASE_ISA = frozenset({"sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c"})
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
             "avx512vl", "avx512_vnni", "avx512vnni", "avx512_bf16", "avx512bf16",
             "amx_bf16", "amx_tile", "amx_int8", "neon", "asimd", "sve")


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as the kernel names them (/proc/cpuinfo; py-cpuinfo where
    there is none). What the ISA ladder checks a level against."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    import cpuinfo

    return frozenset(cpuinfo.get_cpu_info().get("flags", []))


def _cpu() -> dict[str, Any]:
    import cpuinfo
    import psutil

    info = cpuinfo.get_cpu_info()
    flags = sorted(info.get("flags", []))
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 1
    governor = None
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if gov.exists():
        governor = gov.read_text().strip()
    return {
        "model": info.get("brand_raw") or platform.processor() or "unknown",
        "arch": info.get("arch_string_raw") or platform.machine(),
        "vendor": info.get("vendor_id_raw"),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "flags": flags,
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": affinity,
        "hz_advertised": info.get("hz_advertised_friendly"),
        "governor": governor,
        "l2_cache": info.get("l2_cache_size"),
        "l3_cache": info.get("l3_cache_size"),
    }


def _optional(fn: Any, *args: Any) -> Any:
    """An NVML query that this GPU, driver or binding may not support: None then."""
    try:
        value = fn(*args)
    except Exception:
        return None
    return value.decode() if isinstance(value, bytes) else value


# NVML's topology levels between two GPUs (nvmlDeviceGetTopologyCommonAncestor), as
# `nvidia-smi topo -m` names them: what the traffic of an all-reduce crosses.
_TOPOLOGY = {0: "internal", 10: "PIX (one PCIe switch)", 20: "PXB (several PCIe switches)",
             30: "PHB (a PCIe host bridge)", 40: "NODE (the CPU socket's interconnect)",
             50: "SYS (between CPU sockets)"}


def _nvlinks(nvml: Any, handle: Any) -> int | None:
    """Active NVLink links of one GPU (None where NVML cannot say)."""
    n_links = int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18))
    active, answered = 0, False
    for link in range(n_links):
        state = _optional(nvml.nvmlDeviceGetNvLinkState, handle, link)
        if state is None:
            continue
        answered = True
        active += int(bool(state))
    return active if answered else None


def _interconnect(nvml: Any, handles: list[Any]) -> dict[str, Any]:
    """How each pair of GPUs is connected: NVLink where both have active links (and NVML
    reports a link between them), else the PCIe topology level."""
    pairs: dict[str, str] = {}
    for i, a in enumerate(handles):
        for j in range(i + 1, len(handles)):
            b = handles[j]
            p2p = _optional(nvml.nvmlDeviceGetP2PStatus, a, b,
                            getattr(nvml, "NVML_P2P_CAPS_INDEX_NVLINK", 3))
            if p2p == getattr(nvml, "NVML_P2P_STATUS_OK", 0):
                pairs[f"{i}-{j}"] = "NVLink"
                continue
            level = _optional(nvml.nvmlDeviceGetTopologyCommonAncestor, a, b)
            pairs[f"{i}-{j}"] = _TOPOLOGY.get(level, f"level {level}") if level is not None \
                else "unknown"
    kinds = {("NVLink" if v == "NVLink" else "PCIe") for v in pairs.values() if v != "unknown"}
    summary = "/".join(sorted(kinds)) if kinds else None
    return {"interconnect": summary, "gpu_pairs": pairs}


def parse_topo_matrix(text: str) -> dict[str, str]:
    """`nvidia-smi topo -m`'s GPU-to-GPU matrix as {"0-1": "NV4", ...} (X on the diagonal
    and the CPU/NUMA affinity columns left out)."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {}
    header = lines[0].split()
    gpu_cols = [i for i, h in enumerate(header) if re.fullmatch(r"GPU\d+", h)]
    out: dict[str, str] = {}
    for ln in lines[1:]:
        cells = ln.split()
        if not cells or not re.fullmatch(r"GPU\d+", cells[0]):
            continue
        a = int(cells[0][3:])
        for col in gpu_cols:
            if col + 1 < len(cells):
                b = int(header[col][3:])
                if a < b:
                    out[f"{a}-{b}"] = cells[col + 1]
    return out


def _smi_topology() -> dict[str, str] | None:
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        proc = subprocess.run([smi, "topo", "-m"], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_topo_matrix(proc.stdout) if proc.returncode == 0 else None


def _gpu(nvml: Any, i: int, h: Any) -> dict[str, Any]:
    """One GPU's record (NVML device handle ``h``, index ``i``); every field optional."""
    mem = _optional(nvml.nvmlDeviceGetMemoryInfo, h)
    cc = _optional(nvml.nvmlDeviceGetCudaComputeCapability, h)
    pci = _optional(nvml.nvmlDeviceGetPciInfo, h)
    bus = getattr(pci, "busId", None) if pci is not None else None
    power_mw = _optional(nvml.nvmlDeviceGetPowerManagementLimit, h)
    return {
        "index": i,
        "name": _optional(nvml.nvmlDeviceGetName, h),
        "memory_bytes": int(mem.total) if mem is not None else None,
        "uuid": _optional(nvml.nvmlDeviceGetUUID, h),
        "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
        "pci_bus_id": bus.decode() if isinstance(bus, bytes) else bus,
        "nvlinks_active": _nvlinks(nvml, h),
        "power_limit_w": power_mw / 1000 if power_mw else None,
    }


def _gpu_record(nvml: Any) -> dict[str, Any]:
    """The machine's GPUs, driver and interconnect from an initialised NVML."""
    driver = _optional(nvml.nvmlSystemGetDriverVersion)
    cuda = _optional(nvml.nvmlSystemGetCudaDriverVersion_v2)
    gpus, handles = [], []
    count = _optional(nvml.nvmlDeviceGetCount) or 0
    for i in range(count):
        h = _optional(nvml.nvmlDeviceGetHandleByIndex, i)
        if h is None:
            continue
        handles.append(h)
        gpus.append(_gpu(nvml, i, h))
    rec: dict[str, Any] = {
        "gpus": gpus, "driver": driver,
        "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
        **(_interconnect(nvml, handles) if len(handles) > 1 else
           {"interconnect": None, "gpu_pairs": {}}),
    }
    if not gpus:
        rec["gpu_error"] = "NVML lists no GPU"
    if len(handles) > 1:
        rec["topology_smi"] = _smi_topology()
    return rec


def _gpus(nvml: Any = None) -> dict[str, Any]:
    """GPUs, driver, CUDA driver version and interconnect, from NVML (nvidia-ml-py), never
    from a framework. Every field is optional and nothing here raises: a machine without
    GPUs gets ``gpus: []`` and ``gpu_error`` saying why. cuDNN belongs to each framework's
    build (the rows' ``build.cudnn``), not to the machine."""
    if nvml is None:
        try:
            import pynvml
        except ImportError:
            return {"gpus": [], "driver": None, "gpu_error": "nvidia-ml-py not installed"}
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return {"gpus": [], "driver": None, "gpu_error": f"NVML unavailable: {exc}"}
    try:
        return _gpu_record(nvml)
    except Exception as exc:  # a driver/binding mismatch: say so, never crash the sweep
        return {"gpus": [], "driver": None, "gpu_error": f"NVML query failed: {exc}"}
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def probe() -> dict[str, Any]:
    import psutil

    rec: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cpu": _cpu(),
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    rec.update(_gpus())
    return rec


def machine_id(rec: dict[str, Any]) -> str:
    """Readable and stable: host name plus a hash of the hardware that decides speed. The
    CPU's vector extensions are part of it: cloud VMs of one model string ("AMD EPYC") come
    with and without AVX-512, and their results must not land in one machine's folder."""
    host = re.sub(r"[^a-z0-9]+", "-", rec["hostname"].lower()).strip("-")[:24] or "host"
    parts: list[Any] = [rec["cpu"]["model"], rec["cpu"]["logical_cores"],
                        rec["memory_bytes"] >> 30, [g["name"] for g in rec.get("gpus", [])]]
    isa = rec["cpu"].get("isa")
    if isa and set(isa) - _BASE_ISA:  # an AVX2-only id stays what it was before this field
        parts.append(sorted(isa))
    hw = json.dumps(parts)
    return f"{host}-{hashlib.sha1(hw.encode()).hexdigest()[:6]}"


def write_machine(results_dir: Path, mid: str, rec: dict[str, Any]) -> Path:
    data = dict(rec, machine_id=mid, schema_version=1)
    return write_json_atomic(results_dir / mid / "machine.json", data, indent=2)


def network() -> dict[str, Any]:
    """What links this node to others: its network interfaces that are up, with their speed
    (Mb/s, from the kernel) and MTU, and its InfiniBand ports with their rate and state."""
    import psutil

    nics = []
    for name, st in sorted(psutil.net_if_stats().items()):
        if st.isup and name != "lo":
            nics.append({"name": name, "speed_mbps": st.speed or None, "mtu": st.mtu})
    ib = []
    for port in sorted(Path("/sys/class/infiniband").glob("*/ports/*")):
        def read(f: str, _p: Path = port) -> str | None:
            try:
                return (_p / f).read_text().strip()
            except OSError:
                return None
        ib.append({"device": port.parent.parent.name, "port": port.name,
                   "rate": read("rate"), "state": read("state"),
                   "link_layer": read("link_layer")})
    return {"nics": nics, "infiniband": ib}


def node_report() -> dict[str, Any]:
    """One node of a multi-node cell, as the row's ``nodes`` keeps it: its Slurm node name,
    host, machine id, GPUs and their interconnect, and its network."""
    rec = probe()
    return {"node": os.environ.get("SLURMD_NODENAME") or rec["hostname"],
            "hostname": rec["hostname"], "machine_id": machine_id(rec),
            "gpus": len(rec.get("gpus") or []), "gpu_interconnect": rec.get("interconnect"),
            **network()}


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--node"]:
        sys.exit("usage: python -m cnnbench.core.machine --node")
    print(json.dumps(node_report(), default=str))

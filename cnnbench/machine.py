"""The machine record: CPU model and ISA flags, cores, memory, GPUs and driver, OS, Python.

Uses py-cpuinfo (CPU model and flags), psutil (cores, memory, load) and nvidia-ml-py
(GPUs and driver) so no framework is imported to describe the hardware.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import socket
from pathlib import Path
from typing import Any

from .files import write_json_atomic

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


def _gpus() -> dict[str, Any]:
    try:
        import pynvml
    except ImportError:
        return {"gpus": [], "driver": None, "gpu_error": "nvidia-ml-py not installed"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return {"gpus": [], "driver": None, "gpu_error": f"NVML unavailable: {exc}"}
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            gpus.append({
                "index": i,
                "name": pynvml.nvmlDeviceGetName(h),
                "memory_bytes": int(mem.total),
                "uuid": pynvml.nvmlDeviceGetUUID(h),
            })
        return {"gpus": gpus, "driver": driver, "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}"}
    finally:
        pynvml.nvmlShutdown()


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
    """Readable and stable: host name plus a hash of the hardware that decides speed."""
    host = re.sub(r"[^a-z0-9]+", "-", rec["hostname"].lower()).strip("-")[:24] or "host"
    hw = json.dumps([rec["cpu"]["model"], rec["cpu"]["logical_cores"], rec["memory_bytes"] >> 30,
                     [g["name"] for g in rec.get("gpus", [])]])
    return f"{host}-{hashlib.sha1(hw.encode()).hexdigest()[:6]}"


def write_machine(results_dir: Path, mid: str, rec: dict[str, Any]) -> Path:
    data = dict(rec, machine_id=mid, schema_version=1)
    return write_json_atomic(results_dir / mid / "machine.json", data, indent=2)

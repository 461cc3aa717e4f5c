"""Which CPU code path a conformance run is on, and the switches that force one.

Frameworks pick kernels from the CPU they find: TensorFlow turns oneDNN on by default only
where the CPU has AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; PyTorch's ATen picks its AVX2 or
AVX-512 kernel set. So that no test depends on the machine it runs on, tox runs each suite on
forced paths (``--onednn on|off``, ``--isa-cap``, options in tests/conftest.py), and a test
whose expectation depends on the path reads it here: the forced switch first, else the CPU
(as a level of the ISA ladder, cnnbench.core.isa, never a library's string).

Every switch is an environment variable read once, when the framework loads, so `force`
runs from ``pytest_configure``, before any test module imports a framework. Imports nothing
but the standard library (and cnnbench.core.isa, which is standard library only).
"""

from __future__ import annotations

import getpass
import os
import tempfile
from functools import cache

from cnnbench.core import isa

# The framework's own oneDNN switch, read at import (TensorFlow) or at first use (MXNet).
ONEDNN_SWITCH = {"tensorflow": "TF_ENABLE_ONEDNN_OPTS", "mxnet": "MXNET_MKLDNN_ENABLED"}

# A cap to generic kernels, as a generic build would run them. PyTorch: ATen's portable
# kernel set and oneDNN's AVX2 code (an AVX-512 machine otherwise runs AVX-512 in both).
# JAX: XLA's generated code limited to 128/256-bit AVX (its convolutions are precompiled
# Eigen kernels, which the cap does not reach).
ISA_CAP = {
    "pytorch": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "jax": {"XLA_FLAGS": "--xla_cpu_max_isa=AVX"},
}

# The CPU features for which TensorFlow's IsMKLEnabled() defaults to on (TF 2.21 port.cc).
TF_ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
                           "amx_bf16")


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def force(framework: str | None, onednn: str | None, isa_cap: bool) -> None:
    """Set the environment for the requested path; refuse a switch the framework lacks or a
    variable already set to something else (the run would not be on the path it names)."""
    want: dict[str, str] = {}
    if onednn is not None:
        if framework not in ONEDNN_SWITCH:
            raise ValueError(f"--onednn applies to {sorted(ONEDNN_SWITCH)}, not {framework}")
        want[ONEDNN_SWITCH[framework]] = "1" if onednn == "on" else "0"
    if isa_cap:
        if framework not in ISA_CAP:
            raise ValueError(f"--isa-cap applies to {sorted(ISA_CAP)}, not {framework}")
        want.update(ISA_CAP[framework])
        if framework == "pytorch":
            # Inductor's cache key leaves out ATEN_CPU_CAPABILITY: a kernel cached by a native
            # run, reused here, fails to compile ("'at::vec' has not been declared"). So the
            # capped path keeps its own cache.
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
                tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}_isa_cap"))
    for var, value in want.items():
        if var == "XLA_FLAGS":  # a list of flags: add ours to the others
            flags = os.environ.get(var, "").split()
            if any(f.startswith("--xla_cpu_max_isa=") and f != value for f in flags):
                raise ValueError(f"XLA_FLAGS={os.environ[var]} sets another ISA; this path "
                                 f"needs {value}")
            os.environ[var] = " ".join([*(f for f in flags if f != value), value])
            continue
        if os.environ.get(var, value) != value:
            raise ValueError(f"{var}={os.environ[var]} is set; this path needs {var}={value}")
        os.environ[var] = value


def onednn_forced(framework: str) -> bool | None:
    """True/False where the framework's oneDNN switch is set, None where it decides."""
    value = os.environ.get(ONEDNN_SWITCH.get(framework, ""), "")
    if value == "":
        return None
    return value.strip().lower() in ("1", "true", "on", "yes")


def tf_onednn_expected() -> bool:
    """Whether TensorFlow's oneDNN path is on in this run: the switch, else the CPU."""
    forced = onednn_forced("tensorflow")
    if forced is not None:
        return forced
    return any(f in cpu_flags() for f in TF_ONEDNN_DEFAULT_FLAGS)


def isa_capped(framework: str) -> bool:
    return framework in ISA_CAP and all(
        value in os.environ.get(var, "") for var, value in ISA_CAP[framework].items())


def describe(framework: str | None) -> str:
    """One line naming the path, for the report header (and so for every CI log)."""
    flags = cpu_flags()
    cpu = " ".join(sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni"))))
    parts = [f"framework={framework}"]
    if framework in ONEDNN_SWITCH:
        var = ONEDNN_SWITCH[framework]
        forced = onednn_forced(framework)
        if forced is None:
            default = ("on (CPU default)" if framework != "tensorflow" or tf_onednn_expected()
                       else "off (CPU default)")
            parts.append(f"onednn={default}")
        else:
            parts.append(f"onednn={'on' if forced else 'off'} (forced, {var}={os.environ[var]})")
    if framework in ISA_CAP:
        caps = " ".join(f"{k}={v}" for k, v in ISA_CAP[framework].items())
        parts.append(f"isa=capped ({caps})" if isa_capped(framework) else "isa=native")
    level = isa.name(isa.cpu_level(flags))
    parts.append(f"cpu={level}" + (f" ({cpu})" if cpu else ""))
    return "cnnbench conformance path: " + ", ".join(parts)

"""Build variants: a variant is (python interpreter, environment variables, adapter options).

* ``default`` is the framework's default pip build in its tox environment.
* **The ISA ladder** (``x86-64-v2``, ``avx``, ``x86-64-v3``, ``x86-64-v4``, ``avx512-vnni``,
  ``avx512-bf16``, ``amx``) runs the *same* build with its kernels capped to what a binary
  compiled for an older CPU could use, each framework with its own switches (see shared
  FACTS: PyTorch's ATen and oneDNN caps, TensorFlow's oneDNN cap, MXNet's DNNL cap, XLA's
  max ISA). A level above what this CPU has is recorded ``unsupported`` and not run.
  ``isa-avx2`` and ``isa-generic`` are the older names of ``x86-64-v3`` and ``x86-64-v2``.
* Configuration variants set adapter options or a framework switch instead
  (PyTorch ``channels-last``, TensorFlow ``onednn-on/off``, MXNet ``mkldnn-off``).
* **Alternative builds** are other binaries of a framework, each in a tox environment of its
  own that CI never creates (``intel-tensorflow``, ``mxnet-native``, ``mxnet-mkl``).
* Custom builds (your own wheel or interpreter) are declared in a TOML file,
  ``--variants-file``; they may name a tox environment, an interpreter and an ISA level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters import ADAPTERS
from cnnbench.core.isa import normalize_flags
from cnnbench.core.tomlfile import header_lines, key_line, read_text, tables


class VariantError(ValueError):
    pass


@dataclass(frozen=True)
class IsaLevel:
    """One rung of the ladder: what a binary built for ``target`` may use, and each
    framework's switch that caps a stock build to it."""

    name: str
    target: str  # the compiler target / CPU it stands for
    flags: tuple[str, ...]  # /proc/cpuinfo flags the level needs (cumulative)
    onednn: str  # ONEDNN_MAX_CPU_ISA (oneDNN v3: PyTorch, TensorFlow)
    dnnl: str  # DNNL_MAX_CPU_ISA (oneDNN v2 in MXNet 1.9; it ignores the ONEDNN_ name)
    aten: str  # ATEN_CPU_CAPABILITY (ATen compiles default, avx2 and avx512 kernel sets)
    xla: str  # --xla_cpu_max_isa (XLA's generated code only)


_V2 = ("ssse3", "sse4_1", "sse4_2", "popcnt", "cx16")
_V3 = ("avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm")
_V4 = ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")

# Lowest first. oneDNN has no SSE4.2 level (SSE41 is its highest below AVX) and ATen no set
# between default and avx2 or above avx512: the nearest lower switch stands in.
LADDER: tuple[IsaLevel, ...] = (
    IsaLevel("x86-64-v2", "x86-64-v2 (Nehalem: SSE4.2, POPCNT)", _V2,
             "SSE41", "SSE41", "default", "SSE4_2"),
    IsaLevel("avx", "Sandy Bridge (-march=sandybridge: AVX, no FMA or AVX2)", (*_V2, "avx"),
             "AVX", "AVX", "default", "AVX"),
    IsaLevel("x86-64-v3", "x86-64-v3 (Haswell: AVX2, FMA, BMI2)", (*_V2, *_V3),
             "AVX2", "AVX2", "avx2", "AVX2"),
    IsaLevel("x86-64-v4", "x86-64-v4 (Skylake-SP: AVX-512 F/BW/CD/DQ/VL)", (*_V2, *_V3, *_V4),
             "AVX512_CORE", "AVX512_CORE", "avx512", "AVX512"),
    IsaLevel("avx512-vnni", "Cascade Lake (AVX-512 VNNI)", (*_V2, *_V3, *_V4, "avx512_vnni"),
             "AVX512_CORE_VNNI", "AVX512_CORE_VNNI", "avx512", "AVX512_VNNI"),
    IsaLevel("avx512-bf16", "Cooper Lake (AVX-512 BF16)",
             (*_V2, *_V3, *_V4, "avx512_vnni", "avx512_bf16"),
             "AVX512_CORE_BF16", "AVX512_CORE_BF16", "avx512", "AVX512_BF16"),
    IsaLevel("amx", "Sapphire Rapids (AMX tiles, BF16 and INT8)",
             (*_V2, *_V3, *_V4, "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"),
             "AVX512_CORE_AMX", "AVX512_CORE_AMX", "avx512", "AMX"),
)
LEVELS: dict[str, IsaLevel] = {lv.name: lv for lv in LADDER}
# The names the first two caps had; they stay, meaning exactly these levels.
ALIASES = {"isa-avx2": "x86-64-v3", "isa-generic": "x86-64-v2"}
# Frameworks that have ladder switches.
LADDER_FRAMEWORKS = ("pytorch", "tensorflow", "mxnet", "jax")


def ladder_env(framework: str, level: IsaLevel) -> dict[str, str]:
    """The environment that caps ``framework``'s stock build to ``level``."""
    if framework == "pytorch":
        return {"ATEN_CPU_CAPABILITY": level.aten, "ONEDNN_MAX_CPU_ISA": level.onednn}
    if framework == "tensorflow":  # oneDNN forced on: the cap would cap nothing otherwise
        return {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": level.onednn}
    if framework == "mxnet":
        return {"DNNL_MAX_CPU_ISA": level.dnnl}
    if framework == "jax":
        return {"XLA_FLAGS": f"--xla_cpu_max_isa={level.xla}"}
    return {}  # the null adapter: nothing to cap (tests use its levels' CPU check)


def missing_flags(level: IsaLevel, cpu_flags: frozenset[str]) -> list[str]:
    """The flags of ``level`` this CPU lacks (the AVX-512 VNNI/BF16 names come in two
    spellings across kernels and py-cpuinfo)."""
    have = normalize_flags(cpu_flags)
    return [f for f in level.flags if f not in have]


def top_level(cpu_flags: frozenset[str] | set[str]) -> IsaLevel | None:
    """The highest ladder level this CPU has in full (None for a CPU below the ladder): a cap
    at that level caps nothing."""
    have = [lv for lv in LADDER if not missing_flags(lv, frozenset(cpu_flags))]
    return have[-1] if have else None


def onednn_enabled(build: Any, env: Any = None) -> bool | None:
    """Whether a row ran with oneDNN on: the build facts the adapter reported, else
    TensorFlow's switch in the row's environment; None where neither says."""
    onednn = build.get("onednn") if isinstance(build, dict) else None
    enabled = onednn.get("enabled") if isinstance(onednn, dict) else None
    if isinstance(enabled, bool):
        return enabled
    switch = env.get("TF_ENABLE_ONEDNN_OPTS") if isinstance(env, dict) else None
    return {"1": True, "0": False}.get(str(switch)) if switch is not None else None


@dataclass(frozen=True)
class Variant:
    name: str
    framework: str  # "*" = every framework
    env: dict[str, str] = field(default_factory=dict)
    python: str | None = None
    description: str = ""
    # Adapter options (as with --adapter-opt) that this variant sets; --adapter-opt wins.
    options: dict[str, Any] = field(default_factory=dict)
    # In every row (`variant_kind`), so a report can tell a cap from another binary: default |
    # isa (a ladder level) | config | build (a built-in alternative build) | custom (declared
    # in a variants file).
    kind: str = "config"
    isa: str | None = None  # the ladder level it caps to (a level above the CPU: unsupported)
    tox_env: str | None = None  # a tox environment holding this build (instead of python)
    source: str = "built-in"  # where it was declared: "file:line" for a custom variant

    def applies_to(self, framework: str) -> bool:
        return self.framework in ("*", framework)

    @property
    def level(self) -> IsaLevel | None:
        return LEVELS[self.isa] if self.isa else None


def _ladder() -> list[Variant]:
    out = []
    for fw in LADDER_FRAMEWORKS:
        for lv in LADDER:
            what = {"pytorch": "ATen and oneDNN", "tensorflow": "oneDNN (forced on)",
                    "mxnet": "oneDNN", "jax": "XLA-generated code"}[fw]
            out.append(Variant(lv.name, fw, ladder_env(fw, lv), None,
                               f"{what} capped to {lv.target}", kind="isa", isa=lv.name))
        for alias, target in ALIASES.items():
            lv = LEVELS[target]
            out.append(Variant(alias, fw, ladder_env(fw, lv), None,
                               f"the older name of {target}", kind="isa", isa=target))
    return out


# Other binaries of a framework on the package index, each in its own tox environment (not
# in CI's env_list). What happened when each was tried on Python 3.11 is in the README.
ALTERNATIVE_BUILDS: tuple[Variant, ...] = (
    Variant("intel-tensorflow", "tensorflow", {}, None,
            "Intel's build of TensorFlow 2.14 (oneDNN on by default)",
            kind="build", tox_env="intel-tensorflow"),
    Variant("mxnet-native", "mxnet", {}, None,
            "MXNet 1.8.0 built without oneDNN (OpenBLAS)", kind="build", tox_env="mxnet-native"),
    Variant("mxnet-mkl", "mxnet", {}, None,
            "MXNet 1.6.0 with MKL-DNN, built for AVX", kind="build", tox_env="mxnet-mkl"),
)

BUILTIN: tuple[Variant, ...] = (
    Variant("default", "*", {}, None, "the framework's default pip build", kind="default"),
    *_ladder(),
    # The same build with NHWC activations and weights: oneDNN and cuDNN's preferred layout.
    Variant("channels-last", "pytorch", {}, None,
            "model and input in torch.channels_last (NHWC) memory format",
            {"memory_format": "channels_last"}),
    # TensorFlow turns oneDNN on by default only on CPUs with AVX512_VNNI/BF16, AVX_VNNI or
    # AMX; elsewhere (an AVX2 EPYC, say) its Eigen kernels run unless this is forced.
    Variant("onednn-on", "tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "1"}, None,
            "oneDNN kernels forced on"),
    Variant("onednn-off", "tensorflow", {"TF_ENABLE_ONEDNN_OPTS": "0"}, None,
            "TensorFlow's Eigen kernels only"),
    Variant("mkldnn-off", "mxnet", {"MXNET_MKLDNN_ENABLED": "0"}, None,
            "MXNet's own (SSE3-built) kernels, no oneDNN"),
    *ALTERNATIVE_BUILDS,
)

_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_KEYS = {"name", "framework", "python", "tox_env", "isa", "env", "description", "options"}


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or not set(name.lower()) <= _NAME_OK:
        raise VariantError(f"{where}: variant name must be letters, digits, '-', '_' or '.'")
    return name


def load_variants_file(path: Path) -> list[Variant]:
    """Parse and validate a variants TOML file (a list of [[variant]] tables). Every problem
    is a one-line VariantError naming the file and the line."""
    text = read_text(path, "variants", VariantError)
    entries = tables(text, str(path), "variant", _KEYS, VariantError)
    starts = header_lines(text, "variant")
    out: list[Variant] = []
    for i, (table_where, e) in enumerate(entries):

        def where(key: str, _i: int = i, _w: str = table_where) -> str:
            if len(starts) != len(entries):  # e.g. an inline array of tables: no lines
                return _w
            return f"{path}:{key_line(text, starts[_i], key)}: variant #{_i + 1}"

        out.append(_variant(e, where))
    return out


def _table_of(e: dict[str, Any], key: str, types: tuple[type, ...], where: Callable[[str], str],
              what: str) -> dict[str, Any]:
    """``e[key]``, a table of string keys to ``types`` values (empty if absent)."""
    got = e.get(key, {})
    if not isinstance(got, dict) or not all(
        isinstance(k, str) and isinstance(v, types) for k, v in got.items()
    ):
        raise VariantError(f"{where(key)}: {key} must be a table of {what}")
    return got


def _interpreter(e: dict[str, Any], where: Callable[[str], str]) -> tuple[str | None, str | None]:
    """The variant's (python, tox_env): at most one of them."""
    py = e.get("python")
    if py is not None and (not isinstance(py, str) or not py):
        raise VariantError(f"{where('python')}: python must be a path")
    tox_env = e.get("tox_env")
    if tox_env is not None and (not isinstance(tox_env, str) or not tox_env
                                or "/" in tox_env):
        raise VariantError(f"{where('tox_env')}: tox_env must be a tox environment name")
    if py and tox_env:
        raise VariantError(f"{where('tox_env')}: give python or tox_env, not both")
    return py, tox_env


def _variant(e: dict[str, Any], where: Callable[[str], str]) -> Variant:
    """One checked [[variant]] table of a variants file."""
    name = _check_name(e.get("name"), where("name"))
    fw = e.get("framework")
    if fw != "*" and fw not in ADAPTERS:
        raise VariantError(f"{where('framework')}: unknown framework {fw!r}")
    env = _table_of(e, "env", (str, int, float), where, "strings")
    py, tox_env = _interpreter(e, where)
    isa = e.get("isa")
    if isa is not None:
        isa = ALIASES.get(isa, isa)
        if isa not in LEVELS:
            raise VariantError(f"{where('isa')}: unknown ISA level {e['isa']!r} (known: "
                               f"{', '.join(LEVELS)})")
    desc = e.get("description", "")
    if not isinstance(desc, str):
        raise VariantError(f"{where('description')}: description must be a string")
    options = _table_of(e, "options", (str, int, float, bool), where, "strings or numbers")
    # An ISA level caps the build with the framework's own switches, under the file's env.
    cap = ladder_env(fw, LEVELS[isa]) if isa and fw != "*" else {}
    return Variant(name, fw, {**cap, **{k: str(v) for k, v in env.items()}}, py, desc,
                   dict(options), kind="custom", isa=isa, tox_env=tox_env,
                   source=where("python" if py else "tox_env" if tox_env else "name"))


class VariantSet:
    def __init__(self, extra: list[Variant] | None = None) -> None:
        self.variants = list(BUILTIN) + list(extra or [])

    def names(self) -> list[str]:
        return sorted({v.name for v in self.variants})

    def check_names(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.names()]
        if unknown:
            raise VariantError(f"unknown variant {unknown[0]!r} (known: {', '.join(self.names())})")

    def check_interpreters(self, names: list[str]) -> None:
        """A selected custom variant whose interpreter does not exist is an error before
        anything runs (a built-in build whose tox env is missing is a row, `unavailable`)."""
        for v in self.variants:
            if v.name in names and v.kind == "custom" and v.python and not Path(v.python).exists():
                raise VariantError(f"{v.source}: variant {v.name!r}: interpreter not found: "
                                   f"{v.python}")

    def get(self, framework: str, name: str) -> Variant | None:
        """The variant for this framework; user-declared ones win over built-ins."""
        for v in reversed(self.variants):
            if v.name == name and v.applies_to(framework):
                return v
        return None

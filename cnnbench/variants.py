"""Build variants: a variant is (python interpreter, environment variables, adapter options).

* ``default`` is the framework's default pip build in its tox environment.
* Built-in ISA-capped variants run the *same* build with its math libraries capped to an
  older instruction set, which emulates a generic build (see shared FACTS: PyTorch's
  ATen/oneDNN caps, TensorFlow's oneDNN switch, MXNet's DNNL cap, XLA's max ISA).
* Built-in configuration variants set adapter options instead (PyTorch ``channels-last``).
* Custom builds (your own wheel or interpreter) are declared in a TOML file, ``--variants-file``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters import ADAPTERS

from .tomlfile import read_text, tables


class VariantError(ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    name: str
    framework: str  # "*" = every framework
    env: dict[str, str] = field(default_factory=dict)
    python: str | None = None
    description: str = ""
    # Adapter options (as with --adapter-opt) that this variant sets; --adapter-opt wins.
    options: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, framework: str) -> bool:
        return self.framework in ("*", framework)


BUILTIN: tuple[Variant, ...] = (
    Variant("default", "*", {}, None, "the framework's default pip build"),
    # ATEN_CPU_CAPABILITY picks among ATen kernels compiled per ISA (an invalid value is
    # silently ignored, so the adapter reports get_cpu_capability() to prove it took).
    Variant("isa-avx2", "pytorch", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
            None, "ATen and oneDNN capped at AVX2"),
    Variant("isa-generic", "pytorch",
            {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, None,
            "ATen default kernels, oneDNN capped at SSE4.1: emulates a generic build"),
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
    Variant("isa-avx2", "tensorflow",
            {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}, None,
            "oneDNN on, capped at AVX2"),
    Variant("isa-generic", "tensorflow",
            {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "SSE41"}, None,
            "oneDNN on, capped at SSE4.1: emulates a generic build"),
    # MXNet 1.9.1's bundled oneDNN v2 reads DNNL_MAX_CPU_ISA (ONEDNN_MAX_CPU_ISA is ignored).
    Variant("mkldnn-off", "mxnet", {"MXNET_MKLDNN_ENABLED": "0"}, None,
            "MXNet's own (SSE3-built) kernels, no oneDNN"),
    Variant("isa-avx2", "mxnet", {"DNNL_MAX_CPU_ISA": "AVX2"}, None, "oneDNN capped at AVX2"),
    Variant("isa-generic", "mxnet", {"DNNL_MAX_CPU_ISA": "SSE41"}, None,
            "oneDNN capped at SSE4.1: emulates a generic build"),
    # XLA caps the ISA of the code it generates; convolutions run in precompiled kernels.
    Variant("isa-avx2", "jax", {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}, None,
            "XLA-generated code capped at AVX2"),
    Variant("isa-generic", "jax", {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2"}, None,
            "XLA-generated code capped at SSE4.2"),
)

_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or not set(name.lower()) <= _NAME_OK:
        raise VariantError(f"{where}: variant name must be letters, digits, '-', '_' or '.'")
    return name


def load_variants_file(path: Path) -> list[Variant]:
    """Parse and validate a variants TOML file (a list of [[variant]] tables)."""
    text = read_text(path, "variants", VariantError)
    entries = tables(text, str(path), "variant",
                     {"name", "framework", "python", "env", "description", "options"}, VariantError)
    out: list[Variant] = []
    for where, e in entries:
        name = _check_name(e.get("name"), where)
        fw = e.get("framework")
        if fw != "*" and fw not in ADAPTERS:
            raise VariantError(f"{where}: unknown framework {fw!r}")
        env = e.get("env", {})
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in env.items()
        ):
            raise VariantError(f"{where}: env must be a table of strings")
        py = e.get("python")
        if py is not None and (not isinstance(py, str) or not py):
            raise VariantError(f"{where}: python must be a path")
        desc = e.get("description", "")
        if not isinstance(desc, str):
            raise VariantError(f"{where}: description must be a string")
        options = e.get("options", {})
        if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool))
            for k, v in options.items()
        ):
            raise VariantError(f"{where}: options must be a table of strings or numbers")
        out.append(Variant(name, fw, {k: str(v) for k, v in env.items()}, py, desc,
                           dict(options)))
    return out


class VariantSet:
    def __init__(self, extra: list[Variant] | None = None) -> None:
        self.variants = list(BUILTIN) + list(extra or [])

    def names(self) -> list[str]:
        return sorted({v.name for v in self.variants})

    def check_names(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.names()]
        if unknown:
            raise VariantError(f"unknown variant {unknown[0]!r} (known: {', '.join(self.names())})")

    def get(self, framework: str, name: str) -> Variant | None:
        """The variant for this framework; user-declared ones win over built-ins."""
        for v in reversed(self.variants):
            if v.name == name and v.applies_to(framework):
                return v
        return None

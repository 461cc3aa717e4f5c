"""One ordered ladder of x86 instruction-set levels, and parsers from each library's own
names into it. Pure standard library.

Libraries name one level differently across versions and CPUs. oneDNN's dispatcher says
"Intel AVX-512 with Intel DL Boost and bfloat16 support" on an AVX-512 BF16 EPYC and "Intel
AVX10.1 and Intel AMX with bfloat16 and 8-bit integer support" on a Xeon with AMX; its
implementations say ``jit:avx512_core_bf16`` or ``brg:avx10_1_512_amx``; ATen says ``AVX512``
and XLA's cap takes ``AVX512_BF16``. Code and tests compare levels (ranks), never strings.

The ladder, lowest first: SSE4.1 < AVX < AVX2 (< AVX2 VNNI) < AVX-512 (< VNNI < BF16 < FP16,
which is also AVX10.1/512) < AMX (and AVX10.2). Rank 0 is the x86-64 baseline (SSE2). The
coarse rungs (SSE4.1, AVX, AVX2, AVX-512) are the vector widths, what a check across CPU
kinds compares: every CPU with AMX or AVX10 also has AVX-512.

A name newer than this module knows (``Intel AVX10.2 ...``, an implementation suffix such as
``avx10_3_512``) counts as at least the highest level the CPU's own flags prove: a library
does not name an ISA the CPU lacks, and a new name is not an old level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

BASELINE, SSE41, AVX, AVX2, AVX2_VNNI = 0, 1, 2, 3, 4
AVX512, AVX512_VNNI, AVX512_BF16, AVX512_FP16, AMX = 5, 6, 7, 8, 9

# One canonical (oneDNN-style) name per rank; LADDER[rank] is the level's name.
LADDER: tuple[str, ...] = (
    "baseline", "sse41", "avx", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni",
    "avx512_core_bf16", "avx512_core_fp16", "avx512_core_amx")

# oneDNN's CPU ISAs as they appear in implementation names (lower case) and as cap values
# (upper case). Names with the same rank are the same level for a cap.
ISA_RANK: dict[str, int] = {
    "sse41": SSE41, "avx": AVX, "avx2": AVX2, "avx2_vnni": AVX2_VNNI, "avx2_vnni_2": AVX2_VNNI,
    "avx512_mic": AVX512, "avx512_mic_4ops": AVX512, "avx512_common": AVX512,
    "avx512_core": AVX512, "avx512_core_vnni": AVX512_VNNI, "avx512_core_bf16": AVX512_BF16,
    "avx512_core_fp16": AVX512_FP16, "avx512_core_amx": AMX, "avx512_core_amx_fp16": AMX,
    "avx10_1_512": AVX512_FP16, "avx10_1_512_amx": AMX, "avx10_1_512_amx_fp16": AMX,
    "avx10_2_512": AMX, "avx10_2_512_amx_2": AMX, "all": 99,
}

# An implementation-name token that looks like an ISA, and the floor of its family where the
# token itself is unknown (a newer oneDNN than this module).
_ISA_LIKE = re.compile(r"(?<![a-z0-9])((?:sse4|avx|amx)[a-z0-9_]*)(?![a-z0-9])")
# An unknown AVX2-family name stays AVX2: its vector width says so, whatever the CPU has.
_FAMILY_FLOOR = (("amx", AMX), ("avx10", AVX512_FP16), ("avx512", AVX512))

# oneDNN's "info,cpu,isa:" line in words, most specific first. "bfloat16" contains "float16",
# so the fp16 level needs "float16" as a word of its own. "AVX" must not match AVX2, AVX-512
# or AVX10.
_WORDS: tuple[tuple[str, int], ...] = (
    (r"\bAMX\b", AMX), (r"(?<![a-z])float16", AVX512_FP16), (r"bfloat16", AVX512_BF16),
    (r"AVX-512 with Intel DL Boost", AVX512_VNNI), (r"AVX-512", AVX512),
    (r"AVX2 with Intel DL Boost", AVX2_VNNI), (r"AVX2", AVX2), (r"\bAVX(?![\d-])", AVX),
    (r"SSE4\.1", SSE41),
)
_AVX10 = re.compile(r"AVX10\.(\d+)")

# ATen's kernel sets (ATEN_CPU_CAPABILITY / torch.backends.cpu.get_cpu_capability()).
_ATEN = {"default": BASELINE, "no avx": BASELINE, "avx2": AVX2, "avx512": AVX512}
# XLA's --xla_cpu_max_isa values (xla/backends/cpu/codegen/cpu_features.cc).
_XLA = {"sse4_2": SSE41, "avx": AVX, "avx2": AVX2, "avx512": AVX512,
        "avx512_vnni": AVX512_VNNI, "avx512_bf16": AVX512_BF16, "amx": AMX, "amx_fp16": AMX}

_AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def name(rank: int) -> str:
    """The ladder's name of ``rank`` ('avx2', 'avx512_core_bf16'; 'all' above AMX)."""
    return LADDER[rank] if 0 <= rank < len(LADDER) else "all"


def coarse(rank: int) -> str:
    """The vector-width rung of ``rank``: 'baseline', 'sse41', 'avx', 'avx2' or 'avx512'."""
    if rank >= AVX512:
        return "avx512"
    return "avx2" if rank >= AVX2 else name(rank)


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """/proc/cpuinfo flags with the AVX-512 extension names in both spellings (kernels say
    avx512_vnni, py-cpuinfo avx512vnni)."""
    have = {f.lower() for f in flags}
    return frozenset(have | {f.replace("avx512", "avx512_", 1) for f in have
                             if f.startswith("avx512") and "_" not in f}
                     | {f.replace("avx512_", "avx512", 1) for f in have if f.startswith("avx512_")})


def cpu_level(flags: Iterable[str]) -> int:
    """The highest rank the CPU's flags prove."""
    f = normalize_flags(flags)
    if all(x in f for x in _AVX512_CORE):
        if {"amx_tile", "amx_bf16", "amx_int8"} <= f:
            return AMX
        for flag, rank in (("avx512_fp16", AVX512_FP16), ("avx512_bf16", AVX512_BF16),
                           ("avx512_vnni", AVX512_VNNI)):
            if flag in f:
                return rank
        return AVX512
    if {"avx2", "fma"} <= f:
        return AVX2_VNNI if "avx_vnni" in f else AVX2
    if "avx" in f:
        return AVX
    return SSE41 if "sse4_1" in f else BASELINE


def onednn_rank(isa: str, flags: Iterable[str] = ()) -> int | None:
    """The rank of a oneDNN ISA name (an implementation's suffix or a cap value, any case);
    an unknown name of a known family counts as at least the CPU's own level."""
    key = isa.strip().lower()
    if key in ISA_RANK:
        return ISA_RANK[key]
    if key.startswith("avx2"):
        return AVX2
    floor = next((r for prefix, r in _FAMILY_FLOOR if key.startswith(prefix)), None)
    return None if floor is None else max(floor, cpu_level(flags))


def impl_isas(impl: str) -> list[str]:
    """The ISA names in one oneDNN implementation name ('brg_conv_fwd:avx2' -> ['avx2'];
    'gemm:jit' -> []). Known names match whole; an unknown ISA-looking token is kept as is."""
    return [t for t in _ISA_LIKE.findall(impl.lower()) if onednn_rank(t) is not None]


def onednn_words(line: str | None, flags: Iterable[str] = ()) -> int | None:
    """The rank of oneDNN's 'info,cpu,isa:' words ('Intel AVX2' -> AVX2). An AVX10 version
    this module does not know, or a line it cannot read at all, counts as the CPU's level."""
    if not line:
        return None
    m = _AVX10.search(line)
    if m and m.group(1) != "1":  # newer than AVX10.1 (with AMX, or without)
        return max(AMX, cpu_level(flags))
    if m:  # AVX10.1 is AVX-512 with FP16 at 512 bits; with AMX the AMX level
        return AMX if re.search(r"\bAMX\b", line) else AVX512_FP16
    rank = next((r for words, r in _WORDS if re.search(words, line)), None)
    if rank is None:
        flags = list(flags)
        return cpu_level(flags) if flags else None
    return rank


def aten_level(capability: str | None) -> int | None:
    """The rank of ATen's kernel set ('DEFAULT', 'AVX2', 'AVX512'); None for another
    architecture's set (VSX, ZVECTOR, SVE)."""
    return _ATEN.get((capability or "").strip().lower())


def xla_level(max_isa: str | None) -> int | None:
    """The rank of an --xla_cpu_max_isa value; None where XLA would not know it (it warns
    'Unknown CPU ISA' and applies no cap)."""
    return _XLA.get((max_isa or "").strip().lower())


__all__ = ["AMX", "AVX", "AVX2", "AVX2_VNNI", "AVX512", "AVX512_BF16", "AVX512_FP16",
           "AVX512_VNNI", "BASELINE", "ISA_RANK", "LADDER", "SSE41", "aten_level", "coarse",
           "cpu_level", "impl_isas", "name", "normalize_flags", "onednn_rank", "onednn_words",
           "xla_level"]

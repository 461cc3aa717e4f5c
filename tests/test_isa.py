"""The ISA ladder (cnnbench.core.isa): every library's names, as printed on our three CPU kinds
and by a newer library than the ladder knows, parse into one ordered level."""

from __future__ import annotations

import pytest

from cnnbench.core import isa
from cnnbench.measure.kernels import cap_ignored, dispatch_isa, parse_onednn_verbose, summary

# /proc/cpuinfo flags of the three CPU kinds (the ISA part; FACTS.md), lowest first.
AVX2_EPYC = frozenset("sse4_1 sse4_2 avx avx2 fma f16c bmi2".split())
AVX512_EPYC = AVX2_EPYC | frozenset(
    "avx512f avx512bw avx512vl avx512dq avx512cd avx512_vnni avx512_bf16 avx512vbmi".split())
AMX_XEON = AVX512_EPYC | frozenset(
    "avx512_fp16 avx_vnni amx_tile amx_bf16 amx_int8 avx512_vpopcntdq".split())

# oneDNN's 'info,cpu,isa:' words, as each kind printed them (and two only seen elsewhere).
WORDS = {
    "Intel AVX2": isa.AVX2,
    "Intel AVX-512 with Intel DL Boost and bfloat16 support": isa.AVX512_BF16,
    "Intel AVX10.1 and Intel AMX with bfloat16 and 8-bit integer support": isa.AMX,
    "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support": isa.AVX512_FP16,
    "Intel AVX-512 with Intel DL Boost": isa.AVX512_VNNI,
    "Intel AVX-512": isa.AVX512,
    "Intel AVX2 with Intel DL Boost": isa.AVX2_VNNI,
    "Intel AVX": isa.AVX,
    "Intel SSE4.1": isa.SSE41,
    "Intel AVX10.1": isa.AVX512_FP16,
    "Intel AVX10.1 and Intel AMX with bfloat16, float16 and 8-bit integer support": isa.AMX,
}


@pytest.mark.parametrize("words", sorted(WORDS))
def test_onednn_words_parse_into_the_ladder(words: str) -> None:
    assert isa.onednn_words(words) == WORDS[words]
    assert dispatch_isa(words) == isa.name(WORDS[words])


def test_the_ladder_is_ordered_and_coarse_rungs_are_vector_widths() -> None:
    ranks = [isa.SSE41, isa.AVX, isa.AVX2, isa.AVX2_VNNI, isa.AVX512, isa.AVX512_VNNI,
             isa.AVX512_BF16, isa.AVX512_FP16, isa.AMX]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert [isa.name(r) for r in ranks] == list(isa.LADDER[1:])
    assert [isa.coarse(r) for r in ranks] == ["sse41", "avx", "avx2", "avx2", *["avx512"] * 5]
    # what the AMX Xeon's oneDNN says and what its flags prove are one rung
    amx = isa.onednn_words("Intel AVX10.1 and Intel AMX with bfloat16 and 8-bit integer support")
    assert amx is not None and isa.coarse(amx) == isa.coarse(isa.cpu_level(AMX_XEON))


@pytest.mark.parametrize("flags, level", [
    (AVX2_EPYC, isa.AVX2), (AVX512_EPYC, isa.AVX512_BF16), (AMX_XEON, isa.AMX),
    (AVX2_EPYC | {"avx_vnni"}, isa.AVX2_VNNI), (frozenset({"sse4_1", "avx"}), isa.AVX),
    (frozenset({"sse2"}), isa.BASELINE),
    # py-cpuinfo's spelling of the AVX-512 extensions
    (AVX2_EPYC | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni"}, isa.AVX512_VNNI),
    # AMX flags without AVX-512 prove no AVX-512 level
    (AVX2_EPYC | {"amx_tile", "amx_bf16", "amx_int8"}, isa.AVX2),
])
def test_cpu_level_is_the_highest_level_the_flags_prove(flags: frozenset[str], level: int) -> None:
    assert isa.cpu_level(flags) == level


def test_unknown_newer_names_count_as_at_least_the_cpus_level() -> None:
    future = "Intel AVX10.2 and Intel AMX with 8-bit integer, bfloat16, float16, float8 support"
    assert isa.onednn_words(future, AMX_XEON) == isa.AMX
    assert isa.onednn_words("Intel AVX10.7", AMX_XEON) == isa.AMX
    # a line the ladder cannot read at all: the CPU's level, or unknown without flags
    assert isa.onednn_words("Intel APX with something new", AVX512_EPYC) == isa.AVX512_BF16
    assert isa.onednn_words("Intel APX with something new") is None
    # an implementation suffix newer than ISA_RANK: its family's floor, or the CPU's level
    assert isa.onednn_rank("avx10_3_512") == isa.AVX512_FP16
    assert isa.onednn_rank("avx10_3_512", AMX_XEON) == isa.AMX
    assert isa.onednn_rank("avx512_core_new_thing", AVX512_EPYC) == isa.AVX512_BF16
    assert isa.onednn_rank("avx2_vnni_9", AMX_XEON) == isa.AVX2  # its width says AVX2
    assert isa.onednn_rank("not_an_isa") is None
    log = ("onednn_verbose,v1,info,cpu,isa:Intel AVX10.3 with something\n"
           "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx10_3_512,"
           "forward_training,src:f32,,,1.0\n"
           "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,forward_training,,,,1\n")
    got = parse_onednn_verbose(log, AMX_XEON)
    assert got is not None
    assert got["top_isa"] == "avx10_3_512" and got["dispatch_isa"] == "avx512_core_amx"
    assert summary({"onednn": got}).startswith("oneDNN avx10_3_512 1, avx2 1")
    # a cap below what ran is caught, whatever the name
    assert cap_ignored("pytorch", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"onednn": got}) == [
        "ONEDNN_MAX_CPU_ISA=AVX2 but oneDNN ran avx10_3_512 kernels"]


def test_implementation_names_parse_whole() -> None:
    assert isa.impl_isas("brg_conv_fwd:avx2") == ["avx2"]
    assert isa.impl_isas("jit:avx512_core_bf16") == ["avx512_core_bf16"]
    assert isa.impl_isas("brg:avx10_1_512_amx") == ["avx10_1_512_amx"]
    assert isa.impl_isas("gemm:jit") == [] and isa.impl_isas("ref:any") == []
    assert isa.onednn_rank("AVX512_CORE_AMX") == isa.AMX  # a cap value, upper case


@pytest.mark.parametrize("capability, level", [
    ("DEFAULT", isa.BASELINE), ("AVX2", isa.AVX2), ("AVX512", isa.AVX512), ("VSX", None)])
def test_aten_capability(capability: str, level: int | None) -> None:
    assert isa.aten_level(capability) == level


@pytest.mark.parametrize("value, level", [
    ("SSE4_2", isa.SSE41), ("AVX", isa.AVX), ("AVX2", isa.AVX2), ("AVX512", isa.AVX512),
    ("avx512_bf16", isa.AVX512_BF16), ("AMX", isa.AMX), ("AVX3", None)])
def test_xla_max_isa_values(value: str, level: int | None) -> None:
    assert isa.xla_level(value) == level

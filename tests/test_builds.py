"""CPU builds: the ISA ladder, the proof of the kernels that ran, alternative and custom
builds, and the gains table (``cnnbench.analyse.builds``). Null adapter and real subprocesses."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cnnbench.analyse.builds import build_gains, isa_matrix, jax_note, kernel_isa
from cnnbench.analyse.claims import CLAIMS, TF_BUILD
from cnnbench.core.machine import cpu_flags
from cnnbench.core.schema import blank_row
from cnnbench.measure.kernels import JAX_NOTE, cap_ignored, dispatch_isa, parse_onednn_verbose, parse_xla_dump
from cnnbench.measure.timing import Protocol
from cnnbench.plan.expand import expand
from cnnbench.plan.variants import (
    ALIASES,
    LADDER,
    LEVELS,
    VariantSet,
    ladder_env,
    load_variants_file,
    missing_flags,
)
from cnnbench.sweep.runner import RunSettings, run_cell

ROOT = Path(__file__).resolve().parent.parent
FAST = Protocol(budget_s=0.3, min_round_s=0.01)
AVX2_EPYC = frozenset("fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt cx16 avx avx2 fma bmi1 bmi2 f16c "
                      "movbe abm".split())


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnbench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


# ------------------------------------------------------------------- the ladder


def test_ladder_is_named_after_build_targets_and_ordered() -> None:
    assert [lv.name for lv in LADDER] == ["x86-64-v2", "avx", "x86-64-v3", "x86-64-v4",
                                          "avx512-vnni", "avx512-bf16", "amx"]
    for lower, higher in itertools.pairwise(LADDER):
        assert set(lower.flags) < set(higher.flags)
    assert "fma" not in LEVELS["avx"].flags and "avx2" not in LEVELS["avx"].flags


@pytest.mark.parametrize("framework, level, env", [
    ("pytorch", "x86-64-v3", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("pytorch", "avx", {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX"}),
    ("pytorch", "x86-64-v4", {"ATEN_CPU_CAPABILITY": "avx512",
                              "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}),
    ("tensorflow", "x86-64-v2", {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "SSE41"}),
    ("mxnet", "amx", {"DNNL_MAX_CPU_ISA": "AVX512_CORE_AMX"}),
    ("jax", "avx", {"XLA_FLAGS": "--xla_cpu_max_isa=AVX"}),
])
def test_each_framework_caps_with_its_own_switch(framework: str, level: str,
                                                 env: dict[str, str]) -> None:
    v = VariantSet().get(framework, level)
    assert v is not None and v.env == env == ladder_env(framework, LEVELS[level])
    assert v.kind == "isa" and v.isa == level


def test_old_variant_names_mean_the_same_caps() -> None:
    vs = VariantSet()
    assert ALIASES == {"isa-avx2": "x86-64-v3", "isa-generic": "x86-64-v2"}
    old = vs.get("pytorch", "isa-generic")
    assert old is not None and old.env == {"ATEN_CPU_CAPABILITY": "default",
                                           "ONEDNN_MAX_CPU_ISA": "SSE41"}
    for fw in ("pytorch", "tensorflow", "mxnet", "jax"):
        for alias, level in ALIASES.items():
            a, b = vs.get(fw, alias), vs.get(fw, level)
            assert a is not None and b is not None and a.env == b.env


def test_levels_above_the_cpu_are_found_from_its_flags() -> None:
    assert missing_flags(LEVELS["x86-64-v3"], AVX2_EPYC) == []
    assert missing_flags(LEVELS["x86-64-v4"], AVX2_EPYC)[:2] == ["avx512f", "avx512bw"]
    avx512 = AVX2_EPYC | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
                          "avx512vnni"}  # py-cpuinfo's spelling of avx512_vnni
    assert missing_flags(LEVELS["avx512-vnni"], avx512) == []
    assert missing_flags(LEVELS["avx512-bf16"], avx512) == ["avx512_bf16"]
    assert cpu_flags()  # this machine's flags are readable


def _null_level_variant(tmp_path: Path, level: str) -> VariantSet:
    f = tmp_path / "v.toml"
    f.write_text(f"[[variant]]\nname = 'capped'\nframework = 'null'\nisa = '{level}'\n")
    return VariantSet(load_variants_file(f))


def test_a_level_above_the_cpu_is_unsupported_and_not_run(tmp_path: Path) -> None:
    vs = _null_level_variant(tmp_path, "x86-64-v4")
    c = expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[4], variants=["capped"])[0]
    s = RunSettings(run_id="r", machine_id="m", results_dir=tmp_path, protocol=FAST,
                    variants=vs, cpu_flags=AVX2_EPYC)
    row = run_cell(c, s)
    assert row["status"] == "unsupported"
    assert row["error"].startswith("x86-64-v4 needs avx512f avx512bw")
    assert row["isa_level"] == "x86-64-v4" and row["variant_kind"] == "custom"
    assert not (tmp_path / "m" / "logs").exists()  # no worker was started
    row = run_cell(c, RunSettings(run_id="r", machine_id="m", results_dir=tmp_path,
                                  protocol=FAST, variants=vs,
                                  cpu_flags=AVX2_EPYC | set(LEVELS["x86-64-v4"].flags)))
    assert row["status"] == "ok", row["error"]


# ------------------------------------------------------------------- the kernels that ran

V3_LOG = """\
onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)
onednn_verbose,v1,info,cpu,isa:Intel AVX2
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba::f0,,,16x16,3.3
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx2,forward_training,src,,,,0.5
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_bwd:avx2+brg_conv_fwd:avx2,bwd,,,,1.0
onednn_verbose,v1,primitive,exec,cpu,inner_product,gemm:jit,forward_training,,,,,0.1
TensorFlow's own chatter on stdout
"""
V2_LOG = """\
dnnl_verbose,info,oneDNN v2.4.4 (commit 5818c40f07bdb6307f9bc64e929836fe036da644)
dnnl_verbose,info,cpu,isa:Intel SSE4.1
dnnl_verbose,exec,cpu,convolution,jit:sse41,forward_inference,src_f32::blocked:aBcd8b:f0,,,1.7
dnnl_verbose,exec,cpu,convolution,jit:avx512_core_bf16,forward_inference,src,,,0.1
"""

V2_AVX512_LOG = """\
dnnl_verbose,info,oneDNN v2.4.4 (commit 5818c40f07bdb6307f9bc64e929836fe036da644)
dnnl_verbose,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support
dnnl_verbose,exec,cpu,convolution,jit:avx512_core,forward_inference,src_f32::blocked:aBcd16b,,,0.2
dnnl_verbose,exec,cpu,pooling,jit:avx512_core,forward_inference,src_f32::blocked:aBcd16b,,,0.1
"""


def test_onednn_verbose_logs_reduce_to_the_isa_that_ran() -> None:
    v3 = parse_onednn_verbose(V3_LOG)
    assert v3 is not None
    assert (v3["version"], v3["max_isa"], v3["executions"]) == ("v3.7.3", "Intel AVX2", 4)
    assert v3["isa"] == {"avx2": 2, "isa-neutral": 2} and v3["top_isa"] == "avx2"
    assert v3["primitives"] == {"convolution": 2, "reorder": 1, "inner_product": 1}
    v2 = parse_onednn_verbose(V2_LOG)
    assert v2 is not None and v2["version"] == "v2.4.4" and v2["max_isa"] == "Intel SSE4.1"
    assert v2["top_isa"] == "avx512_core_bf16"  # the longest ISA name wins the match
    assert parse_onednn_verbose("no verbose here\n") is None


def test_a_cap_that_did_not_take_is_named() -> None:
    ran_avx2 = {"onednn": parse_onednn_verbose(V3_LOG), "cpu_capability": "AVX2"}
    # MXNet 1.9 reads DNNL_MAX_CPU_ISA only: an ONEDNN_ cap leaves AVX2 kernels running
    assert cap_ignored("mxnet", {"ONEDNN_MAX_CPU_ISA": "SSE41"}, ran_avx2) == [
        "ONEDNN_MAX_CPU_ISA=SSE41 but oneDNN ran avx2 kernels"]
    assert cap_ignored("mxnet", {"DNNL_MAX_CPU_ISA": "AVX2"}, ran_avx2) == []
    # PyTorch silently ignores an ATen capability it does not know
    assert cap_ignored("pytorch", {"ATEN_CPU_CAPABILITY": "avx3"}, ran_avx2) == [
        "ATEN_CPU_CAPABILITY=avx3 but PyTorch runs its AVX2 kernels"]
    assert cap_ignored("pytorch", {"ATEN_CPU_CAPABILITY": "avx2"}, ran_avx2) == []
    assert cap_ignored("pytorch", {"ONEDNN_MAX_CPU_ISA": "SSE4"}, ran_avx2)[0].startswith(
        "ONEDNN_MAX_CPU_ISA=SSE4 is no oneDNN ISA")
    # nothing ran through oneDNN: nothing to judge, nothing claimed
    assert cap_ignored("tensorflow", {"ONEDNN_MAX_CPU_ISA": "SSE41"}, {}) == []
    # The AVX-512 BF16 kind (CI's EPYC): MXNet's oneDNN v2 runs avx512_core kernels while its
    # dispatcher allows bf16; the reason names what ran, not what was allowed
    ran_avx512 = {"onednn": parse_onednn_verbose(V2_AVX512_LOG)}
    assert ran_avx512["onednn"]["dispatch_isa"] == "avx512_core_bf16"  # not fp16: "bfloat16"
    assert dispatch_isa("Intel AVX-512 with float16, Intel DL Boost and bfloat16 support") == (
        "avx512_core_fp16")
    assert dispatch_isa("Intel AVX-512 with Intel DL Boost") == "avx512_core_vnni"
    assert dispatch_isa("Intel AVX2 with Intel DL Boost") == "avx2_vnni"
    assert dispatch_isa("Intel SSE4.1") == "sse41"
    assert cap_ignored("mxnet", {"ONEDNN_MAX_CPU_ISA": "SSE41"}, ran_avx512) == [
        "ONEDNN_MAX_CPU_ISA=SSE41 but oneDNN ran avx512_core kernels"]
    assert cap_ignored("mxnet", {"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, ran_avx512) == [
        "DNNL_MAX_CPU_ISA=AVX512_CORE but oneDNN dispatched up to avx512_core_bf16"]
    # only GEMM kernels ran (no ISA in their names): the dispatcher's limit is the evidence
    gemm_only = {"onednn": parse_onednn_verbose(V2_AVX512_LOG.replace("jit:avx512_core",
                                                                      "gemm:jit"))}
    assert gemm_only["onednn"]["top_isa"] is None
    assert cap_ignored("mxnet", {"ONEDNN_MAX_CPU_ISA": "SSE41"}, gemm_only) == [
        "ONEDNN_MAX_CPU_ISA=SSE41 but oneDNN dispatched up to avx512_core_bf16"]
    assert cap_ignored("mxnet", {"ONEDNN_MAX_CPU_ISA": "SSE4"}, gemm_only) == [
        "ONEDNN_MAX_CPU_ISA=SSE4 is no oneDNN ISA; oneDNN dispatched up to avx512_core_bf16"]
    xla = {"xla": {"xla_cpu_max_isa": ["AVX2"]}}
    assert cap_ignored("jax", {"XLA_FLAGS": "--xla_cpu_max_isa=AVX"}, xla) == [
        "--xla_cpu_max_isa=AVX but XLA compiled with ['AVX2']"]
    assert cap_ignored("jax", {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}, xla) == []


def test_xla_dump_says_what_the_cap_reaches() -> None:
    got = parse_xla_dump({
        "module_1.jit_step.debug_options": 'xla_cpu_max_isa: "AVX"\nxla_dump_to: "/t"\n',
        "module_1.jit_step.cpu_after_optimizations.txt":
            "%c = f32[8] convolution(%x, %w)\n%d = f32[8] convolution(%y, %w)\n"
            '%f = fusion(%c), kind=kCustom, backend_config={"fusion_config":{"kind":"__ynn_fusion"',
        "module_1.jit_step.k.ir-with-opt.ll": 'attributes #0 = { "prefer-vector-width"="256" }',
    })
    assert got["xla_cpu_max_isa"] == ["AVX"] and got["convolutions"] == 2
    assert got["library_fusions"] == {"__ynn_fusion": 1}
    assert got["prefer_vector_width"] == {"256": 1} and got["note"] == JAX_NOTE


def _variants(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "v.toml"
    f.write_text(body)
    return f


def test_a_planted_ignored_cap_is_flagged_in_the_row(tmp_path: Path) -> None:
    # The null adapter emulates MXNet 1.9's oneDNN: it runs avx2 kernels, obeys
    # DNNL_MAX_CPU_ISA and ignores ONEDNN_MAX_CPU_ISA.
    f = _variants(tmp_path, "[[variant]]\nname = 'ignored'\nframework = 'null'\n"
                  "env = { ONEDNN_MAX_CPU_ISA = 'SSE41' }\n"
                  "[[variant]]\nname = 'held'\nframework = 'null'\n"
                  "env = { DNNL_MAX_CPU_ISA = 'SSE41' }\n")
    r = cli("run", "--frameworks", "null", "--workloads", "lenet5", "--modes", "infer",
            "--batch-sizes", "4", "--variants", "ignored,held", "--variants-file", str(f),
            "--adapter-opt", "onednn_isa=avx2", "--budget", "0.2", "--no-probe",
            "--no-noise-check", "--results-dir", str(tmp_path / "res"), "--run-id", "k",
            "--machine-id", "m", "--no-progress")
    assert r.returncode == 0, r.stderr
    rows = {row["variant"]: row for row in
            map(json.loads, (tmp_path / "res" / "m" / "k.jsonl").read_text().splitlines())}
    ignored, held = rows["ignored"], rows["held"]
    assert "cap_ignored" in ignored["flags"]
    assert ignored["kernels"]["cap_ignored"] == ["ONEDNN_MAX_CPU_ISA=SSE41 but oneDNN ran "
                                                 "avx2 kernels"]
    assert ignored["kernels"]["onednn"]["top_isa"] == "avx2"
    assert "cap_ignored" not in held["flags"]
    assert held["kernels"]["onednn"]["top_isa"] == "sse41"
    assert kernel_isa(held["kernels"]) == "oneDNN sse41"


def test_one_kernel_probe_serves_every_repeat_of_a_cell(tmp_path: Path) -> None:
    f = _variants(tmp_path, "[[variant]]\nname = 'ignored'\nframework = 'null'\n"
                  "env = { ONEDNN_MAX_CPU_ISA = 'SSE41' }\n")
    res = tmp_path / "res"
    args = ["run", "--frameworks", "null", "--workloads", "lenet5,resnet20", "--modes", "infer",
            "--batch-sizes", "4", "--variants", "default,ignored", "--variants-file", str(f),
            "--adapter-opt", "onednn_isa=avx2", "--budget", "0.2", "--no-probe",
            "--no-noise-check", "--results-dir", str(res), "--run-id", "k",
            "--machine-id", "m", "--no-progress"]
    r = cli(*args, "--repeat", "2")
    assert r.returncode == 0, r.stderr
    run = res / "m" / "k.jsonl"
    rows = [json.loads(line) for line in run.read_text().splitlines()]
    by = {(row["variant"], row["repeat"]): row for row in rows if row["workload"] == "lenet5"}
    assert len(by) == 4
    # another workload of the same build and switch is served by the same probe
    other = {(row["variant"], row["repeat"]): row for row in rows if row["workload"] == "resnet20"}
    for (variant, _), row in other.items():
        assert row["kernels"]["probed_in"] == by[(variant, 0)]["cell_id"]
        assert (res / "m" / "logs" / "k" / f"{row['cell_id']}.log").read_text().count(
            "--- kernel probe ---") == 0
    for variant in ("default", "ignored"):
        first, second = by[(variant, 0)], by[(variant, 1)]
        assert "probed_in" not in first["kernels"]
        assert second["kernels"]["probed_in"] == first["cell_id"]
        assert second["kernels"]["onednn"] == first["kernels"]["onednn"]
        logs = [(res / "m" / "logs" / "k" / f"{row['cell_id']}.log").read_text()
                for row in (first, second)]
        assert [log.count("--- kernel probe ---") for log in logs] == [1, 0]
    # the copy is checked against its own row's caps, as a probe of its own would be
    assert "cap_ignored" in by[("ignored", 1)]["flags"]
    assert "cap_ignored" not in by[("default", 1)]["flags"]
    # a resumed run reuses what the file recorded: a third repeat probes nothing new
    r = cli(*args[:-5], "--resume", "k", "--machine-id", "m", "--no-progress", "--repeat", "3")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in run.read_text().splitlines()]
    third = next(row for row in rows if row["variant"] == "ignored" and row["repeat"] == 2)
    assert third["kernels"]["probed_in"] == by[("ignored", 0)]["cell_id"]
    assert "cap_ignored" in third["flags"]


# ------------------------------------------------------------------- custom and bad variants


def test_a_custom_build_by_interpreter_path_runs_and_is_labelled_custom(tmp_path: Path) -> None:
    f = _variants(tmp_path, f"[[variant]]\nname = 'mine'\nframework = 'null'\n"
                  f"python = '{sys.executable}'\ndescription = 'my own build'\n")
    r = cli("run", "--frameworks", "null", "--workloads", "lenet5", "--modes", "infer",
            "--batch-sizes", "4", "--variants", "default,mine", "--variants-file", str(f),
            "--budget", "0.2", "--no-probe", "--no-noise-check", "--results-dir",
            str(tmp_path / "res"), "--run-id", "c", "--machine-id", "m", "--no-progress")
    assert r.returncode == 0, r.stderr
    rows = {row["variant"]: row for row in
            map(json.loads, (tmp_path / "res" / "m" / "c.jsonl").read_text().splitlines())}
    assert rows["mine"]["status"] == "ok" and rows["mine"]["variant_kind"] == "custom"
    assert rows["mine"]["python"] == sys.executable
    assert rows["default"]["variant_kind"] == "default"


@pytest.mark.parametrize("body, line, needle", [
    ("[[variant]]\nname = 'a'\nframework = 'null'\n\n[[variant]]\nname = 'b'\n"
     "framework = 'null'\npython = '/no/such/python'\n", 8, "interpreter not found"),
    ("[[variant]]\nname = 'a'\nframework = 'pytorch'\n# a comment\nisa = 'x86-64-v9'\n", 5,
     "unknown ISA level 'x86-64-v9'"),
    ("[[variant]]\nname = 'a'\nframework = 'pytorch'\nenv = { X = 1 \n", 4, "not valid TOML"),
    ("[[variant]]\nname = 'a'\nframework = 'caffe'\n", 3, "unknown framework 'caffe'"),
])
def test_bad_variants_get_one_line_naming_file_and_line(tmp_path: Path, body: str, line: int,
                                                        needle: str) -> None:
    f = _variants(tmp_path, body)
    names = "b" if "'b'" in body else "a"
    err = one_line_error(cli("run", "--frameworks", "null", "--variants", names,
                             "--variants-file", str(f), "--dry-run"))
    assert err.startswith(f"cnnbench: error: {f}:{line}: "), err
    assert needle in err


def test_a_missing_alternative_build_is_unavailable_with_the_command(tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("CNNBENCH_TOX_WORKDIR", str(tmp_path / "no-tox"))
    c = expand(["mxnet"], ["lenet5"], modes=["infer"], batch_sizes=[4],
               variants=["mxnet-native"])[0]
    row = run_cell(c, RunSettings(run_id="r", machine_id="m", results_dir=tmp_path,
                                  protocol=FAST))
    assert row["status"] == "unavailable" and row["variant_kind"] == "build"
    assert "tox -e mxnet-native --notest" in row["error"]


# ------------------------------------------------------------------- the gains table


def rounds(step_s: float, n: int = 16, seed: int = 0) -> list[float]:
    return list(step_s * np.exp(np.random.default_rng(seed).normal(0.0, 0.02, n)))


def row(variant: str, step_s: float | None, framework: str = "tensorflow", mode: str = "train",
        seed: int = 0, **kw: object) -> dict:
    values = {"run_id": "r1", "machine_id": "m1", "cell_id": f"{framework}{variant}{mode}",
              "framework": framework, "variant": variant, "device": "cpu",
              "workload": "resnet20", "mode": mode, "batch_size": 32, "precision": "fp32",
              "exec_mode": "graph", "threads": 2, "status": "ok" if step_s else "unsupported",
              "samples_s": rounds(step_s, seed=seed) if step_s else [],
              "started_at": "2026-01-01", "framework_version": "2.21.0",
              "variant_kind": "default" if variant == "default" else "isa"}
    values.update(kw)
    return blank_row(**values)


def test_build_gains_compares_every_variant_with_default() -> None:
    avx2 = {"onednn": parse_onednn_verbose(V3_LOG)}
    df = pd.DataFrame([
        row("default", 0.010, kernels=avx2),
        row("x86-64-v2", 0.020, seed=1, isa_level="x86-64-v2",
            kernels={"onednn": parse_onednn_verbose(V2_LOG.replace("avx512_core_bf16", "sse41"))}),
        row("x86-64-v3", 0.010, seed=2, isa_level="x86-64-v3", kernels=avx2),
        row("x86-64-v4", None, isa_level="x86-64-v4", error="x86-64-v4 needs avx512f"),
        row("intel-tensorflow", 0.008, seed=3, variant_kind="build", framework_version="2.14.0"),
        row("mine", 0.005, seed=4, variant_kind="custom", framework_version="2.21.0"),
        row("default", 0.004, mode="infer"),  # another group: no variant, no row
        # another framework's build, as the runner records it: no row either
        row("mxnet-native", None, variant_kind=None,
            error="variant 'mxnet-native' is not defined for tensorflow"),
    ])
    g = build_gains(df).set_index("variant")
    assert list(g.index) == ["x86-64-v2", "x86-64-v3", "x86-64-v4", "intel-tensorflow", "mine"]
    v2 = g.loc["x86-64-v2"]
    assert v2["ratio"] == pytest.approx(0.5, rel=0.05) and v2["high"] < 1.0
    assert v2["significant"] and v2["verdict"] == "slower"
    assert v2["kernel_isa"] == "oneDNN sse41" and v2["default_kernel_isa"] == "oneDNN avx2"
    assert g.loc["x86-64-v3"]["text"].startswith("no clear difference")
    v4 = g.loc["x86-64-v4"]
    assert v4["status"] == "unsupported" and math.isnan(v4["ratio"])
    assert v4["text"] == "unsupported: x86-64-v4 needs avx512f"
    intel = g.loc["intel-tensorflow"]
    assert intel["across_versions"] and intel["build_version"] == "2.14.0"
    assert "across versions: 2.14.0 vs 2.21.0" in intel["note"]
    assert intel["ratio"] == pytest.approx(1.25, rel=0.05) and not intel["custom"]
    mine = g.loc["mine"]
    assert mine["custom"] and not mine["across_versions"]
    assert mine["claim_ratio"] == 1.30 and "30%" in mine["claim"]


def test_a_variant_that_switches_onednn_says_so() -> None:
    """TensorFlow's ladder turns oneDNN on to cap it; on an AVX2 CPU its default build runs
    without oneDNN, so the ratio is not the ISA's alone and the row says so."""
    on, off = {"onednn": {"enabled": True}}, {"onednn": {"enabled": False}}
    df = pd.DataFrame([row("default", 0.010, build=off),
                       row("x86-64-v3", 0.006, seed=1, isa_level="x86-64-v3", build=on),
                       row("x86-64-v2", 0.020, seed=2, isa_level="x86-64-v2", build=off),
                       row("default", 0.010, mode="infer", build=on),
                       row("x86-64-v3", 0.008, mode="infer", seed=3, build=on)])
    g = build_gains(df).set_index(["mode", "variant"])
    assert g.loc[("train", "x86-64-v3"), "note"].endswith(
        "oneDNN on here, off in the default build: the ratio includes oneDNN against the "
        "default's own kernels")
    assert "oneDNN" not in g.loc[("train", "x86-64-v2"), "note"]
    assert "oneDNN" not in g.loc[("infer", "x86-64-v3"), "note"]
    # the seed's build claim beside it, in its direction, and marked as not like for like
    text = g.loc[("train", "x86-64-v3"), "claim_text"]
    assert text.startswith("default over this capped build: 0.6") and "seed: 1.3×" in text
    assert text.endswith("not like for like: oneDNN is on in one, off in the other (see the note)")
    assert "not like for like" not in g.loc[("train", "x86-64-v2"), "claim_text"]


def test_kernels_come_from_a_probed_run_when_a_later_one_was_not_probed() -> None:
    avx2 = {"onednn": parse_onednn_verbose(V3_LOG)}
    df = pd.DataFrame([row("default", 0.010, kernels=avx2),
                       row("x86-64-v3", 0.010, seed=1, isa_level="x86-64-v3", kernels=avx2),
                       row("default", 0.010, seed=2, run_id="r2", started_at="2026-01-02",
                           kernels={})])  # e.g. a scaling sweep run with --no-kernel-probe
    g = build_gains(df).iloc[0]
    assert g["default_kernel_isa"] == "oneDNN avx2" and g["runs_baseline"] == 2


def test_by_run_compares_each_variant_with_the_default_beside_it() -> None:
    df = pd.DataFrame([row("default", 0.010), row("x86-64-v2", 0.020, seed=1),
                       row("default", 0.030, seed=2, run_id="r2"),
                       row("x86-64-v2", 0.060, seed=3, run_id="r2")])
    pooled = build_gains(df)
    assert len(pooled) == 1 and pooled.loc[0]["runs_baseline"] == 2
    per_run = build_gains(df, by_run=True).set_index("run_id")
    assert list(per_run.index) == ["r1", "r2"]
    for run in ("r1", "r2"):
        assert per_run.loc[run]["ratio"] == pytest.approx(0.5, rel=0.05)
        assert per_run.loc[run]["significant"] and per_run.loc[run]["runs_baseline"] == 1
    assert kernel_isa({"steps": 2}) == "no oneDNN primitive ran" and kernel_isa(None) == ""


def test_jax_rows_carry_the_note_on_precompiled_kernels() -> None:
    kernels = {"xla": {"xla_cpu_max_isa": ["AVX"], "convolutions": 42,
                       "prefer_vector_width": {"256": 3}}}
    df = pd.DataFrame([row("default", 0.01, framework="jax"),
                       row("avx", 0.01, framework="jax", seed=5, isa_level="avx",
                           kernels=kernels)])
    g = build_gains(df)
    assert len(g) == 1 and g.loc[0]["text"].startswith("no clear difference")
    # the row says what the probe counted; the report states the whole note once, below
    assert g.loc[0]["note"].endswith("XLA's cap reaches only its generated code (256-bit "
                                     "vectors); 42 convolutions ran precompiled kernels")
    assert jax_note() == JAX_NOTE and g.loc[0]["kernel_isa"] == "XLA AVX"
    assert "42 convolutions in precompiled kernels" in jax_note(kernels)
    assert math.isnan(g.loc[0]["claim_ratio"])


def test_seed_claims_and_the_isa_matrix() -> None:
    assert TF_BUILD in CLAIMS and TF_BUILD.framework == "tensorflow"
    assert (TF_BUILD.ratio("train"), TF_BUILD.ratio("infer")) == (1.30, 2.0)
    df = pd.DataFrame([row("default", 0.01, build={"cpu_feature_guard_missing": ["AVX2", "FMA"]},
                           kernels={"onednn": parse_onednn_verbose(V3_LOG)})])
    m = isa_matrix(df, AVX2_EPYC).iloc[0]
    assert (m["avx"], m["avx2"], m["fma"], m["avx512f"]) == (
        "compiled for", "not compiled for", "not compiled for", "not on CPU")
    assert m["kernels"] == "oneDNN avx2"
    assert build_gains(pd.DataFrame()).empty


def test_list_variants_names_kinds_and_builds() -> None:
    r = cli("list", "--variants", "--json")
    assert r.returncode == 0
    got = {(v["name"], v["framework"]): v for v in json.loads(r.stdout)}
    assert got[("x86-64-v3", "jax")]["kind"] == "isa"
    assert got[("intel-tensorflow", "tensorflow")]["tox_env"] == "intel-tensorflow"
    assert got[("mxnet-native", "mxnet")]["kind"] == "build"

"""The seeds' claims, checked like with like: planted rows, and the text of each claim's answer
in the report (one GPU against the CPU at the same settings, this CPU's figure against the
seed's, the TensorFlow build claim paired by one difference only, two GPUs training with weak
scaling), and the builds table stating the seed's figure in the same direction as its own."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import row
from test_report_sections import BASE, cell, sections

from cnnbench.core.schema import append_row
from cnnbench.report.render import write_report

AVX2_FLAGS = ("fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt cx16 avx avx2 fma bmi1 bmi2 f16c movbe "
              "abm").split()
MEDIAN = float(np.median(BASE))  # every planted cell's step time is MEDIAN x its factor


def _machine(res: Path, mid: str, flags: list[str] | None = None) -> None:
    (res / mid).mkdir(parents=True, exist_ok=True)
    (res / mid / "machine.json").write_text(json.dumps(
        {"machine_id": mid, "cpu": {"model": "CPU", "logical_cores": 2,
                                    "flags": flags or AVX2_FLAGS}, "gpus": []}))


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def answers(res: Path, tmp_path: Path) -> dict[str, str]:
    """The claims table's answer column, keyed by the first words of each claim."""
    s = sections(write_report([res], tmp_path / "index.html").read_text())["claims"]
    out = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", s, flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)
        if cells:
            out[" ".join(_text(cells[0]).split()[:3])] = _text(cells[-1])
    return out


def test_gpu_against_cpu_is_one_gpu_at_the_same_settings_naming_both_machines(
        tmp_path: Path) -> None:
    res = tmp_path / "results"
    tf = {"framework": "tensorflow", "workload": "cifar10_tutorial", "mode": "train",
          "exec_mode": "graph"}
    cpu, gpu = res / "cpubox" / "r.jsonl", res / "gpubox" / "r.jsonl"
    cell(cpu, 1, 1.0, machine_id="cpubox", batch_size=32, device_name="AMD EPYC", **tf)
    # the like-for-like GPU cell: 4x the CPU
    cell(gpu, 2, 0.25, machine_id="gpubox", batch_size=32, device="gpu:0",
         device_name="NVIDIA H200", **tf)
    # faster GPU cells that are not like for like, each must be left out:
    cell(gpu, 3, 0.05, machine_id="gpubox", batch_size=32, device="gpu:0+1", n_devices=2,
         scaling="strong", **tf)  # a device set, not one GPU
    cell(gpu, 4, 0.5, machine_id="gpubox", batch_size=256, device="gpu:0", **tf)  # no CPU b256
    cell(gpu, 5, 0.1, machine_id="gpubox", batch_size=32, device="gpu:0", precision="fp16",
         **tf)  # no CPU cell in fp16
    cell(gpu, 6, 0.2, machine_id="gpubox", batch_size=32, device="gpu:0",
         **{**tf, "exec_mode": "eager"})  # no CPU cell in eager mode
    a = answers(res, tmp_path)["The TensorFlow CIFAR-10"]
    assert "4.00× [" in a and "(seed: 2.9×)" in a, a
    assert "gpubox gpu:0 (NVIDIA H200)" in a and "cpubox CPU (AMD EPYC)" in a, a
    assert "GPU over CPU, TensorFlow default graph b32 fp32: " in a, a
    assert "gpu:0+1" not in a and "fp16" not in a, a
    for wrong in ("20.0×", "16.0×", "10.0×", "5.00×"):
        assert wrong not in a, a


def test_this_cpu_against_the_seeds_absolute_figures(tmp_path: Path) -> None:
    res = tmp_path / "results"
    f = res / "box" / "r.jsonl"
    cell(f, 1, 1.0, machine_id="box", framework="tensorflow", workload="cifar10_tutorial",
         mode="train", batch_size=32, exec_mode="graph")
    cell(f, 2, 20.0, machine_id="box", framework="pytorch", workload="resnet50", mode="train",
         batch_size=8, exec_mode="eager")
    a = answers(res, tmp_path)
    cifar = a["The TensorFlow CIFAR-10"]
    ips = 32 / MEDIAN
    assert f"this CPU (box, TensorFlow default graph b32 fp32): {ips:,.0f} img/s [" in cifar, cifar
    assert f"against the seed's i7 at 770: {ips / 770:.2f}× [" in cifar, cifar
    assert "not like for like: " in cifar and "input pipeline" in cifar, cifar
    assert "no single-GPU cell" in cifar, cifar
    prod = a["A production model"]
    ips50 = 8 / (20 * MEDIAN)
    assert f"{ips50:.3g} img/s [" in prod, prod
    assert (f"against the seed's i5 at 19: {ips50 / 19:.2f}× [" in prod
            and f"i7 at 25: {ips50 / 25:.2f}× [" in prod), prod
    assert "not named" in prod, prod


def test_production_claim_from_inference_alone_says_so(tmp_path: Path) -> None:
    res = tmp_path / "results"
    f = res / "box" / "r.jsonl"
    common = {"machine_id": "box", "framework": "pytorch", "workload": "resnet50",
              "mode": "infer", "batch_size": 8, "exec_mode": "eager"}
    cell(f, 1, 20.0, **common)
    cell(f, 2, 2.0, device="gpu:0", **common)
    a = answers(res, tmp_path)["A production model"]
    assert a.startswith("GPU over CPU, PyTorch default eager b8 fp32: ") and "10.00× [" in a, a
    assert "(seed: 25×)" in a and "inference, as no resnet50 training cell ran" in a, a
    assert "i5 and i7 figures are for training, not compared" in a, a


def _tf_build_rows(res: Path, *, v3: bool, intel: bool, machine_json: bool = True) -> None:
    """TensorFlow on an AVX2-only CPU: the default build runs without oneDNN (as TF 2.21
    does there), its ladder levels force oneDNN on."""
    f = res / "avx2box" / "r.jsonl"
    if machine_json:
        _machine(res, "avx2box")
    off, on = {"onednn": {"enabled": False}}, {"onednn": {"enabled": True}}
    n = 0
    for mode in ("train", "infer"):
        common = {"machine_id": "avx2box", "framework": "tensorflow", "workload": "resnet20",
                  "mode": mode, "batch_size": 32, "exec_mode": "graph",
                  "framework_version": "2.21.0"}
        variants = [("default", 1.0, {"build": off, "variant_kind": "default"}),
                    ("x86-64-v2", 2.0, {"build": on, "variant_kind": "isa",
                                        "isa_level": "x86-64-v2",
                                        "env": {"TF_ENABLE_ONEDNN_OPTS": "1",
                                                "ONEDNN_MAX_CPU_ISA": "SSE41"}})]
        if v3:
            variants.append(("x86-64-v3", 1.25, {"build": on, "variant_kind": "isa",
                                                 "isa_level": "x86-64-v3"}))
        if intel:
            variants.append(("intel-tensorflow", 1.0, {"build": on, "variant_kind": "build",
                                                       "framework_version": "2.14.0"}))
        for variant, factor, kw in variants:
            n += 1
            cell(f, n, factor, variant=variant, **{**common, **kw})
        n += 1  # a level above this CPU, as the runner records it
        append_row(f, row(cell_id=f"v4{n}", variant="x86-64-v4", variant_kind="isa",
                          isa_level="x86-64-v4", status="unsupported", images_per_s=None,
                          samples_s=[], error="x86-64-v4 needs avx512f", **common))


def test_tf_build_claim_never_pairs_the_onednn_switch_as_an_isa_claim(tmp_path: Path) -> None:
    res = tmp_path / "results"
    _tf_build_rows(res, v3=False, intel=False)
    a = answers(res, tmp_path)["A TensorFlow built"]
    # default (oneDNN off) against x86-64-v2 (oneDNN on) is the oneDNN switch: no ratio
    assert "×" not in a.replace("2×", ""), a
    assert "oneDNN off" in a and "not like for like" in a, a


@pytest.mark.parametrize("machine_json", [True, False])
def test_tf_build_claim_pairs_one_difference_and_says_which(tmp_path: Path,
                                                           machine_json: bool) -> None:
    """With or without machine.json: the CPU's top level comes from its flags, else from the
    level above it that the runner recorded unsupported."""
    res = tmp_path / "results"
    _tf_build_rows(res, v3=True, intel=True, machine_json=machine_json)
    a = answers(res, tmp_path)["A TensorFlow built"]
    # only the build: intel-tensorflow (oneDNN on) over the stock build with oneDNN on, which
    # here is x86-64-v3 (AVX2 is this CPU's top level, so that cap caps nothing): 1.25x
    build, isa = a.split("Only the ISA level")
    assert build.startswith("Only the build"), a
    assert "intel-tensorflow 2.14.0 over the stock build 2.21.0 at x86-64-v3" in build, a
    assert "training: 1.25× [" in build and "inference: 1.25× [" in build, a
    assert "(seed: 1.3×)" in build and "(seed: 2×)" in build, a
    # only the ISA level: x86-64-v3 over x86-64-v2, oneDNN on in both: 1.6x
    assert "x86-64-v3 over x86-64-v2" in isa and "oneDNN on in both" in isa, a
    assert "training: 1.60× [" in isa and "inference: 1.60× [" in isa, a
    assert "default" not in isa.split(":")[0], a


def test_two_gpus_claim_is_training_with_weak_scaling_on_hardware(tmp_path: Path) -> None:
    res = tmp_path / "results"
    f = res / "gpubox" / "r.jsonl"
    n = 0
    for mode, weak, strong in (("train", 0.125, 0.08), ("infer", 0.105, 0.07)):
        common = {"machine_id": "gpubox", "framework": "pytorch", "exec_mode": "eager",
                  "workload": "resnet20", "mode": mode}
        for dev, b, step, sc, nd in (("gpu:0", 32, 0.1, None, 1), ("gpu:0", 64, 0.2, None, 1),
                                     ("gpu:0+1", 64, weak, "weak", 2),
                                     ("gpu:0+1", 32, strong, "strong", 2),
                                     ("cpu", 32, 0.1, None, 1), ("cpu*2", 64, 0.1, "weak", 2)):
            n += 1
            cell(f, n, step / 0.01, device=dev, batch_size=b, scaling=sc, n_devices=nd,
                 simulated=dev.startswith("cpu*"), per_device_batch=b // nd, **common)
    a = answers(res, tmp_path)["Two GPUs train"]
    # weak training: 2 x 0.1 / 0.125 = 1.6; strong (1.25) and inference (1.90) are not the
    # seed's setting; simulated devices (cpu*2, 2.0) are not GPUs
    assert "1.60× [" in a and "(seed: 1.5×)" in a and "weak" in a, a
    for wrong in ("1.25×", "1.90×", "2.00×", "cpu*2", "infer"):
        assert wrong not in a, a


def test_builds_table_states_the_seed_in_the_direction_of_its_own_figure(tmp_path: Path) -> None:
    res = tmp_path / "results"
    f = res / "box" / "r.jsonl"
    on = {"onednn": {"enabled": True}}
    common = {"machine_id": "box", "framework": "tensorflow", "workload": "resnet20",
              "mode": "train", "batch_size": 32, "exec_mode": "graph", "build": on}
    cell(f, 1, 1.0, variant="default", variant_kind="default", **common)
    cell(f, 2, 1.85, variant="x86-64-v2", variant_kind="isa", isa_level="x86-64-v2", **common)
    cell(f, 3, 0.8, variant="intel-tensorflow", variant_kind="build", **common)
    s = sections(write_report([res], tmp_path / "index.html").read_text())["builds"]
    rows = [_text(tr) for tr in re.findall(r"<tr>(.*?)</tr>", s, flags=re.S) if "resnet20" in tr]
    ladder = next(t for t in rows if "x86-64-v2" in t)
    # the row's own figure is the variant over the default (0.54); the seed's is the build for
    # the CPU over the stock one: both in that direction
    assert "0.54× [" in ladder, ladder
    assert "default over this capped build: 1.85× [" in ladder, ladder
    assert "seed: 1.3× (training)" in ladder, ladder
    intel = next(t for t in rows if "intel-tensorflow" in t)
    assert "this build over the default: 1.25× [" in intel, intel


def test_where_oneDNN_is_on_by_default_the_uncapped_default_stands_for_the_build(
        tmp_path: Path) -> None:
    """An AVX-512 CPU with VNNI/BF16: TensorFlow's default runs oneDNN, so without x86-64-v3
    the uncapped default against x86-64-v2 differs only in the ISA level."""
    res = tmp_path / "results"
    f = res / "box" / "r.jsonl"
    _machine(res, "box", AVX2_FLAGS + "avx512f avx512bw avx512cd avx512dq avx512vl avx512_vnni "
             "avx512_bf16".split())
    on = {"onednn": {"enabled": True}}
    common = {"machine_id": "box", "framework": "tensorflow", "workload": "resnet20",
              "mode": "infer", "batch_size": 32, "exec_mode": "graph", "build": on}
    cell(f, 1, 1.0, variant="default", variant_kind="default", **common)
    cell(f, 2, 3.0, variant="x86-64-v2", variant_kind="isa", isa_level="x86-64-v2", **common)
    a = answers(res, tmp_path)["A TensorFlow built"]
    assert a.startswith("Only the ISA level (the stock build, oneDNN on in both"), a
    assert "default (uncapped: up to this CPU's own ISA) over x86-64-v2" in a, a
    assert "inference: 3.00× [" in a and "(seed: 2×)" in a and "training" not in a, a


def test_the_seeds_claims_are_one_table() -> None:
    """builds, scaling and the report hold no claim of their own: they read claims.CLAIMS."""
    import ast

    from cnnbench.analyse import builds, claims, scaling
    from cnnbench.report import sections

    root = Path(claims.__file__).parent.parent  # all of cnnbench/
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        assert path.name == "claims.py" or "Claim" not in names, path
    for mod, name in ((builds, "SEED_CLAIMS"), (scaling, "SEED_CLAIM"), (sections, "CLAIMS")):
        assert not hasattr(mod, name), (mod, name)
    t = claims.check_claims(pd.DataFrame(columns=["status", "mode"]))
    assert t["claim"].tolist() == [c.text for c in claims.CLAIMS]
    assert scaling.SEED_LABEL.startswith(f"seed claim: 2 GPUs ≈ {claims.TWO_GPUS.ratio('train')}×")


def test_a_comparison_read_the_other_way_round() -> None:
    from cnnbench.analyse.compare import compare_cells

    rng = np.random.default_rng(3)
    a = [0.01 * np.exp(rng.normal(0, 0.02, 20)) for _ in range(3)]
    b = [0.02 * np.exp(rng.normal(0, 0.02, 20)) for _ in range(3)]
    ab, ba = compare_cells(a, b), compare_cells(b, a)
    inv = ab.inverted()
    assert ab.ratio < 1 < inv.ratio and inv.verdict == "faster" == ba.verdict
    # the same interval but for the bootstrap's draws, which come in the other order
    assert inv.ratio == pytest.approx(1 / ab.ratio)
    assert (inv.low, inv.high) == pytest.approx((1 / ab.high, 1 / ab.low))
    assert (inv.ratio, inv.low, inv.high) == pytest.approx((ba.ratio, ba.low, ba.high), rel=2e-3)
    assert inv.baseline == ab.contender and inv.p_value == ab.p_value

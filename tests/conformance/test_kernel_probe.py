"""The kernel probe in each framework: one step of a cell in a real probe process
(``cnnbench.measure.worker --kernels``), with an ISA cap that the framework obeys and, where there is
one, a cap it ignores, which must come out flagged (cnnbench.measure.kernels.cap_ignored).

Each case is one short subprocess (LeNet-5 inference, batch 2), since oneDNN reads its
verbose switch once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.core import isa
from cnnbench.measure.kernels import JAX_NOTE, cap_ignored
from cnnbench.plan.envs import worker_env
from cnnbench.plan.expand import expand

pytestmark = pytest.mark.conformance


def probe(framework: str, env: dict[str, str], tmp_path: Path,
          workload: str = "lenet5") -> dict:
    cell = expand([framework], [workload], modes=["infer"], batch_sizes=[2], threads=[2])[0]
    cell_file, out = tmp_path / "cell.json", tmp_path / "kernels.json"
    cell_file.write_text(json.dumps({"cell": {**cell.to_dict(), "options": {}}}))
    full, _ = worker_env(env, 2)
    r = subprocess.run([sys.executable, "-m", "cnnbench.measure.worker", "--kernels", "--cell",
                        str(cell_file), "--out", str(out)], env=full, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert out.exists(), r.stderr[-3000:]
    kernels = json.loads(out.read_text())
    assert "error" not in kernels, kernels["error"]
    return kernels


def _skip_unless(framework: str, wanted: str) -> None:
    if framework != wanted:
        pytest.skip(f"a {wanted} case")


def test_pytorch_kernel_probe_catches_an_ignored_aten_cap(framework: str, tmp_path: Path) -> None:
    _skip_unless(framework, "pytorch")
    env = {"ATEN_CPU_CAPABILITY": "avx3", "ONEDNN_MAX_CPU_ISA": "SSE41"}  # avx3: no such set
    k = probe("pytorch", env, tmp_path)
    assert k["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512")
    # LeNet-5's small convolutions run oneDNN's GEMM kernels, which name no ISA; the
    # dispatcher's own line says the cap took
    assert k["onednn"]["executions"] > 0
    assert k["onednn"]["top_isa"] is None or isa.onednn_rank(k["onednn"]["top_isa"]) == isa.SSE41
    assert isa.onednn_words(k["onednn"]["max_isa"]) == isa.SSE41, k["onednn"]["max_isa"]
    assert cap_ignored("pytorch", env, k) == [
        f"ATEN_CPU_CAPABILITY=avx3 but PyTorch runs its {k['cpu_capability']} kernels"]


def test_tensorflow_kernel_probe_sees_its_cap_hold(framework: str, tmp_path: Path) -> None:
    _skip_unless(framework, "tensorflow")
    env = {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    k = probe("tensorflow", env, tmp_path)
    assert k["onednn"]["version"].startswith("v3")
    assert isa.onednn_rank(k["onednn"]["top_isa"] or "") == isa.SSE41, k["onednn"]
    assert isa.onednn_words(k["onednn"]["max_isa"]) == isa.SSE41, k["onednn"]["max_isa"]
    assert cap_ignored("tensorflow", env, k) == []


@pytest.mark.parametrize("var, ignored", [("ONEDNN_MAX_CPU_ISA", True),
                                          ("DNNL_MAX_CPU_ISA", False)])
def test_mxnet_kernel_probe_catches_the_cap_it_ignores(framework: str, tmp_path: Path,
                                                       var: str, ignored: bool) -> None:
    _skip_unless(framework, "mxnet")
    import os

    if os.environ.get("MXNET_MKLDNN_ENABLED") == "0":
        pytest.skip("oneDNN is switched off in this pass")
    env = {var: "SSE41"}
    k = probe("mxnet", env, tmp_path)
    assert k["onednn"]["executions"] > 0
    reasons = cap_ignored("mxnet", env, k)
    if ignored:  # MXNet 1.9's oneDNN v2 reads DNNL_MAX_CPU_ISA, not the ONEDNN_ name
        # what ran is named; where only ISA-neutral (GEMM) kernels ran, the dispatcher's limit
        top, allowed = k["onednn"]["top_isa"], k["onednn"]["dispatch_isa"]
        ranks = [isa.onednn_rank(name) or 0 for name in (top, allowed) if name]
        assert ranks and min(ranks) > isa.SSE41, k["onednn"]
        seen = f"ran {top} kernels" if top else f"dispatched up to {allowed}"
        assert reasons == [f"ONEDNN_MAX_CPU_ISA=SSE41 but oneDNN {seen}"], k["onednn"]
    else:
        assert isa.onednn_rank(k["onednn"]["top_isa"] or "") == isa.SSE41 and reasons == []


def test_jax_kernel_probe_reads_the_cap_from_xla(framework: str, tmp_path: Path) -> None:
    _skip_unless(framework, "jax")
    env = {"XLA_FLAGS": "--xla_cpu_max_isa=AVX"}
    k = probe("jax", env, tmp_path)
    assert k["xla"]["xla_cpu_max_isa"] == ["AVX"]
    assert k["xla"]["convolutions"] >= 2 and k["xla"]["note"] == JAX_NOTE
    assert cap_ignored("jax", env, k) == []

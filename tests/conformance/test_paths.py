"""The forced code path took effect, and the unforced one is the one the CPU implies.

An ISA cap or oneDNN switch with a wrong name or value is ignored by the framework without a
word (PyTorch ignores an invalid ATEN_CPU_CAPABILITY; XLA only warns about a bad ISA), so a
run on a "capped" path would quietly be the native one. See tests/conformance/paths.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.core import isa
from tests.conformance import paths

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_path_is_named_in_the_header(framework: str, pytestconfig: pytest.Config) -> None:
    line = paths.describe(framework)
    assert f"framework={framework}" in line
    assert pytestconfig.hook.pytest_report_header(config=pytestconfig, start_path=ROOT)


def test_pytorch_cpu_capability_is_the_forced_or_native_one(framework: str) -> None:
    if framework != "pytorch":
        pytest.skip("PyTorch's ATen kernel set")
    import torch

    # ATen has three x86 kernel sets: baseline, AVX2 and AVX-512; it runs the highest the CPU
    # has, or the capped path's baseline.
    cpu = isa.cpu_level(paths.cpu_flags())
    want = isa.BASELINE if paths.isa_capped("pytorch") else (
        isa.AVX512 if cpu >= isa.AVX512 else isa.AVX2 if cpu >= isa.AVX2 else isa.BASELINE)
    got = torch.backends.cpu.get_cpu_capability()
    assert isa.aten_level(got) == want, f"ATen runs {got}; the CPU proves {isa.name(cpu)}"


def test_pytorch_onednn_isa_is_the_forced_or_native_one(framework: str) -> None:
    """oneDNN names the ISA it dispatches to in its verbose log (a fresh process: the
    variable is read once), in words that change with the CPU and the version ("Intel
    AVX-512 with Intel DL Boost and bfloat16 support" on the AVX-512 EPYC, "Intel AVX10.1 and
    Intel AMX with bfloat16 and 8-bit integer support" on the AMX Xeon): they are read into
    the ISA ladder and compared by vector width with what the CPU's flags prove. Uncapped,
    the same rung as the CPU; capped to AVX2, AVX2 (or the CPU's own rung below it)."""
    if framework != "pytorch":
        pytest.skip("PyTorch's oneDNN")
    code = ("import torch; torch.nn.functional.conv2d(torch.randn(4, 64, 32, 32), "
            "torch.randn(64, 64, 3, 3))")
    out = _child(code, ONEDNN_VERBOSE="1")
    assert out.returncode == 0, out.stderr
    m = re.search(r"onednn_verbose,.*info,cpu,isa:(.*)", out.stdout)
    assert m, out.stdout[-2000:]
    words, flags = m.group(1), paths.cpu_flags()
    got, cpu = isa.onednn_words(words, flags), isa.cpu_level(flags)
    assert got is not None, f"cannot read oneDNN's ISA words {words!r}"
    want = min(cpu, isa.AVX2) if paths.isa_capped("pytorch") else cpu
    assert isa.coarse(got) == isa.coarse(want), (
        f"oneDNN dispatches to {words!r} ({isa.name(got)}); expected the "
        f"{isa.coarse(want)} rung (CPU: {isa.name(cpu)})")


def test_tensorflow_onednn_is_the_forced_or_cpu_default(framework: str) -> None:
    if framework != "tensorflow":
        pytest.skip("TensorFlow's oneDNN switch")
    from tensorflow.python.util import _pywrap_util_port as port

    from adapters import load_adapter

    load_adapter("tensorflow")
    assert bool(port.IsMklEnabled()) is paths.tf_onednn_expected()


def test_mxnet_onednn_is_the_forced_one(framework: str) -> None:
    """MXNet reads MXNET_MKLDNN_ENABLED at first use; oneDNN's verbose log shows whether a
    convolution reached it."""
    if framework != "mxnet":
        pytest.skip("MXNet's oneDNN switch")
    import mxnet as mx

    forced = paths.onednn_forced("mxnet")
    want = mx.runtime.Features().is_enabled("MKLDNN") if forced is None else forced
    code = ("import mxnet as mx; x = mx.nd.random.normal(shape=(4, 16, 16, 16)); "
            "w = mx.nd.random.normal(shape=(16, 16, 3, 3)); "
            "mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=16, no_bias=True).wait_to_read()")
    out = _child(code, DNNL_VERBOSE="1", MKLDNN_VERBOSE="1")
    assert out.returncode == 0, out.stderr
    used = re.search(r"(dnnl|mkldnn|onednn)_verbose,exec", out.stdout) is not None
    assert used is want, out.stdout[-2000:]


def test_jax_isa_cap_is_accepted(framework: str) -> None:
    """XLA takes the flag and only warns ("Unknown CPU ISA: ...") on a value it does not
    know; a fresh process with the run's XLA_FLAGS must compile without that warning. That the
    cap changes the generated code is not visible from Python (the HLO text does not show it),
    and it does not reach the convolutions, which are precompiled kernels."""
    if framework != "jax":
        pytest.skip("XLA's ISA cap")
    code = "import jax, jax.numpy as jnp; print(jax.jit(lambda a: a * 2 + 1)(jnp.ones(64)).sum())"
    out = _child(code)
    assert out.returncode == 0, out.stderr
    assert "192" in out.stdout
    if paths.isa_capped("jax"):
        assert "Unknown CPU ISA" not in out.stderr, out.stderr

"""Peak memory grows with the batch as the spec's activations say (issue 24).

ResNet-50 training at batch 16 and 32, each in a fresh process (a high-water mark is per
process), at 64x64 pixels: the spec's analytic activation count (workloads.memory) is taken
at the same size, so only the scale changes, and a step takes seconds instead of a minute.
What the extra 16 images add to the peak resident memory must be within a factor of
FACTOR of the activations they add by the spec (fp32: every layer's output kept for the
backward pass). Measured 2026-12 on the AVX-512 EPYC, PyTorch 2.13 eager: 137 MB against
the spec's 188 MB (0.73; PyTorch frees or reuses some outputs, e.g. in-place ReLU).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workloads import get_workload
from workloads.memory import activation_bytes

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[2]
FACTOR = 2.0
SIZE = 64
MEASURED = ("pytorch",)  # the factor was measured for these; the others are not held to it


def _added_mb(framework: str, batch: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tests.conformance.memory_step", framework,
                          "resnet50", str(SIZE), str(batch)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    fields = json.loads(out.stdout.strip().splitlines()[-1])
    assert fields["rss_added_mb"] is not None, "the high-water mark could not be reset"
    return float(fields["rss_added_mb"])


def test_resnet50_training_peak_grows_with_batch_as_the_spec_says(framework: str) -> None:
    if framework not in MEASURED:
        pytest.skip(f"the factor is stated for {', '.join(MEASURED)} only")
    spec = dataclasses.replace(get_workload("resnet50"), input_shape=(3, SIZE, SIZE))
    small, large = _added_mb(framework, 16), _added_mb(framework, 32)
    grew = large - small
    spec_mb = (activation_bytes(spec, 32, "train") - activation_bytes(spec, 16, "train")) / 2**20
    assert grew > 0, f"batch 32 added {large:.0f} MB, batch 16 {small:.0f} MB: no growth"
    assert spec_mb / FACTOR <= grew <= spec_mb * FACTOR, (
        f"16 more images added {grew:.0f} MB; the spec's activations say {spec_mb:.0f} MB "
        f"(allowed: a factor of {FACTOR})")

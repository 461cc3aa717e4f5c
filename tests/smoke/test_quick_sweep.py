"""The smoke sweep: `cnnbench run --quick` over every framework's real environment, then the
report. Through tox (`tox -e smoke`) a missing framework environment is a failure; run
directly, frameworks whose environment does not exist are skipped with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters import FRAMEWORKS
from cnnbench.plan.envs import find_python

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]
QUICK = ("lenet5", "cifar10_tutorial", "resnet20")


def _available() -> list[str]:
    present, missing = [], []
    for fw in FRAMEWORKS:
        py, why = find_python(fw, {})
        (present if py else missing).append((fw, why))
    if missing and os.environ.get("CNNBENCH_REQUIRE_FRAMEWORKS") == "1":
        pytest.fail("framework environments missing: " + "; ".join(w for _, w in missing))
    if not present:
        pytest.skip("no framework environment exists: " + "; ".join(w for _, w in missing))
    return [fw for fw, _ in present]


@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, Path]:
    frameworks = _available()
    out = tmp_path_factory.mktemp("smoke")
    res, html = out / "results", out / "index.html"
    r = subprocess.run(
        # The smoke proves that every path runs end to end, not the figures: one run a cell
        # (the presets' three are for comparisons) keeps CI short. The kernel probe (a second
        # process per cell) is checked per framework in tests/conformance instead.
        [sys.executable, "-m", "cnnbench", "run", "--quick", "--repeat", "1", "--no-kernel-probe",
         "--frameworks", ",".join(frameworks),
         "--results-dir", str(res), "--run-id", "smoke", "--machine-id", "ci",
         "--no-progress", "--report", str(html)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    print(r.stdout[-6000:], r.stderr[-3000:])
    assert r.returncode == 0, r.stderr
    return frameworks, res / "ci" / "smoke.jsonl", html


def test_every_quick_cell_is_ok(quick_sweep) -> None:
    frameworks, run_file, _ = quick_sweep
    rows = [json.loads(line) for line in run_file.read_text().splitlines()]
    got = {(r["framework"], r["workload"], r["mode"]): r for r in rows}
    for fw in frameworks:
        for wl in QUICK:
            for mode in ("train", "infer"):
                row = got.get((fw, wl, mode))
                assert row is not None, f"no row for {fw} {wl} {mode}"
                assert row["status"] == "ok", f"{fw} {wl} {mode}: {row['error']}"
                assert row["images_per_s"] > 0
                assert row["ci95_low"] <= row["images_per_s"] <= row["ci95_high"]
                assert row["device"] == "cpu" and row["framework_version"]
                assert row["model_params"] == row["params"]


def test_report_names_every_framework_and_workload(quick_sweep) -> None:
    frameworks, _, html = quick_sweep
    text = html.read_text()
    for name in (*frameworks, *QUICK):
        assert f">{name}<" in text

"""The core never imports a framework; adapters are only imported in their workers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "jaxlib", "flax", "optax", "mxnet")


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys, cnnbench.cli, cnnbench.sweep.runner, cnnbench.report.render, cnnbench.measure.worker, "
        "cnnbench.core.machine, adapters, workloads\n"
        f"bad = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_core_and_workloads_sources_never_import_a_framework() -> None:
    for pkg in ("cnnbench", "workloads"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for n in names:
                    assert n.split(".")[0] not in FRAMEWORKS, f"{path} imports {n}"

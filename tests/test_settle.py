"""`cnnbench run --target-ratio-ci`: more runs, interleaved in fresh processes, until each
comparison's interval is within the target or --max-repeat is reached (null adapter, real
workers, planted noise between processes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cnnbench.core.cells import Cell
from cnnbench.sweep.settle import group_width
from tests.test_cli import cli  # the CLI in a subprocess, as a user runs it


def _run(tmp_path: Path, *extra: str) -> tuple[list[dict], str]:
    r = cli("run", "--frameworks", "null", "--workloads", "lenet5", "--modes", "infer",
            "--batch-sizes", "4", "--adapter-opt", "step_s=0.002", "--budget", "0.2",
            "--no-probe", "--no-noise-check", "--results-dir", str(tmp_path), "--run-id", "s",
            "--machine-id", "m", "--no-progress", "--repeat", "2", *extra)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "m" / "s.jsonl").read_text().splitlines()]
    return [row for row in rows if row["mode"] == "infer"], r.stdout


def test_noisy_processes_get_more_runs_up_to_the_cap(tmp_path: Path) -> None:
    # +-30% between processes: after 2 runs (and after 5) the interval is far wider than 5%.
    rows, out = _run(tmp_path, "--adapter-opt", "run_jitter=0.3", "--target-ratio-ci", "0.05",
                     "--max-repeat", "5")
    assert sorted(r["repeat"] for r in rows) == [0, 1, 2, 3, 4]
    assert "run 3" in out and "still wider than +-5%" in out


def test_a_quiet_cell_stops_at_its_repeats(tmp_path: Path) -> None:
    # Two runs are never enough here (the t quantile with one degree of freedom is 12.7, so
    # a 3% difference between them reads +-38%); three close ones are, for a loose target.
    rows, out = _run(tmp_path, "--repeat", "3", "--target-ratio-ci", "0.5", "--max-repeat", "6")
    assert sorted(r["repeat"] for r in rows) == [0, 1, 2]
    assert "wider" not in out


def test_group_width_is_the_ratio_over_the_first_or_a_lone_cells_own() -> None:
    a = Cell("null", "default", "cpu", "lenet5", "infer", 4, "fp32", "eager")
    b = Cell("null", "v2", "cpu", "lenet5", "infer", 4, "fp32", "eager")
    rng = np.random.default_rng(0)

    def row(c: Cell, i: int, step: float) -> tuple[str, dict]:
        c = Cell(**{**c.__dict__, "repeat": i})
        return c.cell_id, {"status": "ok", "batch_size": 4,
                           "samples_s": list(step * (1 + 0.01 * rng.standard_normal(20)))}

    rows = dict(row(a, i, 0.01 * (1 + 0.1 * (-1) ** i)) for i in range(4))
    assert math.isinf(group_width([a], dict(list(rows.items())[:1]), 1)), "one run: undecided"
    alone = group_width([a], rows, 4)
    assert 0.05 < alone < 1.0
    rows.update(row(b, i, 0.01) for i in range(4))
    assert group_width([a, b], rows, 4) > 0.05
    assert group_width([a, b], {k: {**v, "status": "crashed"} for k, v in rows.items()}, 4) == 0


def test_compare_says_which_ratios_are_wider_and_how_many_runs_would_settle_them(
        tmp_path: Path) -> None:
    for run_id in ("a", "b"):
        r = cli("run", "--frameworks", "null", "--workloads", "lenet5", "--modes", "infer",
                "--batch-sizes", "4", "--adapter-opt", "step_s=0.002", "--adapter-opt",
                "run_jitter=0.3", "--budget", "0.2", "--no-probe", "--no-noise-check",
                "--results-dir", str(tmp_path), "--run-id", run_id, "--machine-id", "m",
                "--no-progress", "--repeat", "2")
        assert r.returncode == 0, r.stderr
    args = ["compare", "a", "b", "--results-dir", str(tmp_path)]
    r = cli(*args, "--json", "--target-ratio-ci", "0.05")
    assert r.returncode == 0, r.stderr
    (cell,) = [c for c in json.loads(r.stdout)["cells"] if c["mode"] == "infer"]
    assert not cell["settled"] and cell["half_width"] > 0.05 and cell["runs_needed"] > 2
    assert cell["runs_needed"] == math.ceil(2 * (cell["half_width"] / 0.05) ** 2)
    r = cli(*args, "--target-ratio-ci", "0.05")
    assert "ratios are wider than +-5%" in r.stdout and "a side" in r.stdout
    r = cli(*args, "--json", "--target-ratio-ci", "50")
    assert all(c["settled"] for c in json.loads(r.stdout)["cells"])

"""Reliability: faults leave the runner unchanged, a killed runner resumes without losing or
duplicating a cell, damaged files are survivable, and big inputs stay flat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from cnnbench.core.results import load_results
from cnnbench.core.schema import REQUIRED, SCHEMA_VERSION, append_row, dumps_row, iter_rows
from cnnbench.measure.timing import Protocol
from cnnbench.plan.expand import expand
from cnnbench.report.render import write_report
from cnnbench.sweep.runner import RunSettings, run_plan

ROOT = Path(__file__).resolve().parent.parent
FAST = Protocol(budget_s=0.3, min_round_s=0.01)


def _cells(*faults: str):
    out = []
    for i, f in enumerate(faults):
        opts = {"fault": f, "i": i} if f else {"step_s": 0.0005, "i": i}
        out.extend(expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[2], options=opts))
    return out


def test_faulty_cells_leave_runner_memory_and_handles_unchanged(tmp_path: Path) -> None:
    me = psutil.Process()
    warm = RunSettings("w", "m", tmp_path, protocol=FAST, timeout_s=8.0, memory_limit_mb=1024)
    run_plan(_cells("", "raise"), warm)  # warm the runner's own imports and caches
    s = RunSettings("r", "m", tmp_path, protocol=FAST, timeout_s=8.0, memory_limit_mb=1024)
    fds, rss = me.num_fds(), me.memory_info().rss
    counts = run_plan(_cells("kill", "raise", "hang", "oom", "", "kill", "raise", ""), s)
    assert counts == {"crashed": 2, "error": 2, "timeout": 1, "oom": 1, "ok": 2}
    assert me.num_fds() == fds
    assert me.memory_info().rss - rss < 8 * 2**20
    assert me.children(recursive=True) == []  # no worker left behind


def test_runner_killed_mid_sweep_then_resumed_has_one_row_per_cell(tmp_path: Path) -> None:
    res = tmp_path / "results"
    args = [sys.executable, "-m", "cnnbench", "run", "--repeat", "1", "--frameworks", "null", "--workloads",
            "lenet5", "--modes", "infer", "--batch-sizes", "1,2,3,4,5,6", "--budget", "0.6",
            "--adapter-opt", "step_s=0.001", "--results-dir", str(res), "--machine-id", "m",
            "--no-progress"]
    proc = subprocess.Popen([*args, "--run-id", "killed"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_file = res / "m" / "killed.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if run_file.exists() and len(run_file.read_bytes().splitlines()) >= 3:  # probe + 2
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len([r for r in iter_rows(run_file, []) if r["mode"] != "peak"])
    assert 2 <= before < 6
    r = subprocess.run([*args, "--resume", "killed"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{6 - before} cells to run ({before} already recorded)" in r.stdout
    rows = [r for r in iter_rows(run_file, []) if r["mode"] != "peak"]
    assert sorted(row["batch_size"] for row in rows) == [1, 2, 3, 4, 5, 6]
    assert len({row["cell_id"] for row in rows}) == 6
    assert {row["status"] for row in rows} == {"ok"}


def test_resume_last_picks_the_newest_run(tmp_path: Path) -> None:
    res = tmp_path / "results"
    base = [sys.executable, "-m", "cnnbench", "run", "--repeat", "1", "--frameworks", "null", "--workloads",
            "lenet5", "--modes", "infer", "--batch-sizes", "1", "--budget", "0.2",
            "--results-dir", str(res), "--machine-id", "m", "--no-progress"]
    subprocess.run([*base, "--run-id", "one"], cwd=ROOT, check=True, capture_output=True)
    r = subprocess.run([*base, "--resume", "last"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "run one: 0 cells to run (1 already recorded)" in r.stdout


def test_append_after_a_torn_line_keeps_both_readable(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    row = {k: None for k in REQUIRED}
    row.update(schema_version=SCHEMA_VERSION, cell_id="a", status="ok")
    p.write_text(dumps_row(row) + "\n" + dumps_row(row)[:30])  # power cut mid-line
    append_row(p, dict(row, cell_id="b"))
    problems: list[str] = []
    assert [r["cell_id"] for r in iter_rows(p, problems)] == ["a", "b"]
    assert len(problems) == 1 and "corrupt line" in problems[0]


def test_ids_cannot_escape_the_results_folder(tmp_path: Path) -> None:
    for opt in ("--run-id", "--machine-id", "--resume"):
        r = subprocess.run([sys.executable, "-m", "cnnbench", "run", "--frameworks", "null",
                            opt, "../../escape", "--results-dir", str(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True)
        assert r.returncode == 2 and "ids may hold" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_paths_inside_results_are_just_text(tmp_path: Path) -> None:
    res, out = tmp_path / "results", tmp_path / "out"
    row = {k: None for k in REQUIRED}
    row.update(schema_version=SCHEMA_VERSION, run_id="../../../etc/passwd",
               machine_id="../../outside", cell_id="/etc/shadow", framework="null",
               status="error", error="../../x", started_at="2026")
    append_row(res / "m" / "r.jsonl", row)
    (res / "m" / "machine.json").write_text(json.dumps({"machine_id": "../../outside"}))
    write_report([res], out / "index.html")
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "results"]


@pytest.mark.parametrize("n_rows", [100_000])
def test_report_loads_a_hundred_thousand_rows(tmp_path: Path, n_rows: int) -> None:
    res = tmp_path / "results" / "m"
    res.mkdir(parents=True)
    base = {k: None for k in REQUIRED}
    base.update(schema_version=SCHEMA_VERSION, machine_id="m", framework="null",
                framework_version="0", variant="default", device="cpu", n_devices=1,
                mode="infer", precision="fp32", exec_mode="eager", threads=2, status="ok",
                samples_s=[0.01] * 8, images_per_s=100.0, ci95_low=99.0, ci95_high=101.0,
                rel_ci=0.01, flags=[], params=1, flops_per_image=1, budget_s=1.0, build={},
                env={}, options={}, first_step_s=0.1, device_name="cpu")
    with open(res / "big.jsonl", "w") as f:
        for i in range(n_rows):
            row = dict(base, run_id=f"r{i // 1000}", cell_id=f"c{i % 1000}",
                       workload=("lenet5", "resnet20")[i % 2], batch_size=1 + i % 1000,
                       started_at=f"2026-11-22T00:{i // 1000 % 60:02d}:00+00:00")
            f.write(json.dumps(row) + "\n")
    df, problems, _ = load_results([tmp_path / "results"])
    assert len(df) == n_rows and not problems
    html = write_report([tmp_path / "results"], tmp_path / "index.html").read_text()
    # The newest row of each of the 1000 cells: a cut table, and all of them in the download.
    assert "Download all 1,000 rows (cells.csv.gz" in html


def test_worker_exits_when_the_runner_dies(tmp_path: Path) -> None:
    """A hung worker whose runner was SIGKILLed must not live on."""
    res = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnbench", "run", "--repeat", "1", "--frameworks", "null", "--workloads",
         "lenet5", "--modes", "infer", "--batch-sizes", "1", "--adapter-opt", "fault=hang",
         "--results-dir", str(res), "--machine-id", "m", "--no-progress"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runner = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    def cmdline(p: psutil.Process) -> str:
        try:
            return " ".join(p.cmdline())
        except psutil.Error:  # it ended (or is a zombie) between listing and reading
            return ""

    while time.monotonic() < deadline and not workers:
        workers = [c for c in runner.children(recursive=True)
                   if "cnnbench.measure.worker" in cmdline(c)]
        time.sleep(0.1)
    assert workers, "no worker started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "orphaned worker kept running"

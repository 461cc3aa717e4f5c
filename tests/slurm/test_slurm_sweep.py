"""`cnnbench run --launcher slurm` against the real Slurm of conftest.py, with null-adapter
cells: a job-array sweep, a job cancelled mid-cell, a cell past its Slurm time limit, and
``--resume`` after the submitter was killed.

The time-limit sweep runs beside all of these (conftest.py's ``timeout_sweep``, checked by
test_time_limit.py, which runs last).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.slurm.cluster import LocalSlurm
from tests.slurm.conftest import ROOT, cnnbench, cnnbench_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("timeout_sweep")]

# Short cells: the harness, not the figures, is under test.
FAST = ("--frameworks", "null", "--modes", "infer", "--budget", "0.3", "--no-probe",
        "--no-kernel-probe", "--no-progress", "--no-interleave")
HANG = '[[variant]]\nname = "hang"\nframework = "null"\noptions = { fault = "hang" }\n'


def rows(results: Path, run_id: str) -> list[dict[str, Any]]:
    out = []
    for f in sorted(results.glob(f"*/{run_id}.jsonl")):
        out.extend(json.loads(line) for line in f.read_text().splitlines() if line.strip())
    return [r for r in out if r["mode"] != "peak"]


def sweep_state(results: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (results / "slurm" / run_id / "sweep.json").read_text())
    return data


def planned(results: Path, run_id: str) -> set[str]:
    return {c["cell_id"] for c in sweep_state(results, run_id)["cells"]}


def wait_for(what: str, check: Any, timeout_s: float = 120) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen within {timeout_s} s")


def squeue(*args: str) -> list[str]:
    r = subprocess.run(["squeue", "--noheader", *args], capture_output=True, text=True,
                       check=True, timeout=60)
    return r.stdout.split()


def test_job_array_sweep_records_every_cell_once_detached_then_collected(
        cluster: LocalSlurm, tmp_path: Path) -> None:
    r = cnnbench(cluster, "run", "--launcher", "slurm", "--shared-nodes", *FAST,
                 "--modes", "infer,train", "--workloads", "lenet5,cifar10_tutorial",
                 "--repeat", "2", "--cells-per-job", "3", "--results-dir", str(tmp_path),
                 "--run-id", "a1", "--detach")
    assert r.returncode == 0, r.stderr
    assert "submitted as job array" in r.stdout and "--resume a1" in r.stdout
    state = sweep_state(tmp_path, "a1")
    groups = state["submissions"][0]["groups"]
    assert [len(g) for g in groups] == [3, 3, 2]
    r = cnnbench(cluster, "run", "--resume", "a1", "--results-dir", str(tmp_path),
                 "--no-progress")
    assert r.returncode == 0, r.stderr
    got = rows(tmp_path, "a1")
    ids = Counter(row["cell_id"] for row in got)
    assert set(ids) == planned(tmp_path, "a1") and set(ids.values()) == {1}, ids
    assert Counter((row["mode"], row["status"]) for row in got) == {
        ("infer", "ok"): 4, ("train", "ok"): 4}
    # Each task recorded its node's machine (here every node is this host).
    for mid in {row["machine_id"] for row in got}:
        assert json.loads((tmp_path / mid / "machine.json").read_text())["machine_id"] == mid
    assert len(state["submissions"]) == 1, "collecting resubmitted recorded cells"


def test_cancelled_job_records_its_cell_cancelled_and_the_sweep_goes_on(
        cluster: LocalSlurm, tmp_path: Path) -> None:
    (tmp_path / "v.toml").write_text(HANG)
    with open(tmp_path / "out.txt", "w") as log:
        proc = subprocess.Popen(cnnbench_cmd(
            "run", "--launcher", "slurm", "--shared-nodes", *FAST, "--workloads",
            "lenet5,cifar10_tutorial", "--variants", "default,hang", "--variants-file",
            str(tmp_path / "v.toml"), "--repeat", "1", "--cells-per-job", "1",
            "--results-dir", str(tmp_path), "--run-id", "c1"),
            cwd=ROOT, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            hung = [c["cell_id"] for c in wait_for(
                "the submission", lambda: (tmp_path / "slurm/c1/sweep.json").exists()
                and sweep_state(tmp_path, "c1")["cells"])]
            hung = [c for c in hung if c.startswith("null-hang-") and "lenet5" in c]
            task = wait_for("the hanging cell's start", lambda: next(
                (f.stem for f in (tmp_path / "slurm/c1/tasks").glob("*.json")
                 if hung[0] in json.loads(f.read_text())["started"]), None))
            subprocess.run(["scancel", task], check=True, timeout=60)
            # The other hanging cell (CIFAR) too, once it runs: then the sweep can end.
            other = next(c for c in planned(tmp_path, "c1") if c.startswith("null-hang-")
                     and c != hung[0])
            task2 = wait_for("the second hanging cell's start", lambda: next(
                (f.stem for f in (tmp_path / "slurm/c1/tasks").glob("*.json")
                 if other in json.loads(f.read_text())["started"]), None))
            subprocess.run(["scancel", task2], check=True, timeout=60)
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print((tmp_path / "out.txt").read_text())
    got = {row["cell_id"]: row for row in rows(tmp_path, "c1")}
    assert set(got) == planned(tmp_path, "c1")
    for cid, row in got.items():
        if cid.startswith("null-hang-"):
            assert row["status"] == "cancelled", row
            assert "ended CANCELLED" in row["error"] and "while this cell ran" in row["error"]
            assert row["error"].startswith(f"Slurm job {task if cid == hung[0] else task2} ")
        else:
            assert row["status"] == "ok", row
    assert "1 cancelled" not in (tmp_path / "out.txt").read_text()  # both were
    assert "2 cancelled, 2 ok" in (tmp_path / "out.txt").read_text()


def test_resume_after_the_submitter_was_killed_submits_only_what_is_missing(
        cluster: LocalSlurm, tmp_path: Path) -> None:
    # Exclusive jobs (the default): one task per free node, the others wait in the queue.
    with open(tmp_path / "out.txt", "w") as log:
        proc = subprocess.Popen(cnnbench_cmd(
            "run", "--launcher", "slurm", *FAST, "--budget", "1", "--workloads",
            "lenet5,cifar10_tutorial", "--repeat", "3", "--cells-per-job", "1",
            "--adapter-opt", "step_s=0.01", "--results-dir", str(tmp_path),
            "--run-id", "k1"), cwd=ROOT, env=cluster.env, stdout=log,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        wait_for("a task's start", lambda: list((tmp_path / "slurm/k1/tasks").glob("*.json")))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    job = sweep_state(tmp_path, "k1")["submissions"][0]["job"]
    queued = squeue("--array", f"--jobs={job}", "--states=PENDING", "--format=%i")
    assert queued, "every task started at once: nothing left to resume"
    subprocess.run(["scancel", *queued], check=True, timeout=60)
    wait_for("the running tasks' end", lambda: not squeue(
        "--array", f"--jobs={job}", "--format=%i"), timeout_s=120)
    before = {row["cell_id"] for row in rows(tmp_path, "k1")}
    assert before and before != planned(tmp_path, "k1")
    r = cnnbench(cluster, "run", "--launcher", "slurm", "--resume", "k1", "--results-dir",
                 str(tmp_path), "--no-progress")
    assert r.returncode == 0, r.stderr
    state = sweep_state(tmp_path, "k1")
    assert len(state["submissions"]) == 2
    again = {c for g in state["submissions"][1]["groups"] for c in g}
    assert again == planned(tmp_path, "k1") - before
    ids = Counter(row["cell_id"] for row in rows(tmp_path, "k1"))
    assert set(ids) == planned(tmp_path, "k1") and set(ids.values()) == {1}, ids
    assert {row["status"] for row in rows(tmp_path, "k1")} == {"ok"}

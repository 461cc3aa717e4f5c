"""The runner with the null adapter: real worker subprocesses, real faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cnnbench.core.schema import REQUIRED, iter_rows
from cnnbench.measure.timing import Protocol
from cnnbench.plan.envs import worker_env
from cnnbench.plan.expand import expand
from cnnbench.plan.variants import Variant, VariantSet
from cnnbench.sweep.runner import RunSettings, WorkerProcess, pending, run_cell, run_plan

FAST = Protocol(budget_s=0.5, min_round_s=0.01)


def settings(tmp_path: Path, **kw) -> RunSettings:
    base = dict(run_id="run1", machine_id="m1", results_dir=tmp_path, protocol=FAST,
                timeout_s=60.0)
    base.update(kw)
    return RunSettings(**base)


def cell(**options):
    return expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[4],
                  options=options)[0]


def test_ok_cell_has_every_field_and_a_ci(tmp_path: Path) -> None:
    row = run_cell(cell(step_s=0.001), settings(tmp_path))
    assert row["status"] == "ok", row["error"]
    assert set(REQUIRED) <= set(row)
    assert row["ci95_low"] <= row["images_per_s"] <= row["ci95_high"]
    assert len(row["samples_s"]) >= 8
    assert row["params"] == 61_706 == row["model_params"]
    assert row["python"] == sys.executable
    assert row["build"]["framework"] == "null"


def test_a_job_that_starts_during_a_cell_flags_it_busy(tmp_path: Path) -> None:
    """The busy check samples other processes at the start and again at the end: a CPU-bound
    job that starts mid-cell (here a detached busy loop, so it is not the runner's child)
    is named `(at end)` and the row is flagged busy_machine."""
    import threading

    loop = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 4: pass"
    pid_file = tmp_path / "loop.pid"
    starter = threading.Timer(0.8, lambda: subprocess.run(
        ["sh", "-c", f'{sys.executable} -c "{loop}" & echo $! > {pid_file}'],
        start_new_session=True, check=True))
    starter.start()
    try:
        # at least 8 rounds of 0.25 s: the cell outlasts the loop's start whatever the CI
        row = run_cell(cell(step_s=0.001), settings(tmp_path, protocol=Protocol(
            budget_s=3.0, min_round_s=0.25, min_rounds=8)))
    finally:
        starter.join()
    assert row["status"] == "ok", row["error"]
    loop_pid = f"[{pid_file.read_text().strip()}]"
    named = [b for b in row["busy"] if loop_pid in b]
    assert named and all(b.endswith("(at end)") for b in named), row["busy"]
    assert "busy_machine" in row["flags"]


@pytest.mark.parametrize("fault, status, reason", [
    ("kill", "crashed", "SIGKILL"),
    ("raise", "error", "RuntimeError: injected fault"),
    ("unsupported", "unsupported", "injected"),
])
def test_faults_become_statuses(tmp_path: Path, fault: str, status: str, reason: str) -> None:
    row = run_cell(cell(fault=fault), settings(tmp_path))
    assert row["status"] == status
    assert reason in row["error"]


def test_framework_that_fails_to_import_is_unavailable(tmp_path: Path) -> None:
    broken = Variant("broken", "null", {"CNNBENCH_NULL_FAULT": "import"})
    c = expand(["null"], ["lenet5"], modes=["infer"], variants=["broken"])[0]
    row = run_cell(c, settings(tmp_path, variants=VariantSet([broken])))
    assert row["status"] == "unavailable"
    assert "framework not importable" in row["error"] and "nullframework" in row["error"]
    assert row["env"] == {"CNNBENCH_NULL_FAULT": "import"}


def test_hang_past_the_timeout_is_killed(tmp_path: Path) -> None:
    row = run_cell(cell(fault="hang"), settings(tmp_path, timeout_s=2.0))
    assert row["status"] == "timeout"
    assert "2 s cell timeout" in row["error"]
    assert row["wall_s"] < 30


def test_memory_exhaustion_under_a_limit_is_oom(tmp_path: Path) -> None:
    row = run_cell(cell(fault="oom"), settings(tmp_path, memory_limit_mb=1024))
    assert row["status"] == "oom", row["error"]
    assert "MemoryError" in row["error"]


def test_fault_during_timed_steps(tmp_path: Path) -> None:
    row = run_cell(cell(fault="kill", fault_at="step"), settings(tmp_path))
    assert row["status"] == "crashed"


def test_missing_environment_is_unavailable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CNNBENCH_TOX_WORKDIR", str(tmp_path / "no-tox"))
    monkeypatch.delenv("CNNBENCH_PYTHON_PYTORCH", raising=False)
    c = expand(["pytorch"], ["lenet5"], modes=["infer"], batch_sizes=[2])[0]
    row = run_cell(c, settings(tmp_path))
    assert row["status"] == "unavailable"
    assert "tox -e pytorch" in row["error"]


def test_variant_options_reach_the_worker_and_adapter_opt_wins(tmp_path: Path) -> None:
    faulty = Variant("faulty", "null", {}, None, "", {"fault": "raise", "step_s": 0.001})
    s = settings(tmp_path, variants=VariantSet([faulty]))
    c = expand(["null"], ["lenet5"], modes=["infer"], variants=["faulty"])[0]
    row = run_cell(c, s)
    assert row["status"] == "error" and "injected fault" in row["error"]
    assert row["options"] == {"fault": "raise", "step_s": 0.001}
    c = expand(["null"], ["lenet5"], modes=["infer"], variants=["faulty"],
               options={"fault": "unsupported"})[0]
    row = run_cell(c, s)
    assert row["status"] == "unsupported"
    assert row["options"] == {"fault": "unsupported", "step_s": 0.001}


def test_unknown_variant_for_framework_is_unsupported(tmp_path: Path) -> None:
    c = expand(["null"], ["lenet5"], modes=["infer"], variants=["isa-avx2"])[0]
    row = run_cell(c, settings(tmp_path))
    assert row["status"] == "unsupported" and "not defined for null" in row["error"]


def test_sweep_goes_on_after_failures_and_records_each_cell_once(tmp_path: Path) -> None:
    cells = [cell(step_s=0.0005), cell(fault="kill"), cell(fault="hang"), cell(fault="raise"),
             cell(step_s=0.0005, tag=2)]
    s = settings(tmp_path, timeout_s=3.0)
    counts = run_plan(cells, s)
    assert counts == {"ok": 2, "crashed": 1, "timeout": 1, "error": 1}
    problems: list[str] = []
    rows = list(iter_rows(s.run_file, problems))
    probe, rows = rows[0], rows[1:]
    assert probe["mode"] == "peak" and probe["workload"] == "gemm" and probe["status"] == "ok"
    assert [r["status"] for r in rows] == ["ok", "crashed", "timeout", "error", "ok"]
    assert len({r["cell_id"] for r in rows}) == 5 and not problems
    df = pd.read_json(s.run_file, lines=True)
    assert len(df) == 6
    # each cell keeps its log; the raising one holds the traceback
    logs = list(s.log_dir.glob("*.log"))
    assert len(logs) == 6  # five cells and the probe
    assert any("Traceback" in p.read_text() for p in logs)


def test_resume_skips_recorded_cells_and_probes(tmp_path: Path) -> None:
    """The path the CLI takes: run_plan on the whole plan again, with the same run file."""
    cells = [cell(step_s=0.0005, i=i) for i in range(3)]
    s = settings(tmp_path)
    run_plan(cells[:2], s)
    todo = pending(cells, s)
    assert [c.cell_id for c in todo] == [cells[2].cell_id]  # the probe is recorded already
    counts = run_plan(cells, s)
    assert counts == {"ok": 1}
    ids = [r["cell_id"] for r in iter_rows(s.run_file, [])]
    assert len(ids) == len(set(ids)) == 4  # one probe, three cells, none twice
    assert run_plan(cells, s) == {} and len(list(iter_rows(s.run_file, []))) == 4


def test_worker_never_writes_results_to_stdout(tmp_path: Path) -> None:
    """The record goes to --out; stdout (the frameworks' chatter) carries none of it."""
    c = cell(step_s=0.0005)
    payload = {"cell": c.to_dict(), "protocol": FAST.to_dict()}
    (tmp_path / "cell.json").write_text(json.dumps(payload))
    env, _ = worker_env({}, None)
    proc = subprocess.run([sys.executable, "-m", "cnnbench.measure.worker", "--cell", "cell.json",
                           "--out", "record.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["status"] == "ok" and len(rec["samples_s"]) >= 8
    assert "samples_s" not in proc.stdout and "status" not in proc.stdout
    assert proc.stdout.strip() == ""


def _cell_file(kind: str) -> str:
    good = {"cell": cell(step_s=0.0005).to_dict(), "protocol": FAST.to_dict()}
    edits = {"batch 0": {"batch_size": 0}, "colour": {"colour": "red"},
             "tpu": {"device": "tpu:0"}, "threads": {"threads": "4"}}
    if kind in edits:
        return json.dumps({**good, "cell": {**good["cell"], **edits[kind]}})
    return {"not json": "{not json", "list": '["cell"]',
            "fields": '{"cell": {"framework": "null"}, "protocol": {}}',
            "no protocol": json.dumps({"cell": good["cell"]}),
            "protocol": json.dumps({**good, "protocol": {"budget_s": -1}})}[kind]


@pytest.mark.parametrize("kind, needle", [
    ("not json", "cannot read it"),
    ("list", "expected a JSON object with a 'cell'"),
    ("fields", "missing variant"),
    ("batch 0", "batch_size must be an integer >= 1, got 0"),
    ("threads", "threads must be an integer >= 1, got '4'"),
    ("colour", "unknown colour"),
    ("tpu", "bad device 'tpu:0'"),
    ("no protocol", "no 'protocol'"),
    ("protocol", "bad protocol"),
])
def test_a_bad_cell_file_is_one_line_and_a_failed_worker(tmp_path: Path, kind: str,
                                                         needle: str) -> None:
    """The worker reads its cell with Cell.from_dict on arrival: a file that is not a cell
    ends it at once with one line on stderr, exit status 2 and no record."""
    (tmp_path / "cell.json").write_text(_cell_file(kind))
    env, _ = worker_env({}, None)
    proc = subprocess.run([sys.executable, "-m", "cnnbench.measure.worker", "--cell", "cell.json",
                           "--out", "record.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("cnnbench.measure.worker: bad cell file cell.json: ")
    assert needle in lines[0]
    assert not (tmp_path / "record.json").exists()


def test_a_worker_that_cannot_start_is_that_cells_status(tmp_path: Path) -> None:
    """A custom interpreter without execute permission: the cell is unavailable, with the
    reason, and the sweep goes on."""
    python = tmp_path / "python-no-exec"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o644)
    custom = Variant("custom", "null", {}, str(python))
    cells = expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[4],
                   variants=["custom", "default"], options={"step_s": 0.0005})
    s = settings(tmp_path, variants=VariantSet([custom]), probe_peak=False)
    assert run_plan(cells, s) == {"unavailable": 1, "ok": 1}
    rows = {r["variant"]: r for r in iter_rows(s.run_file, [])}
    assert "PermissionError" in rows["custom"]["error"]
    assert str(python) in rows["custom"]["error"]


def test_an_aten_capability_cap_gets_its_own_inductor_cache() -> None:
    _, capped = worker_env({"ATEN_CPU_CAPABILITY": "default"}, 2)
    _, native = worker_env({}, 2)
    assert capped["TORCHINDUCTOR_CACHE_DIR"].endswith("cnnbench-inductor-default")
    assert "TORCHINDUCTOR_CACHE_DIR" not in native
    _, own = worker_env({"ATEN_CPU_CAPABILITY": "avx2", "TORCHINDUCTOR_CACHE_DIR": "/c"}, 2)
    assert own["TORCHINDUCTOR_CACHE_DIR"] == "/c"


def test_verbose_keeps_the_frameworks_logs(tmp_path: Path) -> None:
    row = run_cell(cell(step_s=0.0005), settings(tmp_path, verbose=True))
    assert row["status"] == "ok" and row["env"]["CNNBENCH_VERBOSE"] == "1"
    row = run_cell(cell(step_s=0.0005), settings(tmp_path))
    assert "CNNBENCH_VERBOSE" not in row["env"]


def test_interleaved_workers_warm_up_one_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """No worker starts while another is still warming up; then rounds alternate."""
    events: list[tuple[str, str]] = []
    real_start, real_recv = WorkerProcess.start, WorkerProcess.recv

    def start(self):
        events.append(("start", self.cell.variant))
        return real_start(self)

    def recv(self):
        msg = real_recv(self)
        events.append(("ready" if msg and "ready" in msg else "round", self.cell.variant))
        return msg

    monkeypatch.setattr(WorkerProcess, "start", start)
    monkeypatch.setattr(WorkerProcess, "recv", recv)
    other = Variant("other", "null", {})
    cells = expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[4],
                   variants=["default", "other"], options={"step_s": 0.001})
    s = settings(tmp_path, interleave="all", variants=VariantSet([other]), probe_peak=False)
    assert run_plan(cells, s) == {"ok": 2}
    assert events[:4] == [("start", "default"), ("ready", "default"),
                          ("start", "other"), ("ready", "other")]
    rounds = [v for e, v in events[4:] if e == "round"]
    assert rounds[:4] == ["default", "other", "other", "default"]


def test_cells_differing_in_variant_run_side_by_side_unless_told_otherwise() -> None:
    from cnnbench.sweep.runner import _groups

    cells = [*expand(["null", "pytorch"], ["lenet5"], modes=["infer", "train"],
                     batch_sizes=[4], variants=["default", "x86-64-v2"]),
             *expand(["pytorch"], ["lenet5"], modes=["infer"], batch_sizes=[4],
                     devices=["cpu*2"], variants=["default", "x86-64-v2"])]
    by_variant = _groups(cells, "variants")
    assert sorted(len(g) for g in by_variant) == [1, 1, 2, 2, 2, 2]
    for g in by_variant:
        assert len({(c.framework, c.mode, c.device) for c in g}) == 1
    together = _groups(cells, "all")
    assert sorted(len(g) for g in together) == [1, 1, 4, 4]
    assert all(len(g) == 1 for g in _groups(cells, "none"))
    with pytest.raises(ValueError, match="interleave"):
        _groups(cells, "yes")


def test_interleaved_cells_take_turns_round_by_round(tmp_path: Path) -> None:
    other = Variant("other", "null", {"CNNBENCH_MARK": "1"})
    broken = Variant("broken", "null", {"CNNBENCH_NULL_FAULT": "import"})
    cells = expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[4],
                   variants=["default", "other", "broken"], options={"step_s": 0.001})
    s = settings(tmp_path, interleave="all", variants=VariantSet([other, broken]))
    counts = run_plan(cells, s)
    assert counts == {"ok": 2, "unavailable": 1}
    rows = {r["variant"]: r for r in iter_rows(s.run_file, []) if r["mode"] != "peak"}
    a, b = rows["default"], rows["other"]
    assert a["status"] == b["status"] == "ok"
    assert len(a["samples_s"]) >= 8 and len(b["samples_s"]) >= 8
    assert b["env"] == {"CNNBENCH_MARK": "1"}
    assert "nullframework" in rows["broken"]["error"]


def test_interleaved_group_survives_a_worker_killed_mid_rounds(tmp_path: Path) -> None:
    cells = expand(["null"], ["lenet5"], modes=["infer"], batch_sizes=[4],
                   variants=["default", "other"], options={"step_s": 0.001})
    killer = Variant("other", "null", {})
    s = settings(tmp_path, interleave="all", variants=VariantSet([killer]), timeout_s=10.0)
    from cnnbench.sweep.runner import WorkerProcess, run_interleaved

    # kill the second worker right after both are ready, from outside
    real_recv = WorkerProcess.recv
    state = {"n": 0}

    def recv(self):
        msg = real_recv(self)
        if msg and "t" in msg and self.cell.variant == "other":
            state["n"] += 1
            if state["n"] == 3:
                os.killpg(self.proc.pid, 9)
        return msg

    WorkerProcess.recv = recv  # type: ignore[method-assign]
    try:
        rows = run_interleaved(cells, s)
    finally:
        WorkerProcess.recv = real_recv  # type: ignore[method-assign]
    assert rows[0]["status"] == "ok" and len(rows[0]["samples_s"]) >= 8
    assert rows[1]["status"] == "crashed" and "SIGKILL" in rows[1]["error"]


TWO_WORKERS = ["10.0.0.1:2222", "10.0.0.2:2222"]


def _tf_config(cluster: dict | None = None, task: dict | None = None) -> str:
    conf: dict = {"cluster": {"worker": TWO_WORKERS} if cluster is None else cluster}
    if task is not None:
        conf["task"] = task
    return json.dumps(conf)


def test_a_tensorflow_cell_under_tf_config_has_one_replica_per_worker(monkeypatch) -> None:
    from dataclasses import replace

    from cnnbench.core.cells import Cell
    from cnnbench.measure.worker import _refusal, _replicas

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    tf_cell = Cell("tensorflow", "default", "cpu", "lenet5", "train", 8, "fp32", "graph")
    assert _replicas(tf_cell) == 1
    monkeypatch.setenv("TF_CONFIG", _tf_config(task={"type": "worker", "index": 1}))
    assert _replicas(tf_cell) == 2
    assert _refusal(tf_cell) is None
    assert "does not split evenly over 2" in (_refusal(replace(tf_cell, batch_size=7)) or "")
    assert _replicas(replace(tf_cell, framework="jax")) == 1  # TF_CONFIG is TensorFlow's alone
    # A TF_CONFIG the adapter refuses counts one replica here; the adapter says why.
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert _replicas(tf_cell) == 1


@pytest.mark.parametrize("config, answer", [
    ("", None),
    (_tf_config(task={"type": "worker", "index": 1}), (1, 2)),
    (_tf_config({"worker": TWO_WORKERS[:1]}, {"type": "worker", "index": 0}), None),
])
def test_tf_workers_reads_index_and_count_from_tf_config(monkeypatch, config, answer) -> None:
    from adapters.base import tf_workers

    monkeypatch.setenv("TF_CONFIG", config)
    assert tf_workers() == answer


@pytest.mark.parametrize("config, reason", [
    ("{not json", "not JSON"),
    ('["worker"]', "no 'cluster'"),
    (_tf_config({"worker": TWO_WORKERS, "chief": ["10.0.0.3:2222"]},
                {"type": "worker", "index": 0}), "has chief tasks"),
    (_tf_config({"worker": []}, {"type": "worker", "index": 0}), "lists no workers"),
    (_tf_config(), "no 'task'"),
    (_tf_config(task={"type": "evaluator", "index": 0}), "task type is 'evaluator'"),
    (_tf_config(task={"type": "worker", "index": 2}), "index 2 is not one of its 2"),
    (_tf_config(task={"type": "worker", "index": True}), "index True"),
    (_tf_config(task={"type": "worker"}), "index None"),
])
def test_tf_config_cnnbench_does_not_run_is_refused(monkeypatch, config, reason) -> None:
    from adapters.base import Unsupported, tf_workers

    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(Unsupported, match=reason):
        tf_workers()

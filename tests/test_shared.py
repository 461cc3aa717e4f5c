"""Several candidates in one worker process (the tuner's rungs): real workers, null adapter.

A crash or a hang ends only the candidate that was running; a new process takes the rest,
and every candidate is a row of its own that says which slot of a shared process it was.
"""

from __future__ import annotations

from pathlib import Path

from cnnbench.core.cells import Cell
from cnnbench.measure.timing import Protocol
from cnnbench.sweep.runner import RunSettings
from cnnbench.sweep.shared import launch_key, run_shared


def _cell(**options: object) -> Cell:
    return Cell("null", "default", "cpu", "lenet5", "infer", 4, "fp32", "eager",
                options=dict(options))


def test_one_process_runs_many_and_a_crash_or_hang_ends_only_its_candidate(tmp_path: Path) -> None:
    s = RunSettings("r", "m", tmp_path, protocol=Protocol(budget_s=0.2, min_round_s=0.01),
                    timeout_s=6, check_noise=False, kernel_probe=False, probe_peak=False)
    cells = [_cell(step_s=0.001), _cell(step_s=0.002), _cell(fault="kill"),
             _cell(step_s=0.003), _cell(fault="hang"), _cell(step_s=0.004)]
    seen: list[str] = []
    rows = run_shared(cells, s, on_row=lambda c, r: seen.append(c.cell_id))
    assert seen == [c.cell_id for c in cells], "each row as its candidate finishes, in order"
    assert [r["status"] for r in rows] == ["ok", "ok", "crashed", "ok", "timeout", "ok"]
    # Slots: 0 and 1 shared the first process, which the kill ended at slot 2; the next
    # process ran slot 0 and hung at slot 1; a third ran the last candidate.
    assert [r["process_slot"] for r in rows] == [0, 1, 2, 0, 1, 0]
    assert "SIGKILL" in rows[2]["error"] or "code" in rows[2]["error"]
    assert "timeout" in rows[4]["error"] and "slot 1" in rows[4]["error"]
    for r, c in zip(rows, cells, strict=True):
        assert r["cell_id"] == c.cell_id and r["options"] == c.options and r["wall_s"] > 0
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["samples_s"] and r["peak_rss_mb"] is None for r in ok), "no memory read"
    # The planted step times come back: the candidates did not leak into each other.
    steps = [r["median_step_s"] for r in ok]
    assert steps == sorted(steps) and steps[-1] / steps[0] > 2.5


def test_cells_that_differ_in_threads_or_variant_get_their_own_process() -> None:
    a, b = _cell(), _cell(step_s=0.1)
    assert launch_key(a) == launch_key(b)
    c = Cell("null", "default", "cpu", "lenet5", "infer", 4, "fp32", "eager", threads=1)
    assert launch_key(c) != launch_key(a)

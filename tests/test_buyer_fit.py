"""Issue 24: the largest-batch search (null adapter, real workers), the knee, the p99
comparison and the report's sections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cnnbench.analyse.buyer import compare_tail, fit_curves, knee
from cnnbench.core.cells import Cell
from cnnbench.core.schema import iter_rows
from cnnbench.measure.timing import Protocol
from cnnbench.sweep.fit import find_largest_batch, recorded_tries
from cnnbench.sweep.runner import RunSettings


def test_knee_is_the_smallest_batch_within_5_percent_of_the_best() -> None:
    assert knee([1, 2, 4, 8, 16], [10, 50, 96, 100, 99]) == 4
    assert knee([1, 2], [float("nan"), float("nan")]) is None


def test_search_doubles_then_bisects_and_records_oom_tries(tmp_path: Path) -> None:
    # The null adapter holds 60 MB per image of batch: batch b needs ~b * 60 MB, so under
    # a 300 MB resident limit (over a ~35 MB process) batch 4 fits and 5 does not.
    s = RunSettings("run1", "m1", tmp_path, protocol=Protocol(budget_s=0.3, min_round_s=0.01),
                    check_noise=False, kernel_probe=False, probe_peak=False)
    cell = Cell("null", "default", "cpu", "lenet5", "infer", 1, "fp32", "eager",
                options={"hold_mb_per_image": 60})
    fit = find_largest_batch(cell, s, 300, kind="resident", max_batch=64)
    assert fit.largest == 4 and fit.first_failed == 5, fit
    assert list(fit.tries) == [1, 2, 4, 8, 6, 5]
    rows = list(iter_rows(s.run_file, []))
    assert all(r["fit_try"] for r in rows) and {r["status"] for r in rows} == {"ok", "oom"}
    curves = fit_curves(pd.DataFrame(rows))
    assert curves.loc[curves["largest"], "batch_size"].tolist() == [4]

    # --resume after a kill during the bisection: the tries already recorded are not run
    # again (no new row, no try reported), the missing ones are, and the answer is the same.
    lines = s.run_file.read_text().splitlines(keepends=True)
    s.run_file.write_text("".join(lines[:4]))  # batches 1, 2, 4 and 8 were recorded
    ran: list[int] = []
    again = find_largest_batch(cell, s, 300, kind="resident", max_batch=64,
                               on_row=lambda c, r: ran.append(c.batch_size),
                               recorded=recorded_tries(s))
    assert ran == [6, 5] and (again.largest, again.first_failed) == (4, 5), (ran, again)
    assert len(s.run_file.read_text().splitlines()) == 6


def test_p99_comparison_sees_a_longer_tail() -> None:
    rng = np.random.default_rng(0)
    body = rng.normal(10e-3, 0.2e-3, 2000)
    longer = body.copy()
    longer[rng.choice(2000, 60, replace=False)] = 30e-3  # 3% of steps stall
    key = ("cell",)
    t = compare_tail({key: [body]}, {key: [longer]}, ["name"])
    assert t.loc[0, "verdict"] == "slower" and t.loc[0, "ratio"] < 0.5
    same = compare_tail({key: [body]}, {key: [body]}, ["name"])
    assert same.loc[0, "verdict"] == "no clear difference"

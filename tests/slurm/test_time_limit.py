"""A cell past its Slurm time limit becomes ``timeout`` (the sweep is conftest.py's
``timeout_sweep``, started with the session's first Slurm test; this file runs last)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.slurm.test_slurm_sweep import rows

pytestmark = pytest.mark.slurm


def test_cell_past_its_time_limit_becomes_timeout(timeout_sweep: Any) -> None:
    proc, d = timeout_sweep
    assert proc.wait(timeout=240) == 0, (d / "out.txt").read_text()
    (row,) = rows(d, "t1")
    assert row["status"] == "timeout", row
    assert "ended TIMEOUT (TimeLimit)" in row["error"], row["error"]

"""The report stays small past a few hundred cells (issue 11, "The report scales").

20,000 distinct cells (one measured null row copied, workload and batch size varied; see
tests/manycells.py): the HTML must stay under 5 MB and list no row per cell beyond a cap,
because the report summarises large sets and keeps the full table in a compressed,
downloadable form. The 100,000-cell benchmark with its time and memory is tests/perf.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from cnnbench.report.render import write_report
from tests.manycells import ROOT, measured_row, write_many

CELLS = 20_000
MAX_HTML_BYTES = 5_000_000
# Table rows in the whole page: the summaries of 20,000 cells need a few hundred; one row per
# cell would be 20,000.
MAX_TABLE_ROWS = 2_000
# Memory that reading one row of 80 rounds may take at its peak (rows, columns and the chunk
# being turned into columns): the list-of-dicts reader of 5b09e7d took 8.5 KB, this one 3.7.
MAX_READ_BYTES_PER_ROW = 6_000

def test_twenty_thousand_cells_make_a_small_page(tmp_path: Path) -> None:
    row, machine = measured_row(tmp_path)
    write_many(tmp_path / "results", row, machine, CELLS)
    html = write_report([tmp_path / "results"], tmp_path / "index.html").read_bytes()
    rows = len(re.findall(rb"<tr[\s>]", html))
    assert len(html) < MAX_HTML_BYTES, f"{len(html) / 1e6:.1f} MB of HTML for {CELLS} cells"
    assert rows <= MAX_TABLE_ROWS, f"{rows} table rows for {CELLS} cells"


def test_the_copies_are_distinct_cells_with_their_samples(tmp_path: Path) -> None:
    from cnnbench.analyse.compare import cells_table
    from cnnbench.core.results import load_results

    row, machine = measured_row(tmp_path, budget=0.2)
    write_many(tmp_path / "results", row, machine, 600)
    df, problems, machines = load_results([tmp_path / "results"])
    assert problems == [] and list(machines) == ["scale-box"]
    assert len(df) == 600 and df["cell_id"].is_unique and len(cells_table(df)) == 600
    assert df["workload"].nunique() == 6 and df["batch_size"].nunique() == 100
    assert (df["samples_s"].map(len) == len(row["samples_s"])).all()
    # each copy's statistics follow from its own samples
    med = df["samples_s"].map(lambda s: sorted(s)[len(s) // 2] if len(s) % 2
                              else sum(sorted(s)[len(s) // 2 - 1: len(s) // 2 + 1]) / 2)
    assert ((df["median_step_s"] - med).abs() <= 1e-9 * med).all()
    assert ((df["images_per_s"] * df["median_step_s"] - df["batch_size"]).abs()
            <= 1e-6 * df["batch_size"]).all()


def test_rows_are_read_into_columns_of_arrays_and_shared_values(tmp_path: Path) -> None:
    """samples_s become float arrays (read-only: every reader shares them), and a text field
    repeated over the rows is one string object, not one per row."""
    from cnnbench.core.results import load_results

    row, machine = measured_row(tmp_path, budget=0.2)
    write_many(tmp_path / "results", row, machine, 300, rounds=40)
    df, problems, _ = load_results([tmp_path / "results"])
    assert problems == [] and len(df) == 300
    for a in df["samples_s"]:
        assert isinstance(a, np.ndarray) and a.dtype == np.float64 and not a.flags.writeable
    assert (df["samples_s"].map(len) == 40 // len(row["samples_s"]) * len(row["samples_s"])).all()
    for col in ("machine_id", "framework", "mode", "status", "device"):
        assert len({id(v) for v in df[col].tolist()}) == 1, col
    assert len({id(v) for v in df["options"].tolist()}) == 1


def test_reading_twenty_thousand_rows_stays_small(tmp_path: Path) -> None:
    """Peak memory of load_results over 20,000 rows of 80 rounds (a subprocess's maximum
    resident set, after its imports): the 100,000-cell benchmark's memory in small."""
    row, machine = measured_row(tmp_path, budget=0.2)
    write_many(tmp_path / "results", row, machine, CELLS, rounds=80)
    code = ("import resource, sys; from pathlib import Path; "
            "from cnnbench.core.results import load_results; "
            "r = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; before = r(); "
            "df, _, _ = load_results([Path(sys.argv[1])]); assert len(df) == int(sys.argv[2]); "
            "print((r() - before) * 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "results"), str(CELLS)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    per_row = int(out.stdout) / CELLS
    assert per_row < MAX_READ_BYTES_PER_ROW, f"{per_row:,.0f} bytes per row read"

"""The report stays small past a few hundred cells (issue 11, "The report scales").

20,000 distinct cells (one measured null row copied, workload and batch size varied; see
tests/manycells.py): the HTML must stay under 5 MB and list no row per cell beyond a cap,
because the report summarises large sets and keeps the full table in a compressed,
downloadable form. The 100,000-cell benchmark with its time and memory is tests/perf.
"""

from __future__ import annotations

import re
from pathlib import Path

from cnnbench.report.render import write_report
from tests.manycells import measured_row, write_many

CELLS = 20_000
MAX_HTML_BYTES = 5_000_000
# Table rows in the whole page: the summaries of 20,000 cells need a few hundred; one row per
# cell would be 20,000.
MAX_TABLE_ROWS = 2_000

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

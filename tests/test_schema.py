from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cnnbench.schema import REQUIRED, SCHEMA_VERSION, SchemaError, append_row, dumps_row, iter_rows


def make_row(**kw):
    row = {k: None for k in REQUIRED}
    row.update(schema_version=SCHEMA_VERSION, run_id="r1", machine_id="m", cell_id="c",
               framework="null", status="ok", samples_s=[0.1, 0.2], flags=[], build={}, env={},
               options={}, images_per_s=float("nan"))
    row.update(kw)
    return row


def test_round_trip_and_pandas(tmp_path: Path) -> None:
    p = tmp_path / "m" / "r1.jsonl"
    append_row(p, make_row(cell_id="a"))
    append_row(p, make_row(cell_id="b", status="timeout", error="slow"))
    problems: list[str] = []
    rows = list(iter_rows(p, problems))
    assert [r["cell_id"] for r in rows] == ["a", "b"] and not problems
    assert rows[0]["images_per_s"] is None  # NaN is stored as null
    df = pd.read_json(p, lines=True)
    assert list(df["status"]) == ["ok", "timeout"]
    assert set(REQUIRED) <= set(df.columns)


def test_damaged_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    good = dumps_row(make_row(cell_id="a"))
    p.write_text(good + "\n{not json\n" + good.replace('"a"', '"b"') + "\n" + good[:40])
    problems: list[str] = []
    rows = list(iter_rows(p, problems))
    assert [r["cell_id"] for r in rows] == ["a", "b"]
    assert len(problems) == 2
    assert "corrupt line" in problems[0] and ":2:" in problems[0]
    assert "truncated last line" in problems[1]


def test_newer_schema_is_refused_older_is_filled(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    newer = make_row(schema_version=SCHEMA_VERSION + 1)
    older = {"schema_version": 1, "cell_id": "x", "status": "ok"}
    p.write_text(json.dumps(newer) + "\n" + json.dumps(older) + "\n")
    problems: list[str] = []
    rows = list(iter_rows(p, problems))
    assert len(rows) == 1 and rows[0]["flags"] is None
    assert "newer than this cnnbench" in problems[0]


def test_bad_rows_are_not_written() -> None:
    with pytest.raises(SchemaError):
        dumps_row({"status": "ok"})
    with pytest.raises(SchemaError):
        dumps_row(make_row(status="great"))

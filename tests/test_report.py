"""The report is self-contained and escapes every string taken from results."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cnnbench.core.schema import FIELDS, REQUIRED, SCHEMA_VERSION, append_row
from cnnbench.report.render import write_report
from cnnbench.report.sections.registry import section_ids

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def row(**kw):
    r = {k: None for k in REQUIRED}
    r.update(schema_version=SCHEMA_VERSION, run_id="r1", machine_id="m1", cell_id="c1",
             framework="null", framework_version="0", variant="default", device="cpu",
             device_name="cpu", n_devices=1, workload="lenet5", mode="infer", batch_size=8,
             precision="fp32", exec_mode="eager", threads=2, status="ok", error=None,
             samples_s=[0.01] * 8, steps_per_round=1, median_step_s=0.01, images_per_s=800.0,
             ci95_low=780.0, ci95_high=820.0, rel_ci=0.025, ci_target_met=True,
             first_step_s=0.02, flags=[], params=61706, flops_per_image=1, budget_s=1.0,
             started_at="2026-11-22T00:00:00+00:00", wall_s=1.0, build={}, env={}, options={})
    r.update(kw)
    return r


def test_report_has_table_and_embedded_chart(tmp_path: Path) -> None:
    res = tmp_path / "results"
    append_row(res / "m1" / "r1.jsonl", row())
    append_row(res / "m1" / "r1.jsonl", row(cell_id="c2", mode="train", images_per_s=300.0,
                                            ci95_low=290.0, ci95_high=310.0))
    append_row(res / "m1" / "r1.jsonl", row(cell_id="c3", status="timeout", error="too slow",
                                            images_per_s=None))
    out = write_report([res], tmp_path / "rep" / "index.html")
    html = out.read_text()
    assert ">800<" in html and "[780, 820]" in html
    assert "data:image/png;base64," in html
    assert "too slow" in html and "timeout" in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # nothing external
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.html"]


def test_cells_that_differ_only_in_adapter_options_stay_apart(tmp_path: Path) -> None:
    from cnnbench.analyse.compare import cells_table
    from cnnbench.core.results import load_results

    res = tmp_path / "results"
    append_row(res / "m1" / "r1.jsonl", row(options={"memory_format": "contiguous"}))
    append_row(res / "m1" / "r1.jsonl", row(cell_id="c2", images_per_s=1600.0, ci95_low=1500.0,
                                            ci95_high=1700.0,
                                            options={"memory_format": "channels_last"}))
    df, _, _ = load_results([res])
    last = cells_table(df)
    assert len(last) == 2 and last["runs"].tolist() == [1, 1]
    assert sorted(last["images_per_s"]) == [800.0, 1600.0]


def test_hostile_strings_render_as_text(tmp_path: Path) -> None:
    res = tmp_path / "results"
    # every field the schema types as a string (status must stay a valid one to be shown)
    fields = {f.name: EVIL for f in FIELDS if f.type.startswith("str") and f.name != "status"}
    append_row(res / "m1" / "r1.jsonl", row(**dict(fields, error=None), flags=[EVIL],
                                            busy=[EVIL]))
    append_row(res / "m1" / "r1.jsonl", row(**dict(fields, cell_id="c9", status="error")))
    (res / "m1" / "machine.json").write_text(json.dumps(
        {"machine_id": EVIL, "cpu": {"model": EVIL, "isa": [EVIL]}, "os": EVIL, "gpus": []}))
    html = write_report([res], tmp_path / "index.html").read_text()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert" in html


def test_damaged_results_are_reported_not_fatal(tmp_path: Path) -> None:
    res = tmp_path / "results"
    append_row(res / "m1" / "r1.jsonl", row())
    with open(res / "m1" / "r1.jsonl", "a") as f:
        f.write('{"schema_version": 1, "cell_')
    html = write_report([res], tmp_path / "index.html").read_text()
    assert "truncated last line" in html and ">800<" in html


def test_empty_results_folder(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    html = write_report([tmp_path / "results"], tmp_path / "index.html").read_text()
    assert "No successful cells" in html
    for sid in section_ids():  # every section is there, saying it has no data
        assert f'<section id="{sid}">' in html


def test_price_performance_table(tmp_path: Path) -> None:
    from cnnbench.core.prices import parse_prices

    res = tmp_path / "results"
    append_row(res / "m1" / "r1.jsonl", row())
    prices = parse_prices("[[machine]]\nmatch = 'm*'\nprice_usd = 2000\nhourly_usd = 0.5\n"
                          "watts = 400\nlabel = 'box'\n")
    html = write_report([res], tmp_path / "index.html", prices).read_text()
    # Priced by the lower 95% bound, 780 images/s: per $1k of 2000, per rented $0.5 hour,
    # per kWh at 400 W.
    assert ">390<" in html
    assert ">5,616,000<" in html
    assert ">7,020,000<" in html

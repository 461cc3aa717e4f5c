"""The report's sections, from planted rows: what each says, with intervals, and that every
section is there (or says in one line that it has no data) for results of two machines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_report import EVIL, row

from cnnbench.core.schema import append_row
from cnnbench.report.render import write_report
from cnnbench.report.sections.registry import section_ids

RNG = np.random.default_rng(7)
BASE = list(0.01 * np.exp(RNG.normal(0, 0.02, 30)))


def cell(path: Path, n: int, factor: float = 1.0, runs: int = 1, **kw) -> None:
    """Append ``runs`` rows of one cell whose step times are BASE x factor (x a little
    between-run noise when there are several)."""
    for r in range(runs):
        jitter = 1.0 + (0.01 * (r - (runs - 1) / 2) if runs > 1 else 0.0)
        s = [t * factor * jitter for t in BASE]
        med = float(np.median(s))
        b = kw.get("batch_size", 8)
        append_row(path, row(**{"cell_id": f"c{n}", "repeat": r, "samples_s": s,
                                "median_step_s": med, "images_per_s": b / med,
                                "ci95_low": 0.98 * b / med, "ci95_high": 1.02 * b / med,
                                "run_id": f"run{r}", **kw}))


def sections(html: str) -> dict[str, str]:
    parts = re.findall(r'<section id="([^"]+)">(.*?)</section>', html, flags=re.S)
    return dict(parts)


def test_identical_samples_read_no_clear_difference_and_double_reads_2x(tmp_path: Path) -> None:
    res = tmp_path / "results" / "m1" / "r.jsonl"
    cell(res, 1, framework="pytorch", exec_mode="eager")
    cell(res, 2, framework="tensorflow", exec_mode="graph")  # identical samples
    cell(res, 3, framework="pytorch", exec_mode="eager", mode="train")
    cell(res, 4, framework="tensorflow", exec_mode="graph", mode="train", factor=0.5)  # 2x
    html = write_report([tmp_path / "results"], tmp_path / "index.html").read_text()
    s = sections(html)
    findings = [re.sub(r"<[^>]+>", "", li) for li in s["summary"].split("</li>")]
    infer = next(line for line in findings if "lenet5 inference" in line)
    assert "not distinguishable" in infer and "no clear difference (1.00×" in infer
    train = next(line for line in findings if "lenet5 training" in line)
    m = re.search(r"TensorFlow graph is fastest, [\d,]+ img/s \[[\d,]+, [\d,]+\], "
                  r"(\d\.\d+)× \[(\d\.\d+), (\d\.\d+)\] PyTorch", train)
    assert m, train
    ratio, lo, hi = map(float, m.groups())
    assert ratio == pytest.approx(2.0, abs=0.01) and 1.0 < lo < ratio < hi
    # The same pair in the speedup section's ranking against the fastest framework.
    assert "0.50× [" in s["speedup"] and "no clear difference (1.00×" in s["speedup"]


def two_machines(tmp_path: Path, evil: bool = False) -> Path:
    """Results of two machines with something for every section: frameworks, execution
    modes, a bf16 cell, a variant, two thread counts, repeats, a failed cell."""
    res = tmp_path / "results"
    e = EVIL if evil else ""
    n = 0
    for mid, speed in (("box-a", 1.0), ("box-b", 0.8)):
        f = res / mid / "r.jsonl"
        for mode in ("infer", "train"):
            for fw, ex, factor in (("pytorch", "eager", 1.0), ("pytorch", "compiled", 0.8),
                                   ("tensorflow", "graph", 0.9), ("tensorflow", "eager", 1.4)):
                for threads in (1, 2):
                    n += 1
                    cell(f, n, factor * speed * (1.0 if threads == 2 else 1.8), runs=2,
                         machine_id=mid, framework=fw, exec_mode=ex, mode=mode,
                         threads=threads, options={"note": e} if e else {})
            n += 1
            cell(f, n, 0.7 * speed, machine_id=mid, framework="pytorch", exec_mode="eager",
                 mode=mode, threads=2, precision="bf16", options={"note": e} if e else {})
            n += 1
            cell(f, n, 1.3 * speed, machine_id=mid, framework="tensorflow", exec_mode="graph",
                 mode=mode, threads=2, variant="x86-64-v2" + e, options={"note": e} if e else {},
                 variant_kind="isa", isa_level="x86-64-v2")
            n += 1  # a ladder level above these CPUs: on the ladder chart's axis, not run
            append_row(f, row(cell_id=f"v4-{n}", machine_id=mid, framework="tensorflow",
                              exec_mode="graph", mode=mode, threads=2, variant="x86-64-v4",
                              variant_kind="isa", isa_level="x86-64-v4", status="unsupported",
                              error="x86-64-v4 needs avx512f", images_per_s=None,
                              samples_s=[]))
        n += 1
        append_row(f, row(cell_id=f"fail{n}", machine_id=mid, status="error",
                          error="injected" + e, images_per_s=None, framework="pytorch"))
        (res / mid / "machine.json").write_text(json.dumps(
            {"machine_id": mid, "cpu": {"model": f"CPU {e}", "logical_cores": 2,
                                        "isa": ["avx2"]}, "gpus": [], "os": "linux"}))
    return res


def test_two_machines_fill_every_section_or_say_no_data(tmp_path: Path) -> None:
    res = two_machines(tmp_path)
    prices = tmp_path / "prices.toml"
    prices.write_text("[[machine]]\nmatch = 'box-*'\nprice_usd = 2000\nhourly_usd = 0.5\n"
                      "watts = 150\n")
    out = tmp_path / "index.html"
    r = subprocess.run([sys.executable, "-m", "cnnbench", "report", str(res), "-o", str(out),
                        "--prices", str(prices), "--reference-machine", "box-a",
                        "--job", "lenet5:10:60000"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = sections(out.read_text())
    assert list(s) == list(section_ids())
    for sid, body in s.items():
        has_data = "<table" in body or "<img" in body or "<li>" in body
        one_line = re.findall(r'<p class="empty">([^<]+)</p>', body)
        assert has_data or len(one_line) == 1, sid
    # Sections with data here, each with its own figures:
    assert "box-b CPU" in s["machines"] and "geomean vs reference" in s["machines"]
    assert "<img" in s["threads"] and "efficiency" in s["threads"]
    assert "compiled" in s["modes"] and "bf16" in s["modes"]
    assert "x86-64-v2" in s["builds"] and "unsupported: x86-64-v4 needs avx512f" in s["builds"]
    assert s["builds"].count("throughput against the ISA ladder") == 2  # one chart a machine
    assert "images per kWh" in s["buyers"] and "hours (estimate)" in s["buyers"]
    assert "by status: unsupported 4, error 2." in s["not-run"] and "injected" in s["not-run"]
    assert 'class="empty"' in s["scaling"]  # no multi-device cells: one line
    # Repeats are runs: the comparisons use the between-run test.
    assert "one run" not in re.sub(r"<[^>]+>", "", s["summary"]).split("configurations")[0]


def test_hostile_strings_are_text_in_every_section(tmp_path: Path) -> None:
    res = two_machines(tmp_path, evil=True)
    html = write_report([res], tmp_path / "index.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    s = sections(html)
    for sid in ("throughput", "builds", "machines", "method", "not-run"):
        assert "&lt;script&gt;" in s[sid], sid


@pytest.mark.parametrize("args, needle", [
    (["--baseline", "colour=red"], "'colour' is not a cell field"),
    (["--baseline", "framework"], "expected FIELD=VALUE"),
    (["--job", "resnet50:x:3"], "--job: expected WORKLOAD:EPOCHS:IMAGES"),
    (["--reference-machine", "nope"], "--reference-machine 'nope' has no results"),
])
def test_bad_report_options_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    res = two_machines(tmp_path)
    r = subprocess.run([sys.executable, "-m", "cnnbench", "report", str(res), "-o",
                        str(tmp_path / "x.html"), *args], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert not (tmp_path / "x.html").exists()


def test_a_chosen_baseline(tmp_path: Path) -> None:
    res = two_machines(tmp_path)
    html = write_report([res], tmp_path / "i.html",
                        baseline={"framework": "tensorflow", "exec_mode": "graph"}).read_text()
    s = sections(html)["speedup"]
    assert "Against the baseline framework=tensorflow, exec_mode=graph" in s
    # PyTorch compiled runs at 0.8 of the step time of eager's 1.0 and TF graph's 0.9.
    m = re.search(r"PyTorch[^<]*compiled[^<]*</td>\s*<td[^>]*>TensorFlow[^<]*graph[^<]*</td>"
                  r"\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>([^<]*)</td>", s)
    assert m and m.group(1).startswith("1.12× ["), s


@pytest.fixture
def planted_section():
    """Registers "zz-test" (order 125: between Cells that did not run and Problems) for one
    test, and takes it out of the registry again."""
    from cnnbench.report.htmlkit import Section
    from cnnbench.report.sections import registry
    from cnnbench.report.sections.base import Inputs

    @registry.section("zz-test", "Planted", order=125)
    def planted(inp: Inputs, sec: Section) -> None:
        sec.add(f"Planted text over {len(inp.cells)} cells.")

    yield planted
    registry._REGISTRY.pop("zz-test", None)


def test_a_registered_section_is_rendered_in_its_order(tmp_path: Path, planted_section) -> None:
    res = tmp_path / "results" / "m1" / "r.jsonl"
    cell(res, 1, framework="pytorch", exec_mode="eager")
    html = write_report([tmp_path / "results"], tmp_path / "index.html").read_text()
    ids = list(sections(html))
    assert ids[-3:] == ["not-run", "zz-test", "problems"], ids
    assert '<section id="zz-test">' in html and "<h2>Planted</h2>" in html
    assert "Planted text over 1 cells." in sections(html)["zz-test"]
    assert "zz-test" in section_ids()


def test_two_sections_with_one_id_are_refused(planted_section) -> None:
    from cnnbench.report.sections.registry import section

    def other(inp, sec) -> None:
        pass

    with pytest.raises(ValueError, match="two report sections with the id 'zz-test'"):
        section("zz-test", "Another", order=1)(other)
    with pytest.raises(ValueError, match="'summary'"):
        section("summary", "Summary again", order=10)(other)
    section("zz-test", "Planted", order=125)(planted_section)  # the same one again: fine

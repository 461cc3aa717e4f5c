"""What a report reads, and what it compares: each run of a cell counted once, reference
bundles only when asked for (and marked), simulated device sets kept out of the hardware
answers, and the same interval in the report as in ``cnnbench compare``."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_report import row
from test_report_sections import cell, sections

from cnnbench.analyse.compare import cells_table
from cnnbench.cli import main
from cnnbench.core.prices import load_prices
from cnnbench.core.results import load_results
from cnnbench.core.schema import append_row
from cnnbench.report.render import write_report
from cnnbench.report.sections.base import Job

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "results" / "reference" / "vm-793cd1"


def text(body: str) -> str:
    """A section's words and table cells, without charts or markup."""
    body = re.sub(r"<img[^>]*>", "", body)
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()


def section_texts(path: Path) -> dict[str, str]:
    return {sid: text(body) for sid, body in sections(path.read_text()).items()}


def machine_json(folder: Path, mid: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "machine.json").write_text(json.dumps(
        {"machine_id": mid, "cpu": {"model": "CPU", "logical_cores": 2, "isa": ["avx2"]},
         "gpus": [], "os": "linux"}))


# ------------------------------------------------------------------- 1 each run once


def test_the_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    f = tmp_path / "results" / "m1" / "r.jsonl"
    cell(f, 1, runs=3)
    paths = [tmp_path / "results", tmp_path / "results" / "m1", f]
    df, problems, _ = load_results(paths)
    assert len(df) == 3
    t = cells_table(df)
    assert t["runs"].tolist() == [3]
    assert sum("read once" in p for p in problems) == 1, problems


def test_a_copied_run_file_counts_its_rows_once(tmp_path: Path) -> None:
    f = tmp_path / "results" / "m1" / "r.jsonl"
    cell(f, 1, runs=3)
    copy = tmp_path / "elsewhere" / "copy.jsonl"
    copy.parent.mkdir()
    shutil.copy(f, copy)
    one, _, _ = load_results([f])
    both, problems, _ = load_results([f, copy])
    assert len(both) == 3
    a, b = cells_table(one), cells_table(both)
    assert b["runs"].tolist() == [3]
    assert (a[["ips", "low", "high"]].to_numpy() == b[["ips", "low", "high"]].to_numpy()).all()
    assert [p for p in problems if "3 rows" in p and "counted once" in p], problems


def test_the_same_run_id_on_two_machines_is_two_runs(tmp_path: Path) -> None:
    """``--run-id nightly`` on two machines gives the same run and cell ids: both count."""
    res = tmp_path / "results"
    for mid in ("box-a", "box-b"):
        cell(res / mid / "nightly.jsonl", 1, machine_id=mid)
    df, problems, _ = load_results([res])
    assert len(df) == 2 and not problems


def _report(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["report", *args, "-o", str(out)]) == 0
    return capsys.readouterr().err


def test_results_and_reference_give_the_reference_bundles_intervals(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's ``cnnbench report results/ results/reference/`` on the real bundle: every
    section reads as ``cnnbench report results/reference/`` alone, and naming the bundle's
    folder and its files again changes nothing but the problems section."""
    res = tmp_path / "results"
    shutil.copytree(BUNDLE.parent, res / "reference")
    one = tmp_path / "one.html"
    _report([str(res / "reference")], one, capsys)
    want = section_texts(one)
    for i, args in enumerate([
            [str(res), str(res / "reference")],
            [str(res / "reference"), str(res / "reference" / "vm-793cd1"),
             str(res / "reference" / "vm-793cd1" / "ladder.jsonl")],
            ["--with-reference", str(res), str(res / "reference")]]):
        out = tmp_path / f"r{i}.html"
        err = _report(args, out, capsys)
        got = section_texts(out)
        assert {k: v for k, v in got.items() if k != "problems"} == \
            {k: v for k, v in want.items() if k != "problems"}, args
        if i == 1:
            assert "read once" in got["problems"] and "read once" in err
    assert "vm-793cd1 (reference) CPU" in want["summary"]


# ------------------------------------------------------------------- 2 reference bundles


def _own_and_reference(tmp_path: Path) -> Path:
    res = tmp_path / "results"
    machine_json(res / "mybox", "mybox")
    cell(res / "mybox" / "r.jsonl", 1, machine_id="mybox", framework="pytorch")
    ref = res / "reference" / "refbox"
    machine_json(ref, "refbox")
    cell(ref / "r.jsonl", 2, machine_id="refbox", framework="pytorch", factor=0.5)
    (res / "reference" / "REFERENCE.md").write_text("# Reference results\n")
    return res


def test_a_users_report_leaves_reference_bundles_out_unless_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    res = _own_and_reference(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in ([], [str(res)]):  # the default results/, and the folder named
        err = _report(args, tmp_path / "mine.html", capsys)
        s = section_texts(tmp_path / "mine.html")
        page = (tmp_path / "mine.html").read_text()
        assert "refbox" not in page.replace("--with-reference", ""), args
        assert "mybox CPU" in s["summary"] and "1 machine(s)" in s["summary"]
        assert "One machine and device only" in s["machines"]
        assert "left out" in s["method"] and "--with-reference" in s["method"]
        assert "--with-reference" in err
    for args in (["--with-reference"], [str(res), str(res / "reference" / "refbox")]):
        _report(args, tmp_path / "both.html", capsys)
        s = section_texts(tmp_path / "both.html")
        assert "refbox (reference) CPU" in s["summary"] and "2 machine(s)" in s["summary"]
        assert "refbox (reference)" in s["machines"] and "mybox CPU" in s["machines"]
        assert re.search(r"refbox \(reference\): .*measured on another machine", s["method"])
        assert not re.search(r"refbox(?! \(reference\))", s["summary"] + s["machines"]), args


def test_a_bundle_of_this_machines_id_stays_apart(tmp_path: Path) -> None:
    """A reference measured on a machine of the same id is never a repeat of the user's cell."""
    res = tmp_path / "results"
    cell(res / "vm" / "r.jsonl", 1, machine_id="vm")
    cell(res / "reference" / "vm" / "r.jsonl", 1, machine_id="vm", factor=0.5, run_id="old")
    (res / "reference" / "vm" / "REFERENCE.md").write_text("one bundle\n")
    t = cells_table(load_results([res, res / "reference" / "vm"])[0])
    assert sorted(t["machine_id"]) == ["vm", "vm (reference)"] and t["runs"].tolist() == [1, 1]
    t = cells_table(load_results([res / "reference", res], with_reference=True)[0])
    assert sorted(t["machine_id"]) == ["vm", "vm (reference)"] and t["runs"].tolist() == [1, 1]
    notes: list[str] = []
    t = cells_table(load_results([res], notes=notes)[0])
    assert t["machine_id"].tolist() == ["vm"]
    assert notes == [f"left out the reference results in {res / 'reference' / 'vm'} (1 file): "
                     "a report is about your own results; add --with-reference, or name the "
                     "folder, to compare with them"]


def test_run_report_is_this_machines_results_only(tmp_path: Path) -> None:
    """``cnnbench run --report`` (what ``tox -e bench`` runs): this machine's results, not
    another machine's that lie in the results folder, nor a reference bundle unless asked."""
    res = tmp_path / "results"
    cell(res / "otherbox" / "x.jsonl", 1, machine_id="otherbox")
    ref = res / "reference" / "refbox"
    cell(ref / "x.jsonl", 1, machine_id="refbox")
    (res / "reference" / "REFERENCE.md").write_text("# Reference results\n")
    base = [sys.executable, "-m", "cnnbench", "run", "--frameworks", "null", "--workloads",
            "lenet5", "--modes", "infer", "--repeat", "1", "--budget", "0.3", "--results-dir",
            str(res), "--machine-id", "testbox", "--adapter-opt", "step_s=0.0005",
            "--no-progress", "--no-probe", "--no-kernel-probe"]
    html = tmp_path / "a.html"
    r = subprocess.run([*base, "--run-id", "e2e", "--report", str(html)], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    page = html.read_text()
    assert "testbox" in page and "otherbox" not in page
    assert "refbox" not in page.replace("--with-reference", "")
    html2 = tmp_path / "b.html"
    r = subprocess.run([*base, "--resume", "e2e", "--report", str(html2), "--with-reference"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    page = html2.read_text()
    assert "refbox (reference)" in page and "otherbox" not in page


# ------------------------------------------------------------------- 3 simulated devices


def test_simulated_device_sets_are_not_hardware(tmp_path: Path) -> None:
    res = tmp_path / "results" / "vm" / "r.jsonl"
    machine_json(res.parent, "vm")
    kw = {"machine_id": "vm", "framework": "pytorch", "mode": "train", "workload": "resnet50"}
    cell(res, 1, runs=2, **kw)
    cell(res, 2, factor=0.7, runs=2, exec_mode="compiled", **kw)  # a runner-up on the CPU
    cell(res, 3, factor=1.2, runs=2, device="cpu*2", n_devices=2, simulated=True,
         scaling="weak", batch_size=16, **kw)
    cell(res, 4, factor=1.1, runs=2, device="cpu*2", n_devices=2, simulated=True,
         scaling="weak", batch_size=16, exec_mode="compiled", **kw)
    prices = tmp_path / "prices.toml"
    prices.write_text("[[machine]]\nmatch = 'vm'\nprice_usd = 2000\nhourly_usd = 0.5\n")
    out = write_report([tmp_path / "results"], tmp_path / "i.html", load_prices(prices),
                       job=Job("resnet50", 1, 1000))
    s = section_texts(out)
    for sid in ("summary", "machines", "buyers"):
        assert "cpu*2" not in s[sid], (sid, s[sid])
    assert "×" not in s["machines"] and "One machine and device only" in s["machines"]
    assert "vm CPU" in s["summary"] and "vm CPU" in s["buyers"]
    assert "simulated" in s["summary"]  # says where the device sets went
    assert "simulated" in s["scaling"] and "cpu*2" in s["throughput"]


# ------------------------------------------------------------------- 4 one resample count


@pytest.mark.parametrize("runs", [1, 3])
def test_report_and_compare_give_the_same_interval(tmp_path: Path, runs: int,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    res = tmp_path / "results"
    for mid, factor in (("box-a", 1.0), ("box-b", 0.93)):
        f = res / mid / "r.jsonl"
        machine_json(f.parent, mid)
        for r in range(runs):
            s = list(0.01 * factor * np.exp(rng.normal(0, 0.05, 25)) * (1 + 0.03 * r))
            med = float(np.median(s))
            append_row(f, row(machine_id=mid, cell_id="c1", repeat=r, run_id="run",
                              samples_s=s, median_step_s=med, images_per_s=8 / med))
    assert main(["compare", str(res / "box-a"), str(res / "box-b"), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)["cells"][0]["text"]
    out = write_report([res], tmp_path / "i.html", reference_machine="box-a")
    assert want in section_texts(out)["machines"], want

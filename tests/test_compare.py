"""`cnnbench compare` on small planted results files: end to end in real subprocesses where
the exit status and output are the point, in-process (``cli.main``) for the rest (every
subprocess pays for importing pandas and scipy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnbench.cli import main
from cnnbench.commands import UsageError
from cnnbench.commands.compare import parse_fraction, resolve
from cnnbench.core.schema import append_row, blank_row

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>[/]"  # HTML, and rich markup that would raise if parsed
CELLS = [("lenet5", "pytorch"), ("resnet20", "pytorch"), ("resnet20", "jax"), ("lenet5", HOSTILE)]


def write(path: Path, slower: float = 1.0, runs: int = 1, machine: str = "m1") -> Path:
    """One row per run of each cell, step times ``slower`` x a common 10 ms (2% noise)."""
    rng = np.random.default_rng(0)
    for workload, framework in CELLS:
        for rep in range(runs):
            samples = 0.01 * slower * np.exp(rng.normal(0, 0.02, 12))
            append_row(path, blank_row(
                run_id=path.stem, machine_id=machine, cell_id=f"{framework}-{workload}-{rep}",
                framework=framework, variant=HOSTILE if framework == HOSTILE else "default",
                device="cpu", workload=workload, mode="train", batch_size=32, precision="fp32",
                exec_mode="eager", threads=2, status="ok", samples_s=list(samples), repeat=rep,
                error=HOSTILE, started_at="2026-01-01T00:00:00"))
    return path


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnbench", "compare", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("results")
    return {"base": write(d / "m1" / "base.jsonl"),
            "same": write(d / "m2" / "same.jsonl", machine="m2"),
            "slow": write(d / "m1" / "slow.jsonl", slower=1.1)}


def test_identical_results_exit_0(files: dict[str, Path]) -> None:
    r = cli(files["base"], files["same"], "--fail-above", "5%")
    assert r.returncode == 0, r.stderr
    assert "no clear difference" in r.stdout and "geometric mean over 4 cells" in r.stdout
    assert "between-process noise not covered" in r.stdout
    assert HOSTILE in r.stdout  # printed as it is, not as markup


def test_ten_percent_slower_fails_above_5_percent(files: dict[str, Path]) -> None:
    r = cli(files["base"], files["slow"], "--fail-above", "5%")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.count("FAIL") == len(CELLS) and "0.91×" in r.stdout


def test_fail_above_as_a_fraction_and_its_limit(files: dict[str, Path]) -> None:
    base, slow = str(files["base"]), str(files["slow"])
    assert main(["compare", base, slow, "--fail-above", "0.05"]) == 1
    assert main(["compare", base, slow, "--fail-above", "20%"]) == 0
    assert main(["compare", base, slow]) == 0
    assert main(["compare", slow, base, "--fail-above", "5%"]) == 0  # faster


def test_json_is_the_same_figures(files: dict[str, Path]) -> None:
    r = cli(files["base"], files["slow"], "--json", "--fail-above", "0.05")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert len(doc["cells"]) == len(CELLS) and doc["regressions"] == len(CELLS)
    assert doc["fail_above"] == 0.05 and 0.85 < doc["geomean"]["ratio"] < 0.95
    cell = doc["cells"][0]
    assert cell["verdict"] == "slower" and cell["significant"] is True and cell["high"] < 1
    assert cell["runs_baseline"] == 1 and cell["note"]
    assert HOSTILE in {c["framework"] for c in doc["cells"]}


def test_run_ids_are_looked_up_under_the_results_dir(files: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    results = str(files["base"].parent.parent)
    assert main(["compare", "base", "slow", "--results-dir", results, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["cells"]) == len(CELLS)


@pytest.mark.parametrize("args, needle", [
    (["/no/such.jsonl", "X"], "no results file, folder or run id"),
    (["BASE", "BASE", "--fail-above", "lots"], "expected a fraction"),
    (["BASE", "EMPTY"], "no cell with ok samples"),
])
def test_bad_input_is_one_line_exit_2(files: dict[str, Path], tmp_path: Path, args: list[str],
                                      needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    subs = {"BASE": str(files["base"]), "EMPTY": str(empty), "X": str(files["base"])}
    assert main(["compare", *[subs.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err


def test_parse_fraction_and_resolve(tmp_path: Path) -> None:
    assert parse_fraction("5%") == pytest.approx(0.05) and parse_fraction(0.1) == 0.1
    for bad in ("", "five", "-1%", "nan"):
        with pytest.raises(UsageError):
            parse_fraction(bad)
    with pytest.raises(UsageError):
        resolve("*", tmp_path)  # a run id is a name, never a glob

"""The analysis layer: comparisons of planted cells, whose true ratio is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnnbench.analyse.compare import (
    BORROWED_NOTE,
    MATCH,
    NO_CLEAR,
    ONE_RUN_NOTE,
    cell_estimate,
    cell_samples,
    cells_table,
    compare_cells,
    compare_samples,
    format_ratio,
    geomean,
)
from cnnbench.core.schema import blank_row

# ResNet-20 training, --repeat 3, three fresh processes (images/s at batch 128).
PYTORCH_RUNS_IPS = (575.0, 659.0, 467.0)


def rounds(step_s: float, n: int = 16, noise: float = 0.03, seed: int = 0) -> np.ndarray:
    """n rounds of per-step seconds around ``step_s`` (log-normal noise)."""
    return step_s * np.exp(np.random.default_rng(seed).normal(0.0, noise, n))


def runs_of(ips: tuple[float, ...], batch: int = 128, seed: int = 0) -> list[np.ndarray]:
    return [rounds(batch / v, seed=seed + i) for i, v in enumerate(ips)]


def row(framework: str = "pytorch", samples: list[float] | None = None, **kw: object) -> dict:
    values = {"run_id": "r1", "machine_id": "m1", "cell_id": "c", "framework": framework,
              "variant": "default", "device": "cpu", "workload": "resnet20", "mode": "train",
              "batch_size": 32, "precision": "fp32", "exec_mode": "eager", "threads": 4,
              "status": "ok", "samples_s": samples if samples is not None else
              list(rounds(0.01, seed=sum(map(ord, framework)))), "started_at": "2026-01-01"}
    values.update(kw)
    return blank_row(**values)


# ------------------------------------------------------------------- planted pairs


def test_identical_samples_read_no_clear_difference() -> None:
    x = rounds(0.01)
    c = compare_cells([x], [x.copy()])
    assert c.ratio == pytest.approx(1.0)
    assert c.low <= 1.0 <= c.high
    assert not c.significant and c.verdict == NO_CLEAR and c.p_value > 0.5
    assert c.text().startswith(f"{NO_CLEAR} (1.00× [")


def test_constant_identical_samples_are_not_significant() -> None:
    c = compare_cells([np.full(8, 0.02)], [np.full(8, 0.02)])
    assert (c.ratio, c.low, c.high, c.p_value, c.significant) == (1.0, 1.0, 1.0, 1.0, False)


@pytest.mark.parametrize("runs", [1, 3])
def test_twice_as_fast_reads_2x_excluding_1(runs: int) -> None:
    base = [rounds(0.02, seed=i) for i in range(runs)]
    cont = [rounds(0.01, seed=10 + i) for i in range(runs)]
    c = compare_cells(base, cont)
    assert c.ratio == pytest.approx(2.0, rel=0.05)
    assert 1.0 < c.low < 2.0 < c.high
    assert c.significant and c.verdict == "faster" and c.p_value < 0.05
    assert c.text().startswith("2.0") and NO_CLEAR not in c.text()
    back = compare_cells(cont, base)
    assert back.verdict == "slower" and back.high < 1.0 and back.ratio == pytest.approx(0.5, rel=0.05)


def test_threshold_keeps_a_small_significant_change_unflagged() -> None:
    base, cont = [rounds(0.0102, n=200, noise=0.002)], [rounds(0.0100, n=200, noise=0.002, seed=1)]
    assert compare_cells(base, cont).significant
    assert not compare_cells(base, cont, threshold=0.05).significant


# ------------------------------------------------------------------- between-run noise


def test_between_run_spread_widens_the_interval_and_an_aa_pair_is_not_significant() -> None:
    a = runs_of(PYTORCH_RUNS_IPS, seed=0)
    # An independent draw of the same cell: other processes, another order of the same spread.
    b = runs_of((620.0, 480.0, 560.0), seed=50)
    multi = compare_cells(a, b)
    single = compare_cells(a[:1], b[:1])
    assert (multi.runs_baseline, multi.runs_contender) == (3, 3) and multi.note == ""
    assert multi.high - multi.low > 3 * (single.high - single.low)
    assert not multi.significant and multi.verdict == NO_CLEAR
    # One run each: 575 vs 620 looks like a clear difference, and the note says why not to trust it.
    assert single.note == ONE_RUN_NOTE and single.runs_baseline == 1
    est = cell_estimate(a)
    assert est.runs == 3 and est.high_s - est.low_s > cell_estimate(a[:1]).high_s - cell_estimate(a[:1]).low_s
    assert est.low_s < 128 / max(PYTORCH_RUNS_IPS) and est.high_s > 128 / min(PYTORCH_RUNS_IPS)


def test_a_lone_run_against_several_borrows_their_between_run_noise() -> None:
    a = runs_of(PYTORCH_RUNS_IPS, seed=0)
    b = runs_of((620.0, 480.0, 560.0), seed=50)
    lone = compare_cells(a, b[:1])
    assert lone.note == BORROWED_NOTE and (lone.runs_baseline, lone.runs_contender) == (3, 1)
    # The lone run is as uncertain as any one of the three, not as its own rounds say.
    assert lone.high / lone.low > compare_cells(a, b).high / compare_cells(a, b).low
    assert not lone.significant
    assert lone.contender.high_s / lone.contender.low_s > 1.5


def test_aa_false_positive_rate_with_between_run_noise() -> None:
    """200 cells, two independent sets of 3 runs each from the same distribution: process
    noise 15% (sd of log), round noise 3%. A sound interval flags about 5% at most."""
    rng = np.random.default_rng(123)

    def draw() -> list[np.ndarray]:
        return [0.1 * np.exp(rng.normal(0, 0.15) + rng.normal(0, 0.03, 12)) for _ in range(3)]

    cs = [compare_cells(draw(), draw(), seed=i, n_resamples=1000) for i in range(200)]
    # The flag, and each of its parts on its own: the interval and the test hold their level.
    assert np.mean([c.significant for c in cs]) <= 0.06
    assert np.mean([not c.low <= 1.0 <= c.high for c in cs]) <= 0.06
    assert np.mean([c.p_value < 0.05 for c in cs]) <= 0.06
    # The same data compared run by run (one run per side) is wrong most of the time,
    # which is why a one-run comparison carries ONE_RUN_NOTE.
    one_run = [compare_cells(draw()[:1], draw()[:1], seed=i, n_resamples=500).significant
               for i in range(50)]
    assert np.mean(one_run) > 0.3


def test_deterministic_for_a_seed() -> None:
    a, b = runs_of(PYTORCH_RUNS_IPS), runs_of((600.0, 610.0), seed=9)
    assert compare_cells(a, b, seed=3) == compare_cells(a, b, seed=3)


# ------------------------------------------------------------------- formatting and geomean


def test_format_ratio() -> None:
    assert format_ratio(1.39, 1.31, 1.46, True) == "1.39× [1.31, 1.46]"
    assert format_ratio(0.98, 0.93, 1.04, False) == "no clear difference (0.98× [0.93, 1.04])"
    assert format_ratio(float("nan"), 1, 2, True) == "n/a"


def test_geomean_of_cells() -> None:
    g = geomean([2.0, 8.0])
    assert g.ratio == pytest.approx(4.0) and g.n == 2 and g.low <= 4.0 <= g.high
    one = geomean([1.5], [1.4], [1.6])
    assert one.ratio == pytest.approx(1.5) and one.low == pytest.approx(1.4, rel=0.03)
    assert geomean([1.0, 1.0, 1.0]).text().startswith(NO_CLEAR)
    with pytest.raises(ValueError):
        geomean([])


# ------------------------------------------------------------------- from rows


def test_cell_samples_groups_runs_and_skips_what_is_not_a_timing() -> None:
    df = pd.DataFrame([
        row(), row(repeat=1, run_id="r2"), row(threads=None),
        row(status="crashed", samples_s=[]), row(samples_s=[]),
        row(mode="peak", workload="gemm"), row(options={"channels_last": True}),
    ])
    cells = cell_samples(df)
    assert sorted(len(v) for v in cells.values()) == [1, 1, 2]
    assert any(k[MATCH.index("threads") + 1] == 0 for k in cells)  # None threads became 0


def test_results_compared_across_machines_match_on_the_key_without_the_machine() -> None:
    """What ``cnnbench compare`` computes: every cell of one set against the same cell of
    the other, matched on ``MATCH`` (the cell key without the machine)."""
    base = pd.DataFrame([row("pytorch", list(rounds(0.02))), row("jax", list(rounds(0.01)))])
    cont = pd.DataFrame([row("pytorch", list(rounds(0.01, seed=5)), machine_id="m2"),
                         row("mxnet", machine_id="m2")])

    def compare(b: pd.DataFrame, c: pd.DataFrame) -> pd.DataFrame:
        return compare_samples(cell_samples(b, MATCH), cell_samples(c, MATCH), MATCH)

    t = compare(base, cont)
    assert list(t["framework"]) == ["pytorch"]
    r = t.iloc[0]
    assert r["verdict"] == "faster" and r["ratio"] == pytest.approx(2.0, rel=0.05)
    assert r["baseline_ips"] == pytest.approx(32 / 0.02, rel=0.05) and r["note"] == ONE_RUN_NOTE
    assert r["contender_low"] < r["contender_ips"] < r["contender_high"]
    assert compare(base, cont.iloc[:0]).empty


def test_speedups_against_the_baseline_of_each_workload() -> None:
    """The report's speedups (``pairs.speedups``): each cell against the baseline cell of
    its group, the cells that differ from it only in the fields the baseline names."""
    from cnnbench.analyse.pairs import SampleBank, against, records, speedups

    df = pd.DataFrame([
        row("pytorch", list(rounds(0.02))), row("jax", list(rounds(0.01))),
        row("pytorch", list(rounds(0.04)), workload="lenet5"),
        row("jax", list(rounds(0.04, seed=3)), workload="lenet5"),
        row("mxnet", workload="vgg"),  # no baseline in its group
    ])
    cells, bank = records(cells_table(df)), SampleBank(df)
    t, total = speedups(cells, bank, {"framework": "pytorch"}, limit=100)
    assert sorted(t["workload"]) == ["lenet5", "resnet20"] and set(t["framework"]) == {"jax"}
    assert total == 2 and set(t["base_framework"]) == {"pytorch"}
    by = t.set_index("workload")
    assert by.loc["resnet20", "ratio"] == pytest.approx(2.0, rel=0.05)
    assert not by.loc["lenet5", "significant"] and by.loc["lenet5", "text"].startswith(NO_CLEAR)
    # A group with several baseline cells has no one baseline: it is left out, not guessed.
    several, n = against(cells, ["workload"], lambda r: r["mode"] == "train", bank, limit=100)
    assert several.empty and n == 0
    with pytest.raises(ValueError, match="not cell key"):
        speedups(cells, bank, {"colour": "red"}, limit=100)
    assert speedups(cells, bank, {"framework": "pytorch"}, limit=1)[1] == 2  # all counted


def test_grouping_keys_are_named_once_in_core_keys() -> None:
    """No module of the analysis and report floors defines a list of cell-key columns of its
    own: grouping keys are named in core/keys.py and imported."""
    import ast
    from pathlib import Path

    import cnnbench
    from cnnbench.core.keys import KEY

    fields = {*KEY, "scaling"}
    root = Path(cnnbench.__file__).parent
    found = []
    for path in [*root.glob("analyse/**/*.py"), *root.glob("report/**/*.py")]:
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if isinstance(value, ast.List | ast.Tuple) and len(value.elts) >= 3 and all(
                    isinstance(e, ast.Constant) and e.value in fields for e in value.elts):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []

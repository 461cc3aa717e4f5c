"""Issue 24's measurements: latency percentiles with their intervals, peak memory, and
energy from a planted RAPL tree."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cnnbench.core.cells import Cell
from cnnbench.measure import memory
from cnnbench.measure.energy import EnergyMeter, meter_for, rapl_zones
from cnnbench.measure.latency import measure_latency, steps_wanted
from cnnbench.measure.percentiles import min_samples, quantile, quantile_ranks
from cnnbench.measure.timing import Protocol
from cnnbench.sweep.runner import RunSettings, run_cell

FAST = Protocol(budget_s=0.5, min_round_s=0.01)


def _settings(tmp_path: Path) -> RunSettings:
    return RunSettings("run1", "m1", tmp_path, protocol=FAST, check_noise=False,
                       kernel_probe=False, probe_peak=False)


# -- percentiles -------------------------------------------------------------------------
def test_min_samples_for_the_tails() -> None:
    assert min_samples(0.99) == 368  # 1 - 0.99^n >= 0.975 first at n = 368
    assert min_samples(0.999) == 3688
    assert min_samples(0.5) == 6  # the median's, as timing.MIN_ROUNDS_FOR_CI


@pytest.mark.parametrize(("n", "p"), [(400, 0.99), (1000, 0.9), (50, 0.5), (5000, 0.999)])
def test_ranks_cover_the_quantile_at_95_percent_by_the_binomial(n: int, p: float) -> None:
    lo, hi = quantile_ranks(n, p)
    assert lo is not None and hi is not None
    b = stats.binom(n, p)
    cover = b.cdf(hi - 1) - b.cdf(lo - 1)  # P(lo <= B <= hi - 1)
    assert cover >= 0.95
    # ... and each end is as tight as it can be: one rank further in loses the 2.5% tail
    assert b.cdf(lo) > 0.025 and 1 - b.cdf(hi - 2) > 0.025


def test_interval_covers_the_true_p99_in_about_95_percent_of_samples() -> None:
    rng = np.random.default_rng(1)
    truth = -np.log(0.01)  # the exponential(1)'s p99
    hits = 0
    for _ in range(400):
        q = quantile(list(rng.exponential(size=500)), "p99", 0.99)
        assert q.low is not None and q.high is not None
        hits += q.low <= truth <= q.high
    assert 0.92 <= hits / 400 <= 0.995


def test_too_few_samples_leave_the_upper_end_open() -> None:
    q = quantile([float(i) for i in range(100)], "p99", 0.99)
    assert q.high is None and not q.meaningful


# -- latency mode ------------------------------------------------------------------------
def test_null_adapter_planted_latency_p99_lies_in_the_reported_interval(tmp_path: Path) -> None:
    # 95% of steps 1 ms, 5% uniform in [20, 40] ms: P(X <= q) = 0.95 + 0.05 (q - 20) / 20,
    # so the p99 is 36 ms exactly.
    opts = {"step_s": 0.001, "tail_p": 0.05, "tail_lo_s": 0.02, "tail_hi_s": 0.04}
    c = Cell("null", "default", "cpu", "lenet5", "latency", 1, "fp32", "eager", options=opts)
    row = run_cell(c, _settings(tmp_path))
    assert row["status"] == "ok", row["error"]
    assert len(row["samples_s"]) >= steps_wanted(FAST) and row["steps_per_round"] == 1
    assert "p99_interval_short" not in row["flags"]
    assert row["latency_p99_low_s"] <= 0.036 <= row["latency_p99_high_s"]
    assert row["latency_p50_low_s"] <= 0.001 * 1.2  # the median is a 1 ms step
    assert row["latency_p50_s"] < row["latency_p90_s"] < row["latency_p99_s"]


def test_latency_cell_that_cannot_reach_the_p99_minimum_is_flagged() -> None:
    ticks = itertools.count()
    clock = lambda: float(next(ticks))  # noqa: E731 - every read is a second later
    m = measure_latency(lambda n: 0.01 * n, Protocol(budget_s=1.0), clock=clock)
    assert len(m.samples_s) < min_samples(0.99)
    assert "p99_interval_short" in m.flags


# -- memory ------------------------------------------------------------------------------
def test_peak_memory_finds_what_the_build_holds(tmp_path: Path) -> None:
    c = Cell("null", "default", "cpu", "lenet5", "infer", 1, "fp32", "eager",
             options={"hold_mb": 200})
    row = run_cell(c, _settings(tmp_path))
    assert row["status"] == "ok", row["error"]
    assert 195 <= row["rss_added_mb"] <= 260, row["rss_added_mb"]
    assert row["peak_rss_mb"] >= row["baseline_rss_mb"] + row["rss_added_mb"] - 1
    assert row["device_peak_mb"] is None  # a CPU cell has no device counter


def test_memory_is_read_only_outside_the_timed_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnbench.measure import buyer

    events: list[str] = []
    for name in ("rss_mb", "peak_rss_mb", "reset_peak"):
        real = getattr(memory, name)
        monkeypatch.setattr(memory, name, lambda *a, _r=real, _n=name: events.append(_n) or _r(*a))
    host = memory.HostMemory()
    host.start()

    def steps(n: int) -> float:
        events.append("step")
        return 0.001 * n

    m = buyer.timed(steps, FAST, False, "infer", EnergyMeter([]))
    fields = host.fields()
    first_step, last_step = events.index("step"), len(events) - 1 - events[::-1].index("step")
    assert not {"rss_mb", "peak_rss_mb", "reset_peak"} & set(events[first_step:last_step])
    assert fields["peak_rss_mb"] > 0 and len(m.samples_s) >= FAST.min_rounds


# -- energy ------------------------------------------------------------------------------
def _zone(root: Path, name: str, folder: str, uj: int, wrap_uj: int) -> Path:
    d = root / folder
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
    return d


def test_planted_rapl_tree_with_a_wrap_gives_the_joules_per_image(tmp_path: Path) -> None:
    (tmp_path / "intel-rapl").mkdir()  # the control type folder: no name, no counter
    pkg = _zone(tmp_path, "package-0", "intel-rapl:0", 262_000_000, 262_143_328_850)
    core = _zone(tmp_path, "core", "intel-rapl:0:0", 5_000_000, 262_143_328_850)
    dram = _zone(tmp_path, "dram", "intel-rapl:0:1", 990_000_000, 1_000_000_000)
    meter = meter_for("cpu", root=tmp_path)
    assert sorted(z.name for z in meter.counters) == ["rapl:dram", "rapl:package-0"]

    def round_of_work() -> float:  # the hardware counts while a round runs
        (pkg / "energy_uj").write_text("302000000\n")  # +40 J
        (core / "energy_uj").write_text("35000000\n")  # part of the package: not added
        (dram / "energy_uj").write_text("5000000\n")  # wrapped: +10 J to the top, +5 J after
        return 1.0

    meter.around(round_of_work)
    fields = meter.fields(images=100)
    assert fields["energy_j"] == pytest.approx(55.0)
    assert fields["joules_per_image"] == pytest.approx(0.55)
    assert fields["energy_reason"] is None and fields["mean_watts"] > 0


def test_no_powercap_says_why(tmp_path: Path) -> None:
    zones, why = rapl_zones(tmp_path / "missing")
    assert zones == [] and why is not None and "does not exist" in why
    assert meter_for("cpu", root=tmp_path / "missing").fields(10) == {"energy_reason": why}

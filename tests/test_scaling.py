"""Scaling analysis on planted rows whose true speedup is known."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cnnbench.analyse.scaling import (
    SEED_LABEL,
    device_scaling,
    project,
    projections,
    scaling_figure,
    thread_scaling,
    usl,
)
from cnnbench.core.schema import blank_row


def rounds(step_s: float, n: int = 16, noise: float = 0.02, seed: int = 0) -> list[float]:
    return list(step_s * np.exp(np.random.default_rng(seed).normal(0.0, noise, n)))


def row(device: str = "cpu", batch: int = 32, step_s: float = 0.1, scaling: str | None = None,
        framework: str = "jax", threads: int = 2, seed: int = 0, **kw: object) -> dict:
    n = 1 if device in ("cpu", "gpu:0") else (int(device[4:]) if device.startswith("cpu*")
                                             else len(device[4:].split("+")))
    values = {"run_id": "r1", "machine_id": "m1", "cell_id": f"{device}-{batch}-{scaling}",
              "framework": framework, "variant": "default", "device": device,
              "n_devices": n, "workload": "resnet20", "mode": "train", "batch_size": batch,
              "per_device_batch": batch // n, "scaling": scaling,
              "simulated": device.startswith("cpu*"), "precision": "fp32", "exec_mode": "jit",
              "threads": threads, "status": "ok", "samples_s": rounds(step_s, seed=seed),
              "started_at": "2026-01-01"}
    values.update(kw)
    return blank_row(**values)


def sweep(dev: str = "gpu:0+1", base: str = "gpu:0") -> pd.DataFrame:
    """One device at batch 32 and 64; two devices, weak (global 64) and strong (global 32).
    Planted: weak two-device step 0.125 s against 0.1 s (speedup 2 * 0.1/0.125 = 1.6,
    efficiency 0.8); strong step 0.08 s against 0.1 (speedup 1.25, efficiency 0.625)."""
    return pd.DataFrame([
        row(base, 32, 0.1, seed=1), row(base, 64, 0.2, seed=2),
        row(dev, 64, 0.125, "weak", seed=3), row(dev, 32, 0.08, "strong", seed=4),
    ])


def test_weak_and_strong_efficiency_against_the_one_device_run() -> None:
    t = device_scaling(sweep())
    two = t[t["n"] == 2].set_index("scaling")
    assert two.loc["weak", "speedup"] == pytest.approx(1.6, rel=0.03)
    assert two.loc["weak", "efficiency"] == pytest.approx(0.8, rel=0.03)
    assert two.loc["strong", "speedup"] == pytest.approx(1.25, rel=0.03)
    assert two.loc["strong", "efficiency"] == pytest.approx(0.625, rel=0.03)
    assert two.loc["weak", "baseline_batch"] == 32 and two.loc["strong", "baseline_batch"] == 32
    for s in ("weak", "strong"):
        r = two.loc[s]
        assert r["efficiency_low"] < r["efficiency"] < r["efficiency_high"]
        assert r["significant"] and not r["simulated"] and r["kind"] == "gpu"
        # The weak cell's step is slower (0.125 s against 0.1 s) but carries twice the images.
        assert r["verdict"] == "faster", s
    ones = t[t["n"] == 1]
    assert set(ones["scaling"]) == {"weak", "strong"}
    assert ones["speedup"].tolist() == pytest.approx([1.0, 1.0])


def test_weak_scaling_verdict_is_about_throughput_not_step_time() -> None:
    # Two devices, twice the global batch, twice the step time (the same rounds, scaled):
    # the same images/s.
    t = device_scaling(pd.DataFrame([row("gpu:0", 32, 0.1, seed=1),
                                     row("gpu:0+1", 64, 0.2, "weak", seed=1)]))
    two = t[t["n"] == 2].iloc[0]
    assert two["speedup_low"] < 1 < two["speedup_high"]
    assert two["verdict"] == "no clear difference" and not two["significant"]
    assert two["images_per_s"] == pytest.approx(320, rel=0.03)
    assert two["ips_low"] < two["images_per_s"] < two["ips_high"]


def test_simulated_devices_stay_apart_from_hardware() -> None:
    df = pd.concat([sweep(), sweep("cpu*2", "cpu")], ignore_index=True)
    t = device_scaling(df[df["n_devices"].notna()])
    assert set(t["simulated"]) == {True, False}
    sim = t[t["simulated"] & (t["n"] == 2)]
    assert set(sim["kind"]) == {"cpu"} and len(sim) == 2


def test_a_cell_without_its_baseline_is_left_out() -> None:
    df = sweep()
    df = df[~((df["n_devices"] == 1) & (df["batch_size"] == 32))]  # drop the weak baseline
    t = device_scaling(df)
    assert set(t[t["n"] == 2]["scaling"]) == set()  # strong's baseline was batch 32 too


def test_older_rows_without_data_parallel_columns_still_load() -> None:
    df = sweep().drop(columns=["scaling", "simulated"])
    assert device_scaling(df).empty  # no scaling label: no data-parallel cells to judge


def test_thread_scaling_has_intervals_and_the_same_shape() -> None:
    df = pd.DataFrame([row("cpu", 32, 0.2, threads=1, seed=1),
                       row("cpu", 32, 0.125, threads=2, seed=2)])
    t = thread_scaling(df)
    assert list(t["n"]) == [1, 2]
    two = t[t["n"] == 2].iloc[0]
    assert two["speedup"] == pytest.approx(1.6, rel=0.03)
    assert two["efficiency"] == pytest.approx(0.8, rel=0.03)
    assert two["efficiency_low"] < two["efficiency"] < two["efficiency_high"]
    assert list(t.columns) == list(device_scaling(sweep()).columns)


def test_amdahl_projection_from_one_point_recovers_the_serial_fraction() -> None:
    # S(2) = 1 / (0.25 + 0.75/2) = 1.6 -> sigma = 0.25
    p = project([1, 2], [1.0, 1.6])
    assert p["model"] == "amdahl"
    assert p["params"]["sigma"] == pytest.approx(0.25, rel=1e-3)
    assert p["params"]["kappa"] == 0.0
    assert p["n"][-1] == 16 and p["n_max"] == 2
    assert p["speedup"][-1] == pytest.approx(float(usl(16, 0.25, 0.0)), rel=1e-3)
    assert "projection" in p["label"] and "0.250" in p["label"]


def test_one_point_slower_than_one_device_is_crosstalk_not_a_serial_fraction_above_one(
        ) -> None:
    # S(2) = 0.8: Amdahl's σ would have to be 1.5 (no such serial fraction). With σ = 1 the
    # USL gives S(2) = 1 / (1 + κ), so κ = 0.25, and throughput keeps falling past N = 2.
    p = project([1, 2], [1.0, 0.8], [0.9, 0.7], [1.1, 0.9])
    assert p["model"] == "usl"
    assert p["params"]["sigma"] == 1.0
    assert p["params"]["kappa"] == pytest.approx(0.25, rel=1e-3)
    assert p["speedup"][-1] == pytest.approx(1 / (1 + 0.25 * 15), rel=1e-3)
    assert all(a > b for a, b in zip(p["speedup"][1:], p["speedup"][2:], strict=False))
    assert "σ = 1" in p["label"] and "0.250" in p["label"]


def test_usl_projection_recovers_planted_parameters() -> None:
    n = np.array([1, 2, 4, 8])
    s = usl(n, 0.05, 0.02)
    p = project(n, s)
    assert p["model"] == "usl"
    assert p["params"]["sigma"] == pytest.approx(0.05, abs=1e-3)
    assert p["params"]["kappa"] == pytest.approx(0.02, abs=1e-4)


def test_projection_needs_a_point_past_one() -> None:
    with pytest.raises(ValueError, match="N > 1"):
        project([1], [1.0])


def test_projections_per_curve() -> None:
    pr = projections(device_scaling(sweep()))
    assert set(pr["scaling"]) == {"weak", "strong"}
    weak = pr[pr["scaling"] == "weak"].iloc[0]
    assert weak["model"] == "amdahl" and weak["sigma"] == pytest.approx(0.25, abs=0.05)


def test_figure_has_ideal_line_projection_and_labels() -> None:
    t = device_scaling(sweep())
    fig = scaling_figure(t[t["scaling"] == "weak"], title="resnet20 train, weak scaling")
    assert isinstance(fig, Figure)
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert any("ideal" in lb for lb in labels)
    assert any(lb.endswith("σ = 0.250") or "σ = 0.2" in lb for lb in labels)
    assert any(line.get_linestyle() == "--" for ax in fig.axes for line in ax.get_lines())
    assert SEED_LABEL in labels
    # the seed's claim is about training with weak scaling: no star on the strong-scaling chart
    fig_strong = scaling_figure(t[t["scaling"] == "strong"])
    assert SEED_LABEL not in [ln.get_label() for ax in fig_strong.axes for ln in ax.get_lines()]
    assert "simulated" not in fig.get_suptitle()
    sim = device_scaling(sweep("cpu*2", "cpu"))
    fig2 = scaling_figure(sim[sim["scaling"] == "strong"])
    assert "simulated" in fig2.get_suptitle()
    assert SEED_LABEL not in [ln.get_label() for ax in fig2.axes for ln in ax.get_lines()]

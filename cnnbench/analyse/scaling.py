"""Scaling analysis: throughput and efficiency against the number of devices (data parallel)
or threads, with intervals from the comparison layer, and a projection past the largest
measured N. Pure functions from result rows (``report.load_results``'s DataFrame) to
DataFrames, plus one function that draws a matplotlib Figure; no HTML, no I/O.

Definitions (as DLBS reports them):

* **speedup** S(N) = throughput(N) / throughput(1), where throughput(1) is the same
  framework's one-device run in the same results (same machine, variant, workload, mode,
  precision, execution mode, threads and options): for **weak** scaling the one-device cell
  at the per-device batch, for **strong** scaling the one at the same global batch.
* **efficiency** E(N) = S(N) / N, i.e. t1 / (N · tN) for strong scaling (tN: the step time
  of the same global batch on N devices) and t1 / tN for weak scaling.

Both come from ``analysis.compare_cells`` on the two cells' raw rounds (throughput is images
per step over the step time, so S = (bN / b1) · t1 / tN), so they carry its 95% interval and
its verdict. Simulated devices (``cpu*N``) share the same cores: their rows stay apart from
hardware ones (the ``simulated`` column), measure overhead, and are never hardware scaling.

The projection fits the Universal Scalability Law, S(N) = N / (1 + σ(N − 1) + κN(N − 1)),
with ``scipy.optimize.curve_fit`` to the measured speedups (weighted by their intervals).
With a single N > 1 only one parameter can be fitted: κ is held at 0, which is Amdahl's law
with serial fraction σ (S = 1 / (σ + (1 − σ)/N)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cnnbench.analyse.claims import TWO_GPUS
from cnnbench.analyse.compare import cell_samples, compare_cells, key_columns
from cnnbench.core.cells import base_device
from cnnbench.core.keys import DP_GROUP, DP_KEY, KEY

# The seed's claim as a chart draws it: a star at N = 2 on hardware GPUs' curves of training
# with weak scaling, the setting the seed speaks of.
SEED_LABEL = (f"seed claim: {TWO_GPUS.devices} GPUs ≈ {TWO_GPUS.ratio('train'):g}× one "
              "(training, weak scaling)")
Values = Sequence[float] | np.ndarray | pd.Series

COLUMNS = [*DP_GROUP, "axis", "scaling", "simulated", "kind", "device", "n", "baseline_n",
           "batch_size", "baseline_batch", "per_device_batch", "images_per_s", "ips_low",
           "ips_high", "speedup", "speedup_low", "speedup_high", "efficiency",
           "efficiency_low", "efficiency_high", "significant", "verdict", "note", "text"]


def _kind(device: str) -> str:
    return "gpu" if str(device).startswith("gpu") else "cpu"


def _prepared(df: pd.DataFrame) -> pd.DataFrame:
    """ok cell rows with the columns the keys need (older rows lack the data-parallel ones)."""
    if df.empty:
        return df
    rows = df[(df["status"] == "ok") & (df["mode"] != "peak")].copy()
    for col, default in (("scaling", ""), ("simulated", False), ("n_devices", 1)):
        if col not in rows:
            rows[col] = default
    rows["scaling"] = rows["scaling"].fillna("").astype(str)
    rows["simulated"] = rows["simulated"].fillna(False).astype(bool)
    rows["n_devices"] = rows["n_devices"].fillna(1).astype(int)
    rows["threads"] = rows["threads"].fillna(0).astype(int)
    return rows


def _entry(group: Mapping[str, Any], axis: str, scaling: str, simulated: bool, device: str,
           n: int, base_n: int, batch: int, base_batch: int, base_runs: Sequence[np.ndarray],
           runs: Sequence[np.ndarray], seed: int) -> dict[str, Any]:
    # Compared per baseline batch of images, not per step: a weak-scaling cell's step carries
    # N times the images, so its step time alone would read "slower" at a speedup of 1.6.
    # Scaling the contender's times to the baseline's batch makes the ratio, its interval and
    # the test's verdict all about throughput.
    work = batch / base_batch  # images per step, relative to the baseline's
    cmp = compare_cells(base_runs, [np.asarray(r) / work for r in runs], seed=seed)
    ips, ips_hi, ips_lo = (base_batch / cmp.contender.step_s, base_batch / cmp.contender.low_s,
                           base_batch / cmp.contender.high_s)
    s, s_lo, s_hi = cmp.ratio, cmp.low, cmp.high
    scale = n / base_n
    return {**group, "axis": axis, "scaling": scaling, "simulated": simulated,
            "kind": _kind(device), "device": device, "n": n, "baseline_n": base_n,
            "batch_size": batch, "baseline_batch": base_batch,
            "per_device_batch": batch // n if axis == "devices" else batch,
            "images_per_s": ips, "ips_low": ips_lo, "ips_high": ips_hi,
            "speedup": s, "speedup_low": s_lo, "speedup_high": s_hi,
            "efficiency": s / scale, "efficiency_low": s_lo / scale,
            "efficiency_high": s_hi / scale, "significant": cmp.significant,
            "verdict": cmp.verdict, "note": cmp.note,
            "text": f"{s / scale:.2f} [{s_lo / scale:.2f}, {s_hi / scale:.2f}]"}


def device_scaling(df: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Speedup and efficiency of every data-parallel cell against its one-device baseline,
    one row per cell (``COLUMNS``; ``n`` = devices), plus the baselines themselves at
    N = 1 (speedup 1). Cells without a baseline in the results are left out."""
    rows = _data_parallel_groups(_prepared(df))
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    samples = cell_samples(rows, DP_KEY)
    keyed: list[dict[str, Any]] = [dict(zip(DP_KEY, k, strict=True)) for k in samples]
    n_dev = dict(zip(zip(*key_columns(rows, DP_KEY), strict=True), rows["n_devices"].tolist(),
                     strict=True))
    singles: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for cell in keyed:
        k = tuple(cell[c] for c in DP_KEY)
        if n_dev.get(k, 1) == 1:
            singles[(*(cell[g] for g in DP_GROUP), cell["device"], cell["batch_size"])] = k
    out: list[dict[str, Any]] = []
    used: set[tuple[tuple[Any, ...], str, bool]] = set()
    for cell in keyed:
        k = tuple(cell[c] for c in DP_KEY)
        n = n_dev.get(k, 1)
        if n <= 1 or not cell["scaling"]:
            continue
        batch = int(cell["batch_size"])
        base_batch = batch // n if cell["scaling"] == "weak" else batch
        group = {g: cell[g] for g in DP_GROUP}
        base = singles.get((*group.values(), base_device(str(cell["device"])), base_batch))
        if base is None:
            continue
        sim = str(cell["device"]).startswith("cpu*")
        out.append(_entry(group, "devices", cell["scaling"], sim, cell["device"], n, 1, batch,
                          base_batch, samples[base], samples[k], seed))
        if (base, cell["scaling"], sim) not in used:  # the baseline, once per curve
            used.add((base, cell["scaling"], sim))
            out.append(_entry(group, "devices", cell["scaling"], sim, str(base[3]), 1, 1,
                              base_batch, base_batch, samples[base], samples[base], seed))
    table = pd.DataFrame(out, columns=COLUMNS)
    return table.sort_values([*DP_GROUP, "scaling", "simulated", "n"]).reset_index(drop=True)


def _data_parallel_groups(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the groups (``DP_GROUP``) that hold a data-parallel cell: only those have
    anything to compare, and 100,000 one-device cells need no keys made."""
    if rows.empty:
        return rows
    dp = rows["n_devices"] > 1
    if not dp.any():
        return rows.iloc[:0]
    groups = list(zip(*key_columns(rows, DP_GROUP), strict=True))
    wanted = {g for g, d in zip(groups, dp.tolist(), strict=True) if d}
    return rows[[g in wanted for g in groups]]


def _several_thread_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the cells (keys without ``threads``) measured at two or more thread
    counts: only those scale, and 100,000 cells at one count need no samples made."""
    if rows.empty:
        return rows
    cols = key_columns(rows, KEY)
    at = KEY.index("threads")
    threads = cols.pop(at)
    groups = list(zip(*cols, strict=True))
    counts: dict[tuple[Any, ...], set[int]] = {}
    for g, t in zip(groups, threads, strict=True):
        if t > 0:
            counts.setdefault(g, set()).add(t)
    return rows[[len(counts.get(g, ())) > 1 for g in groups]]


def thread_scaling(df: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Speedup and efficiency against the thread count (``--threads 1,2``) of one-device
    cells, each against the same cell at the fewest threads measured (``n`` = threads,
    ``baseline_n`` that count; efficiency = speedup / (n / baseline_n)). Same columns as
    ``device_scaling``."""
    rows = _prepared(df)
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = _several_thread_counts(rows[rows["n_devices"] == 1])
    samples = cell_samples(rows, KEY)
    group_cols = [c for c in KEY if c != "threads"]
    by_group: dict[tuple[Any, ...], dict[int, tuple[Any, ...]]] = {}
    for k in samples:
        cell: dict[str, Any] = dict(zip(KEY, k, strict=True))
        if int(cell["threads"]) > 0:
            by_group.setdefault(tuple(cell[c] for c in group_cols), {})[int(cell["threads"])] = k
    out: list[dict[str, Any]] = []
    for g, by_threads in by_group.items():
        if len(by_threads) < 2:
            continue
        t0 = min(by_threads)
        gcell: dict[str, Any] = dict(zip(group_cols, g, strict=True))
        group = {c: gcell.get(c) for c in DP_GROUP if c != "threads"}
        for t, k in sorted(by_threads.items()):
            out.append({**_entry({**group, "threads": t}, "threads", "", False,
                                 str(gcell["device"]), t, t0, int(gcell["batch_size"]),
                                 int(gcell["batch_size"]), samples[by_threads[t0]], samples[k],
                                 seed)})
    table = pd.DataFrame(out, columns=COLUMNS)
    return table.sort_values([c for c in DP_GROUP if c != "threads"] + ["n"]).reset_index(drop=True)


# ------------------------------------------------------------------- projection


def usl(n: np.ndarray | float, sigma: float, kappa: float) -> np.ndarray | float:
    """The Universal Scalability Law's speedup at N (S(1) = 1)."""
    n = np.asarray(n, dtype=float)
    return n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def project(n: Values, speedup: Values, low: Values | None = None,
            high: Values | None = None, *,
            to: Sequence[int] | None = None) -> dict[str, Any]:
    """Fit the USL (or, with one N > 1, Amdahl's law: κ = 0, 0 <= σ <= 1; where that N ran
    slower than one device, the USL with σ = 1 and κ fitted) to measured speedups and
    project it past the largest N (default: 2×, 4× and 8× it). Returns ``model``
    ("usl" or "amdahl"), ``params`` ({"sigma", "kappa"}), ``label`` (for a chart), the
    measured ``n_max``, and ``n``/``speedup``/``efficiency`` of the projection (from N = 1,
    so a line drawn from it starts at the measurements)."""
    ns = np.asarray(n, dtype=float)
    ss = np.asarray(speedup, dtype=float)
    keep = np.isfinite(ns) & np.isfinite(ss) & (ss > 0)
    ns, ss = ns[keep], ss[keep]
    sigma_w = _fit_weights(ss, keep, low, high)
    beyond = np.unique(ns[ns > 1])
    if beyond.size == 0:
        raise ValueError("a projection needs a measured speedup at N > 1")
    n_max = int(ns.max())
    fit = _fit_one_n if beyond.size == 1 else _fit_usl
    model, params, label = fit(ns, ss, sigma_w)
    targets = sorted({1, *ns.astype(int).tolist(),
                      *(to if to is not None else (2 * n_max, 4 * n_max, 8 * n_max))})
    grid = np.asarray(targets, dtype=float)
    proj = np.asarray(usl(grid, params["sigma"], params["kappa"]))
    return {"model": model, "params": params, "label": label, "n_max": n_max,
            "n": grid.astype(int).tolist(), "speedup": proj.tolist(),
            "efficiency": (proj / grid).tolist()}


Fit = tuple[str, dict[str, float], str]


def _fit_weights(ss: np.ndarray, keep: np.ndarray, low: Values | None,
                 high: Values | None) -> np.ndarray | None:
    """Each speedup's weight in the fit: its interval's half-width (None without intervals),
    never below 0.1% of the speedup."""
    if low is None or high is None:
        return None
    half = (np.asarray(high, dtype=float) - np.asarray(low, dtype=float))[keep] / 2
    floor = 1e-3 * np.maximum(ss, 1e-9)
    return np.maximum(np.where(np.isfinite(half) & (half > 0), half, floor), floor)


def _fit_one_n(ns: np.ndarray, ss: np.ndarray, sigma_w: np.ndarray | None) -> Fit:
    """One N > 1 measured: Amdahl's law (USL with κ = 0, 0 <= σ <= 1)."""
    from scipy.optimize import curve_fit

    def f1(x: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(usl(x, sigma, 0.0))

    (sig,), _ = curve_fit(f1, ns, ss, p0=[0.1], sigma=sigma_w, bounds=([0.0], [1.0]))
    if not np.all(ss[ns > 1] < 1.0):
        return ("amdahl", {"sigma": float(sig), "kappa": 0.0},
                f"projection: Amdahl's law (USL with κ = 0), σ = {sig:.3f}")
    # Slower than one device: Amdahl's law bottoms out at S = 1 (σ = 1, all serial), so what
    # is left is the USL's crosstalk term. With σ = 1 and κ fitted, S(N) = 1 / (1 + κ(N - 1)):
    # throughput keeps falling as devices are added.

    def f1k(x: np.ndarray, kappa: float) -> np.ndarray:
        return np.asarray(usl(x, 1.0, kappa))

    (kap,), _ = curve_fit(f1k, ns, ss, p0=[0.1], sigma=sigma_w, bounds=([0.0], [np.inf]))
    return ("usl", {"sigma": 1.0, "kappa": float(kap)},
            f"projection: USL, σ = 1 (slower than one device), κ = {kap:.3f}")


def _fit_usl(ns: np.ndarray, ss: np.ndarray, sigma_w: np.ndarray | None) -> Fit:
    """Two or more N > 1 measured: the USL, σ and κ both fitted."""
    from scipy.optimize import curve_fit

    def f2(x: np.ndarray, sigma: float, kappa: float) -> np.ndarray:
        return np.asarray(usl(x, sigma, kappa))

    (sig, kap), _ = curve_fit(f2, ns, ss, p0=[0.1, 0.01], sigma=sigma_w,
                              bounds=([0.0, 0.0], [np.inf, np.inf]))
    return ("usl", {"sigma": float(sig), "kappa": float(kap)},
            f"projection: USL, σ = {sig:.3f}, κ = {kap:.4f}")


def projections(table: pd.DataFrame) -> pd.DataFrame:
    """One projection per curve of a ``device_scaling`` (or ``thread_scaling``) table: per
    framework, workload, mode, scaling, simulated and kind (curves with no N > 1 are left
    out). Columns: the curve's key, ``model``, ``sigma``, ``kappa``, ``label``, ``n_max``,
    and the projection's ``n``, ``speedup``, ``efficiency`` lists."""
    key = ["machine_id", "framework", "variant", "workload", "mode", "precision", "exec_mode",
           "scaling", "simulated", "kind"]
    if table.empty:
        return pd.DataFrame(columns=[*key, "model", "sigma", "kappa", "label", "n_max", "n",
                                     "speedup", "efficiency"])
    out = []
    for k, cur in table.groupby(key, dropna=False, sort=True):
        if not (cur["n"] > cur["baseline_n"]).any():
            continue
        rel = cur["n"] / cur["baseline_n"]
        p = project(rel, cur["speedup"], cur["speedup_low"], cur["speedup_high"])
        out.append({**dict(zip(key, k, strict=True)), "model": p["model"],
                    "sigma": p["params"]["sigma"], "kappa": p["params"]["kappa"],
                    "label": p["label"], "n_max": p["n_max"], "n": p["n"],
                    "speedup": p["speedup"], "efficiency": p["efficiency"]})
    return pd.DataFrame(out)


# ------------------------------------------------------------------- figure


def _seed_setting(table: pd.DataFrame) -> bool:
    """Curves of the seed's two-GPU claim: hardware GPUs, training, weak scaling."""
    return bool(not table.empty and not table["simulated"].any()
                and (table["kind"] == "gpu").all() and (table["mode"] == "train").all()
                and (table["scaling"] == "weak").all())


def scaling_figure(table: pd.DataFrame, *, title: str | None = None,
                   project_curves: bool = True, seed_claim: bool = True) -> Any:
    """Throughput and efficiency against N for the curves of ``table`` (a subset of
    ``device_scaling`` or ``thread_scaling``: typically one workload, mode and scaling kind,
    one line per framework), with the ideal line, each curve's projection dashed and
    labelled with its fitted parameters, and the seed's claim (on hardware GPUs' curves of
    training with weak scaling).
    "simulated" is in the title when any curve is. Returns a ``matplotlib.figure.Figure``
    (Agg backend; nothing is shown or saved)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.5), layout="constrained")
    ax_t, ax_e = fig.subplots(1, 2)
    axis = str(table["axis"].iloc[0]) if not table.empty else "devices"
    simulated = bool(table["simulated"].any()) if not table.empty else False
    curve_key = ["framework", "variant", "exec_mode", "scaling", "simulated"]
    n_top = 1
    for i, (k, cur) in enumerate(table.groupby(curve_key, dropna=False, sort=True)):
        name = " ".join(str(v) for v in k[:3]) + (f" ({k[3]})" if k[3] else "")
        n_top = _curve(ax_t, ax_e, cur.sort_values("n"), name, f"C{i}", n_top, project_curves)
    ax_e.axhline(1.0, color="gray", linestyle=":", label="ideal (efficiency 1)")
    if seed_claim and axis == "devices" and _seed_setting(table):
        seed_n, seed_s = TWO_GPUS.devices, TWO_GPUS.ratio("train") or math.nan
        ax_e.plot([seed_n], [seed_s / seed_n], "k*", markersize=12, label=SEED_LABEL)
    what = "devices" if axis == "devices" else "threads"
    _axes(ax_t, ax_e, what)
    head = title or f"scaling over {what}"
    if simulated:
        head += " — simulated devices (shared CPU cores: overhead, not hardware scaling)"
    fig.suptitle(head, fontsize=10)
    return fig


def _curve(ax_t: Any, ax_e: Any, cur: pd.DataFrame, name: str, color: str, n_top: int,
           project_curves: bool) -> int:
    """One curve: measured throughput and efficiency with their intervals, its projection
    (dashed) and its ideal line (dotted). Returns the largest N drawn so far."""
    n = cur["n"].to_numpy(dtype=float)
    ips = cur["images_per_s"].to_numpy(dtype=float)
    ax_t.errorbar(n, ips, yerr=[ips - cur["ips_low"], cur["ips_high"] - ips], marker="o",
                  color=color, label=name, capsize=3)
    eff = cur["efficiency"].to_numpy(dtype=float)
    ax_e.errorbar(n, eff, yerr=[eff - cur["efficiency_low"], cur["efficiency_high"] - eff],
                  marker="o", color=color, label=name, capsize=3)
    base = cur[cur["n"] == cur["baseline_n"]]
    ips1 = float(base["images_per_s"].iloc[0]) if not base.empty else float(ips[0])
    n0 = float(cur["baseline_n"].iloc[0])
    n_top = max(n_top, int(n.max()))
    if project_curves and (cur["n"] > cur["baseline_n"]).any():
        p = project(n / n0, cur["speedup"], cur["speedup_low"], cur["speedup_high"])
        pn = np.asarray(p["n"], dtype=float)
        sel = pn >= n.max() / n0
        ax_t.plot(pn[sel] * n0, ips1 * np.asarray(p["speedup"])[sel], "--", color=color,
                  label=f"{name}: {p['label']}")
        ax_e.plot(pn[sel] * n0, np.asarray(p["efficiency"])[sel], "--", color=color,
                  label=f"{name}: {p['label']}")
        n_top = max(n_top, int(pn.max() * n0))
    ideal_n = np.array([n0, max(n_top, 2)], dtype=float)
    ax_t.plot(ideal_n, ips1 * ideal_n / n0, ":", color=color, alpha=0.6,
              label=f"{name}: ideal (linear)")
    return n_top


def _axes(ax_t: Any, ax_e: Any, what: str) -> None:
    """Labels and scales: log-log throughput, efficiency from 0, N in powers of two."""
    ax_t.set_xlabel(f"N ({what})")
    # log throughput: the ideal and projected lines run far above the measured points, which a
    # linear axis would flatten against zero; on log-log axes linear scaling is a straight line
    ax_t.set_yscale("log")
    ax_t.set_ylabel("images/s (95% CI, log scale)")
    ax_e.set_xlabel(f"N ({what})")
    ax_e.set_ylabel("efficiency = speedup / N (95% CI)")
    ax_e.set_ylim(bottom=0)
    for ax in (ax_t, ax_e):
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    ax_e.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)



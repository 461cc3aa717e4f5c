"""What a buyer asks of the rows: memory, latency tails, the largest batch that fits
and its knee, and images per joule. Pure functions from rows to DataFrames; no HTML, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cnnbench.analyse.compare import NO_CLEAR, ONE_RUN_NOTE, CellKey
from cnnbench.analyse.compare import rounds as runs
from cnnbench.core.keys import BUYER_CONFIG as CONFIG
from cnnbench.core.prices import Price, price_for
from cnnbench.measure.percentiles import QUANTILES

KNEE_WITHIN = 0.05  # the knee: the smallest batch within 5% of the best throughput
TAIL_RESAMPLES = 1000


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty or "status" not in df:
        return df.iloc[0:0]
    return df[(df["status"] == "ok") & (df["mode"] != "peak")]


def memory_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and batch size: the largest peak RSS, what the cell added over the
    import, and the device peak (GPU cells), over its ok rows (fit tries included)."""
    ok = _ok(df)
    cols = [*CONFIG, "batch_size", "peak_rss_mb", "rss_added_mb", "device_peak_mb", "peak_vm_mb"]
    if ok.empty or "peak_rss_mb" not in ok:
        return pd.DataFrame(columns=cols)
    ok = ok[ok["peak_rss_mb"].notna()]
    agg = {c: "max" for c in cols[len(CONFIG) + 1:] if c in ok}
    out = ok.groupby([*CONFIG, "batch_size"], dropna=False).agg(agg).reset_index()
    return out.reindex(columns=cols).sort_values([*CONFIG, "batch_size"], ignore_index=True)


def fits_in(memory: pd.DataFrame, gb: float) -> pd.DataFrame:
    """Per configuration: the largest batch measured whose peak (device peak on a GPU, else
    the worker's peak RSS) stayed within ``gb`` GiB, and that peak."""
    rows = []
    for key, g in memory.groupby(CONFIG, dropna=False):
        peak = g["device_peak_mb"].where(g["device_peak_mb"].notna(), g["peak_rss_mb"])
        inside = g.assign(peak=peak)[peak <= gb * 1024].sort_values("batch_size")
        best = inside.iloc[-1] if not inside.empty else None
        rows.append({**dict(zip(CONFIG, key, strict=True)), "limit_gb": gb,
                     "largest_batch": int(best["batch_size"]) if best is not None else None,
                     "peak_mb": float(best["peak"]) if best is not None else math.nan})
    return pd.DataFrame(rows, columns=[*CONFIG, "limit_gb", "largest_batch", "peak_mb"])


def fit_curves(df: pd.DataFrame) -> pd.DataFrame:
    """The largest-batch searches: per configuration and batch tried, the status and the
    throughput (ok tries); ``knee`` marks each configuration's knee, ``largest`` its
    largest batch that ran ok, ``limit_mb``/``limit_kind`` the search's limit."""
    cols = [*CONFIG, "batch_size", "status", "images_per_s", "peak_rss_mb", "limit_mb",
            "limit_kind", "knee", "largest"]
    if df.empty or "fit_try" not in df:
        return pd.DataFrame(columns=cols)
    tries = df[df["fit_try"].fillna(False).astype(bool)].copy()
    if tries.empty:
        return pd.DataFrame(columns=cols)
    tries = tries.rename(columns={"memory_limit_mb": "limit_mb", "memory_limit_kind": "limit_kind"})
    parts = []
    for _, g in tries.groupby(CONFIG, dropna=False):
        g = g.sort_values("batch_size").drop_duplicates("batch_size", keep="last").copy()
        ok = g[g["status"] == "ok"]
        g["knee"] = g["batch_size"] == knee(ok["batch_size"], ok["images_per_s"])
        g["largest"] = g["batch_size"] == (ok["batch_size"].max() if not ok.empty else -1)
        parts.append(g)
    return pd.concat(parts, ignore_index=True).reindex(columns=cols)


def knee(batches: Sequence[int] | pd.Series, ips: Sequence[float] | pd.Series,
         within: float = KNEE_WITHIN) -> int | None:
    """The smallest batch whose throughput is within ``within`` of the best; None if none."""
    b, v = np.asarray(batches, dtype=float), np.asarray(ips, dtype=float)
    good = np.isfinite(v)
    if not good.any():
        return None
    best = v[good].max()
    return int(b[good & (v >= (1 - within) * best)].min())


def latency_table(df: pd.DataFrame) -> pd.DataFrame:
    """The latency cells' percentiles (milliseconds) with their intervals, per row."""
    ok = _ok(df)
    ok = ok[ok["mode"] == "latency"] if not ok.empty else ok
    cols = [*CONFIG, "batch_size", "steps", "flags"]
    for name in QUANTILES:
        cols += [f"{name}_ms", f"{name}_low_ms", f"{name}_high_ms"]
    rows = []
    for r in ok.to_dict("records"):
        out = {c: r.get(c) for c in [*CONFIG, "batch_size", "flags"]}
        out["steps"] = len(runs(r.get("samples_s")))
        for name in QUANTILES:
            for suffix in ("", "_low", "_high"):
                v = r.get(f"latency_{name}{suffix}_s")
                out[f"{name}{suffix}_ms"] = 1e3 * v if v is not None and math.isfinite(v) else math.nan
        rows.append(out)
    return pd.DataFrame(rows, columns=cols)


def latency_cdf(samples_s: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted step times in ms, empirical cumulative probability) for a CDF chart."""
    xs = np.sort(np.asarray(samples_s, dtype=float)) * 1e3
    return xs, np.arange(1, xs.size + 1) / max(xs.size, 1)


def energy_table(df: pd.DataFrame, prices: Sequence[Price] = ()) -> pd.DataFrame:
    """Per ok row: images per joule from the measured energy where the row has it, else from
    the watts the prices file declares for its machine and the row's throughput; ``source``
    says which was used, ``reason`` why nothing was measured."""
    ok = _ok(df)
    rows = []
    for r in ok.to_dict("records"):
        measured = r.get("joules_per_image")
        price = price_for(str(r.get("machine_id")), list(prices))
        watts = price.watts if price is not None else None
        if measured is not None and isinstance(measured, float) and measured > 0:
            ipj, w, source = 1 / measured, r.get("mean_watts"), "measured"
        elif watts and r.get("images_per_s"):
            ipj, w, source = r["images_per_s"] / watts, watts, "declared"
        else:
            ipj, w, source = math.nan, math.nan, "none"
        rows.append({**{c: r.get(c) for c in [*CONFIG, "batch_size"]},
                     "images_per_joule": ipj, "watts": w, "source": source,
                     "reason": r.get("energy_reason")})
    return pd.DataFrame(rows, columns=[*CONFIG, "batch_size", "images_per_joule", "watts",
                                       "source", "reason"])


def compare_tail(base: Mapping[CellKey, Sequence[np.ndarray]],
                 cont: Mapping[CellKey, Sequence[np.ndarray]], columns: Sequence[str],
                 q: float = 0.99, seed: int = 0, n_resamples: int = TAIL_RESAMPLES
                 ) -> pd.DataFrame:
    """Cells in both sides compared on a latency quantile, in ``compare.compare_samples``'s
    columns: ``*_ips`` hold the quantile in milliseconds, ``ratio`` is baseline / contender
    (above 1: the contender's tail is shorter, as a throughput ratio above 1 is faster), its
    interval a percentile bootstrap over the steps of both (runs pooled)."""
    from cnnbench.analyse.compare import _COLUMNS

    rng = np.random.default_rng(seed)
    rows = []
    for k in sorted(set(base) & set(cont), key=str):
        b, c = np.concatenate(base[k]), np.concatenate(cont[k])
        qb, qc = np.quantile(b, q), np.quantile(c, q)
        rb = np.quantile(rng.choice(b, (n_resamples, b.size)), q, axis=1)
        rc = np.quantile(rng.choice(c, (n_resamples, c.size)), q, axis=1)
        ratios = rb / rc
        lo, hi = np.quantile(ratios, [0.025, 0.975])
        sig = bool(lo > 1 or hi < 1)
        verdict = ("faster" if lo > 1 else "slower") if sig else NO_CLEAR
        ratio = qb / qc
        text = f"{ratio:.2f}x [{lo:.2f}, {hi:.2f}]" + ("" if sig else f" ({NO_CLEAR})")
        rows.append({**dict(zip(columns, k, strict=True)),
                     "baseline_ips": 1e3 * qb, "baseline_low": 1e3 * np.quantile(rb, 0.025),
                     "baseline_high": 1e3 * np.quantile(rb, 0.975),
                     "contender_ips": 1e3 * qc, "contender_low": 1e3 * np.quantile(rc, 0.025),
                     "contender_high": 1e3 * np.quantile(rc, 0.975), "ratio": ratio,
                     "low": lo, "high": hi, "p_value": math.nan, "significant": sig,
                     "verdict": verdict, "runs_baseline": len(base[k]),
                     "runs_contender": len(cont[k]), "test": f"bootstrap p{100 * q:g}",
                     "note": ONE_RUN_NOTE if len(base[k]) == len(cont[k]) == 1 else "",
                     "text": text})
    return pd.DataFrame(rows, columns=[*columns, *_COLUMNS])


def tail_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows ``compare --metric p99`` compares: ok latency cells."""
    return df[df["mode"] == "latency"] if not df.empty else df


def fit_summary(curves: pd.DataFrame) -> list[dict[str, Any]]:
    """Per searched configuration: its largest batch and its knee (for the buyers' view)."""
    out = []
    for key, g in curves.groupby(CONFIG, dropna=False):
        big, kn = g[g["largest"]], g[g["knee"]]
        out.append({**dict(zip(CONFIG, key, strict=True)),
                    "largest_batch": int(big["batch_size"].iloc[0]) if not big.empty else None,
                    "knee_batch": int(kn["batch_size"].iloc[0]) if not kn.empty else None,
                    "limit_mb": g["limit_mb"].iloc[0], "limit_kind": g["limit_kind"].iloc[0]})
    return out

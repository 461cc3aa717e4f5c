"""Measurement validity: the device's measured peak, MFU, and plausibility flags.

* **Peak**: before the cells, each framework multiplies two n x n matrices on each device,
  thread count and precision of the plan (a "peak" probe cell, timed by the same protocol).
  A device's peak is the best probe: the fastest round of any framework's GEMM, because
  noise only ever makes a probe slower.
* **Achieved FLOP/s** = flops_per_image x images/s x (3 for train, 1 for infer): a training
  step is one forward and a backward pass of about twice the forward's multiply-adds
  (gradients of activations and of weights).
* **MFU** = achieved / peak. A cell above its device's peak is flagged `above_peak`; so is a
  cell whose step time shrinks, beyond its confidence interval, as its batch grows
  (`time_not_growing`), or whose interval missed the target (`ci_wide`, set by the timer).
"""

from __future__ import annotations

from typing import Any

from cnnbench.core.keys import group_key, peak_key, probe_peak
from cnnbench.plan.probes import TRAIN_FLOP_FACTOR


class Validity:
    """Accumulates peaks and per-group step times while a sweep runs; annotates rows."""

    def __init__(self) -> None:
        self.peaks: dict[tuple[Any, ...], float] = {}
        self.history: dict[tuple[Any, ...], list[tuple[int, float, float]]] = {}

    def add_probe(self, row: dict[str, Any]) -> None:
        peak = probe_peak(row)
        if peak is not None:
            key = peak_key(row)
            self.peaks[key] = max(peak, self.peaks.get(key, 0.0))

    def annotate(self, row: dict[str, Any]) -> None:
        """Fill achieved/peak/MFU and add plausibility flags to an ok cell row (in place)."""
        row.setdefault("achieved_flops_per_s", None)
        row.setdefault("peak_flops_per_s", None)
        row.setdefault("mfu", None)
        if row["status"] != "ok" or row["mode"] == "peak" or row["framework"] == "null":
            return  # the null adapter does none of the FLOPs its workload names
        factor = TRAIN_FLOP_FACTOR if row["mode"] == "train" else 1
        achieved = row["flops_per_image"] * row["images_per_s"] * factor
        row["achieved_flops_per_s"] = achieved
        peak = self.peaks.get(peak_key(row))
        if peak and not row.get("simulated") and (row.get("n_devices") or 1) > 1:
            peak *= row["n_devices"]  # N real devices; simulated ones share one's peak
        flags = list(row.get("flags") or [])
        if peak:
            row["peak_flops_per_s"] = peak
            row["mfu"] = achieved / peak
            if row["mfu"] > 1:
                flags.append("above_peak")
        else:
            flags.append("no_peak")
        group = group_key(row)
        b = row["batch_size"]
        lo_s, hi_s = row["batch_size"] / row["ci95_high"], row["batch_size"] / row["ci95_low"]
        for other_b, other_lo, other_hi in self.history.get(group, []):
            # A bigger batch cannot take clearly less time per step than a smaller one.
            if (other_b < b and hi_s < other_lo) or (other_b > b and other_hi < lo_s):
                flags.append("time_not_growing")
                break
        self.history.setdefault(group, []).append((b, lo_s, hi_s))
        row["flags"] = flags

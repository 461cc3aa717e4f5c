"""Latency percentiles with their intervals, and a latency CDF per device."""

from __future__ import annotations

from cnnbench.analyse import buyer
from cnnbench.analyse.compare import rounds as runs
from cnnbench.report import buyer_charts
from cnnbench.report.htmlkit import Section, figure, table
from cnnbench.report.sections.base import Inputs
from cnnbench.report.sections.registry import section


def _interval(v: float, lo: float, hi: float) -> str:
    def f(x: float) -> str:
        return "open" if x != x else f"{x:.2f}"  # NaN: too few steps for this end

    return f"{v:.2f} [{f(lo)}, {f(hi)}]"


@section("latency", "Latency", order=86)
def latency(inp: Inputs, sec: Section) -> None:
    lat = buyer.latency_table(inp.df)
    if lat.empty:
        sec.empty = "No latency cells (run with --latency, or --modes latency)."
        return
    sec.add("Every step timed on its own, ending with the device's sync. Percentiles in ms with "
            "distribution-free 95% intervals (order statistics); an interval end is 'open' when "
            "the cell ran too few steps for it (the p99 needs 368, the p99.9 3,688).")
    shown = lat[["framework", "workload", "exec_mode", "device", "batch_size", "steps"]].copy()
    for name in ("p50", "p90", "p99", "p999"):
        shown[f"{name} ms"] = [_interval(v, lo, hi) for v, lo, hi in zip(
            lat[f"{name}_ms"], lat[f"{name}_low_ms"], lat[f"{name}_high_ms"], strict=True)]
    shown["flags"] = [", ".join(f for f in (fl or []) if f == "p99_interval_short")
                      for fl in lat["flags"]]
    sec.add(table(shown, numeric=["batch_size", "steps"], download="latency.csv"))
    ok = inp.df[(inp.df["status"] == "ok") & (inp.df["mode"] == "latency")]
    for device, g in ok.groupby("device"):
        curves = []
        for r in g.to_dict("records"):
            xs, ps = buyer.latency_cdf(runs(r["samples_s"]))
            curves.append((f"{r['framework']} {r['workload']} {r['exec_mode']} b{r['batch_size']}",
                           xs, ps))
        sec.add(figure(buyer_charts.latency_cdf(curves, f"Latency CDF on {device}"),
                       f"latency CDF on {device}"))

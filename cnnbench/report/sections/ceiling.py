"""The ceiling: each framework's fastest configuration found by `cnnbench tune`, with its
gain over the default and the frameworks ranked at their ceilings (cnnbench.analyse.ceiling)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cnnbench.analyse.ceiling import PrecisionGain, ceilings, precision_gains, ranking
from cnnbench.report.htmlkit import Section, table
from cnnbench.report.sections.base import FRAMEWORK_NAMES, MODE_NAMES, Inputs
from cnnbench.report.sections.registry import section


def _ips(v: float, lo: float, hi: float) -> str:
    return f"{v:,.1f} [{lo:,.1f}, {hi:,.1f}]"


@section("ceiling", "The ceiling", order=35)
def ceiling(inp: Inputs, sec: Section) -> None:
    ceils = ceilings(inp.df)
    if not ceils:
        sec.empty = ("No ceiling search in these results: `cnnbench tune` finds each "
                     "framework's fastest configuration that passes the oracle.")
        return
    sec.add("Each framework's fastest configuration found by successive halving over the knobs "
            "it has, after an accuracy gate against the oracle; the best two and the default "
            "then ran in fresh, interleaved processes. Images/s with 95% intervals; a winner "
            "is named only when its interval excludes every other finalist.")
    rows = []
    for c in ceils:
        k = c.key
        rows.append({
            "framework": FRAMEWORK_NAMES.get(k["framework"], k["framework"]),
            "workload": k["workload"], "mode": MODE_NAMES.get(k["mode"], k["mode"]),
            "device": k["device"], "best configuration": c.best,
            "images/s [95% CI]": _ips(c.images_per_s, c.low, c.high), "runs": c.runs,
            "verdict": "winner" if c.named else "cannot be told apart from " + "; ".join(c.ties),
            "default": c.default or "",
            "gain over default": c.gain.text() if c.gain else (
                "the default is the best" if c.default == c.best else "no default run"),
            "runs (best/default)": f"{c.gain.runs_contender}/{c.gain.runs_baseline}"
            if c.gain else "",
        })
    sec.add(table(pd.DataFrame(rows), numeric=["runs"], download="ceiling.csv"))
    ranked_rows = []
    for key, ranked in ranking(inp.df, ceils):
        for i, (fw, c, nxt) in enumerate(ranked, 1):
            ranked_rows.append({
                "workload": key["workload"], "mode": MODE_NAMES.get(key["mode"], key["mode"]),
                "device": key["device"], "rank": i, "framework": FRAMEWORK_NAMES.get(fw, fw),
                "ceiling images/s": _ips(c.images_per_s, c.low, c.high),
                "over the next": nxt.text() if nxt else "",
            })
    if ranked_rows:
        sec.add("The frameworks ranked at their ceilings, each with its ratio over the next one "
                "down (\"no clear difference\" when the interval crosses 1).")
        sec.add(table(pd.DataFrame(ranked_rows), numeric=["rank"]))
    _bf16(inp, sec, {(c.key["machine_id"], c.key["framework"], c.key["workload"], c.key["mode"],
                      c.key["device"]) for c in ceils})


def _no_bf16(inp: Inputs, machine_id: str, framework: str, device: str) -> str:
    """Why a framework had no bf16 candidate on this machine: the knob's declared absence."""
    from adapters.knobs import knobs

    flags = ((inp.machines.get(machine_id) or {}).get("cpu") or {}).get("flags") or []
    k = knobs(framework, "cpu" if device.startswith("cpu") else "gpu", flags)
    return k.absent.get("bf16") or f"{FRAMEWORK_NAMES.get(framework, framework)} declares no bf16"


def _bf16(inp: Inputs, sec: Section, groups: set[tuple[Any, ...]]) -> None:
    """bf16 over fp32 per tuned group: the gain with its interval, or why there is none."""
    gains: dict[tuple[Any, ...], PrecisionGain] = {
        tuple(g.key[k] for k in ("machine_id", "framework", "workload", "mode", "device")): g
        for g in precision_gains(inp.searched)}
    rows = []
    for key in sorted(groups | set(gains)):
        mid, fw, wl, mode, dev = key
        g = gains.get(key)
        rows.append({
            "framework": FRAMEWORK_NAMES.get(fw, fw), "workload": wl,
            "mode": MODE_NAMES.get(mode, mode), "device": dev,
            "bf16 configuration": g.config if g and g.config else "",
            "bf16 over fp32": g.gain.text() if g and g.gain else (
                g.reason if g else _no_bf16(inp, mid, fw, dev)),
            "runs (bf16/fp32)": f"{g.gain.runs_contender}/{g.gain.runs_baseline}"
            if g and g.gain else "",
            "from": g.source if g else "",
        })
    if rows:
        sec.add("bf16 over fp32 for the same configuration otherwise (the best bf16 candidate "
                "and its fp32 twin), from the latest stage of the search both reached; or why "
                "a framework had no bf16 candidate here.")
        sec.add(table(pd.DataFrame(rows)))

"""What a build for your CPU buys you: every ISA level, configuration variant and alternative
build against the default build (``analyse.builds``), with the kernels that ran."""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import builds as B
from cnnbench.analyse.claims import TF_BUILD
from cnnbench.analyse.pairs import records
from cnnbench.report import charts
from cnnbench.report.htmlkit import Section, details, figure, para, table
from cnnbench.report.sections.base import (
    MAX_CHARTS,
    MAX_COMPARISONS,
    Inputs,
    forest,
    fw,
    system,
)
from cnnbench.report.sections.registry import section

INTRO = (
    "Each ISA ladder level (the same build capped to an older CPU's instruction set), "
    "configuration variant and alternative build against the same framework's default "
    "build at the same workload, mode, batch, precision, execution mode and threads, "
    "with the kernels that actually ran (from oneDNN's verbose log, ATen's CPU "
    "capability, XLA's flags). A level above this CPU is not run: it shows as "
    "unsupported. Beside it, the seeds' anchor: " + TF_BUILD.text + " It is stated in "
    "the direction of the seed's figure, the build for the CPU over the stock one: the "
    "default over a capped level, an alternative or custom build over the default.")


def _ladder_charts(gains: pd.DataFrame) -> list[Markup]:
    """Throughput against the ISA ladder, per framework: one chart per machine, workload,
    batch and precision, train and infer side by side; levels this CPU lacks are on the axis,
    marked, with no point."""
    out: list[Markup] = []
    for sub, levels, missing in B.ladders(gains, MAX_CHARTS):
        data = pd.DataFrame({"panel": sub["mode"], "series": sub["framework"].map(fw),
                             "level": sub["isa_level"], "ratio": sub["ratio"],
                             "low": sub["low"], "high": sub["high"]})
        first = sub.iloc[0]
        title = (f"{system(first['machine_id'], first['device'])} {first['workload']} "
                 f"b{int(first['batch_size'])} {first['precision']}: throughput against the "
                 "ISA ladder")
        panels = [m for m in ("train", "infer") if m in set(sub["mode"])]
        out.append(figure(charts.ladder(data, levels, panels, title, missing), title))
    return out


def _gains_table(gains: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(gains["machine_id"], gains["device"],
                                                         strict=True)],
        "workload": gains["workload"] + " " + gains["mode"] + " b"
        + gains["batch_size"].astype(int).astype(str),
        "framework": gains["framework"].map(fw),
        "variant": [f"{v} ({k})" if isinstance(k, str) and k else str(v)
                    for v, k in zip(gains["variant"], gains["variant_kind"], strict=True)],
        "vs default [95% CI]": gains["text"],
        "kernels that ran": [f"{a or '?'} (default: {b or '?'})" + (" — cap ignored" if c else "")
                             for a, b, c in zip(gains["kernel_isa"], gains["default_kernel_isa"],
                                                gains["cap_ignored"], strict=True)],
        "version": gains["build_version"].fillna(""),
        "against the seed's claim": gains["claim_text"].fillna(""),
        "note": gains["note"].fillna(""),
    })


def _isa_matrices(inp: Inputs, sec: Section) -> None:
    for mid, m in inp.machines.items():
        flags = set((m.get("cpu") or {}).get("flags") or [])
        if not flags:
            continue
        mat = B.isa_matrix(inp.df[inp.df["machine_id"] == mid], flags)
        if not mat.empty:
            sec.add(details(f"{mid}: what each build was compiled for and dispatches to, "
                            "against this CPU's extensions", table(mat)))


@section("builds", "What a build for your CPU buys you", order=50)
def builds(inp: Inputs, sec: Section) -> None:
    rows = B.with_variants(inp.df)
    if rows.empty:
        sec.empty = ("No build variant was measured beside the default build (use e.g. "
                     "--variants default,x86-64-v2,x86-64-v3,x86-64-v4).")
        return
    gains = B.build_gains(rows).head(MAX_COMPARISONS)
    if gains.empty:
        sec.empty = "No variant was measured with its default build at the same settings."
        return
    sec.add(INTRO)
    measured = gains[gains["ratio"].notna()]
    if not measured.empty:
        sec.add(forest(measured, [f"{r['workload']} {r['mode']} b{int(r['batch_size'])}: "
                                  f"{fw(r['framework'])} {r['variant']}"
                                  for r in records(measured)],
                       "Variant or build / the default build"))
    for fig_ in _ladder_charts(gains):
        sec.add(fig_)
    sec.add(table(_gains_table(gains), download="builds.csv.gz"))
    if (gains["framework"] == "jax").any():
        sec.add(para(B.jax_note(), "note"))
    _isa_matrices(inp, sec)

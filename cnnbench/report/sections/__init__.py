"""The report's sections, one function each, from the analysis layer's DataFrames.

Every ratio here comes from ``cnnbench.analyse.compare`` (a comparison of two cells' raw samples,
with its interval and verdict); no section computes a ratio of its own. Each section is
bounded: past a few hundred cells it summarises (best per group, a distribution) and keeps
its full table as a compressed download, so 100,000 cells make a report of a few MB.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from adapters import ADAPTERS
from cnnbench.analyse import compare as an
from cnnbench.analyse.claims import TF_BUILD, check_claims
from cnnbench.core.keys import KEY
from cnnbench.core.prices import price_for
from cnnbench.core.results import REFERENCE_LABEL
from cnnbench.report import charts
from cnnbench.report.htmlkit import Section, bullets, details, esc, figure, para, table
from cnnbench.report.render import peaks
from cnnbench.report.sections.base import (
    GROUP,
    LIKE,
    MAX_CHART_BARS,
    MAX_CHARTS,
    MAX_COMPARISONS,
    MAX_FINDINGS,
    MODE_NAMES,
    SYSTEM,
    Inputs,
    _compare,
    _forest,
    _notes,
    _short_labels,
    _simulated_note,
    ci,
    fw,
    labels_of,
    nice_label,
    num,
    recs_of,
    system,
)


def summary(inp: Inputs) -> Section:
    sec = Section("summary", "Summary")
    cells = inp.hardware
    if cells.empty:
        sec.empty = ("No successful cells: nothing to summarise (see Cells that did not run)."
                     if inp.cells.empty else _simulated_note(inp))
        return sec
    groups = list(cells.groupby(GROUP, sort=False))
    findings, rows = [], []
    for i, (g, sub) in enumerate(groups):
        mid, dev, wl, mode = g
        sub = sub.assign(label=an.config_labels(sub)).sort_values("ips", ascending=False)
        top = recs_of(sub.iloc[[0]])[0]
        where = f"{wl} {MODE_NAMES.get(str(mode), str(mode))} on {system(mid, dev)}"
        rows.append({"machine / device": system(mid, dev), "workload": wl, "mode": mode,
                     "fastest": nice_label(top), "img/s": num(top["ips"]),
                     "95% CI": ci(top["low"], top["high"]), "configurations": len(sub)})
        if i >= MAX_FINDINGS:
            continue
        if len(sub) == 1:
            findings.append(f"{where}: {nice_label(top)} is the only configuration measured, "
                            f"{num(top['ips'])} img/s {ci(top['low'], top['high'])}.")
            continue
        second = recs_of(sub.iloc[[1]])[0]
        cmp = _compare(inp, second, top)
        if cmp is None:
            continue
        if cmp.significant:
            findings.append(f"{where}: {nice_label(top)} is fastest, {num(top['ips'])} img/s "
                            f"{ci(top['low'], top['high'])}, {cmp.text()} {nice_label(second)}.")
        else:
            findings.append(f"{where}: the top two are not distinguishable: "
                            f"{nice_label(top)} ({num(top['ips'])} img/s) and "
                            f"{nice_label(second)} ({num(second['ips'])} img/s), {cmp.text()}.")
    sec.add(f"{len(cells):,} cells measured on {cells['machine_id'].nunique()} machine(s); "
            "each finding compares the fastest configuration with the runner-up, with the 95% "
            "interval of their throughput ratio (see Method). " + _simulated_note(inp))
    sec.add(bullets(findings))
    if len(groups) > MAX_FINDINGS:
        sec.add(f"{len(groups) - MAX_FINDINGS:,} more groups are in the table below.")
    sec.add(table(pd.DataFrame(rows), numeric=["img/s", "configurations"],
                  download="summary.csv.gz"))
    one_run = int((cells["runs"] == 1).sum())
    if one_run:
        sec.add(para(f"{one_run:,} of {len(cells):,} cells have one run: their intervals cover "
                     "the noise between rounds, not between processes; use --repeat 3 for "
                     "comparisons that do.", "note"))
    return sec


# ------------------------------------------------------------------- 2 throughput

_MAIN = ["workload", "mode", "batch", "configuration", "img/s", "95% CI", "runs", "flags"]


def throughput(inp: Inputs) -> Section:
    sec = Section("throughput", "Throughput")
    cells = inp.cells
    if cells.empty:
        sec.empty = "No successful cells to chart."
        return sec
    sec.add("Images/s of each cell: the median step time of its rounds (several runs: the "
            "geometric mean of the runs' medians), with its 95% interval as whiskers. Series "
            "labels name everything that differs between the cells of a chart.")
    systems = list(cells.groupby(SYSTEM, sort=False))
    for i, ((mid, dev), sub) in enumerate(systems):
        if i >= MAX_CHARTS:
            sec.add(f"{len(systems) - MAX_CHARTS} more machines/devices are in the table only.")
            break
        sub = sub.assign(series=an.config_labels(sub, fields=[f for f in an.CONFIG
                                                               if f not in ("batch_size",)]),
                         group=sub["workload"] + " " + sub["mode"] + " b"
                         + sub["batch_size"].astype(int).astype(str))
        title = f"Throughput on {system(mid, dev)}"
        if len(sub) > MAX_CHART_BARS:
            best = sub.sort_values("ips", ascending=False).groupby(["workload", "mode"],
                                                                   sort=False).head(1)
            if len(best) > MAX_CHART_BARS:
                fig = charts.plt.figure(figsize=(charts.WIDTH_IN, 3.5))
                ax = fig.add_subplot()
                v = best["ips"].to_numpy(float)
                ax.hist(np.log10(v[v > 0]), bins=40)
                ax.set_xlabel("log10 images/s of the best configuration per workload and mode")
                ax.set_ylabel("groups")
                ax.set_title(f"{title}: distribution over {len(best):,} workload groups")
                sec.add(figure(fig, title))
                continue
            best = best.assign(series="best configuration",
                               group=best["group"] + " " + best["label"])
            sec.add(f"{system(mid, dev)}: {len(sub):,} cells; the chart shows the best "
                    "configuration of each workload and mode.")
            sub = best
        fig = charts.grouped_bars(sub, "group", "series", "ips", "low", "high", title,
                                  "images/s (95% CI)")
        sec.add(figure(fig, title))
    t = pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(cells["machine_id"], cells["device"],
                                                         strict=True)],
        "workload": cells["workload"], "mode": cells["mode"],
        "batch": cells["batch_size"].astype(int), "configuration": labels_of(cells),
        "img/s": cells["ips"].map(num), "95% CI": [ci(a, b) for a, b in zip(
            cells["low"], cells["high"], strict=True)],
        "runs": cells["runs"].astype(int),
        "flags": cells["flags"].map(lambda f: ", ".join(f) if isinstance(f, list) else ""),
    })
    if t["machine / device"].nunique() == 1:
        t = t.drop(columns="machine / device")
    sec.add(table(t, numeric=["batch", "img/s", "runs"], download="cells.csv.gz"))
    more = pd.DataFrame({
        "cell_id": cells["cell_id"], "framework version": cells["framework_version"],
        "variant": cells["variant"],
        "threads in force": cells["threads_set"].map(
            lambda d: f"{d.get('intra_op')}/{d.get('inter_op')}" if isinstance(d, dict) else ""),
        "MFU %": (100 * cells["mfu"].astype(float)).map(num),
        "first step s": cells["first_step_s"].map(num),
        "spread %": np.where(cells["runs"] > 1, (100 * cells["spread"].astype(float)).map(num), ""),
        "±% (one run)": (100 * cells["rel_ci"].astype(float)).map(num),
    })
    sec.add(details("More columns: cell id, version, threads in force, MFU, first step, spread",
                    table(more, numeric=["MFU %", "first step s", "spread %", "±% (one run)"],
                          download="cells-more.csv.gz")))
    return sec


# ------------------------------------------------------------------- 3 speedup


def _default_config(row: Mapping[Any, Any]) -> bool:
    info = ADAPTERS.get(str(row["framework"]))
    return (row["variant"] == "default" and row["options_key"] in ("{}", "")
            and info is not None and row["exec_mode"] == info.default_exec_mode)


def _against(inp: Inputs, group: Sequence[str], is_base: Callable[[Mapping[Any, Any]], bool],
             ) -> tuple[pd.DataFrame, int]:
    """Each cell against the one baseline cell of its ``group`` (none or several: skipped).
    Plain dicts, not a pandas groupby: 100,000 cells make as many groups."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    get = operator.itemgetter(*group)
    for r in inp.records:
        groups.setdefault(get(r), []).append(r)
    rows: list[dict[str, Any]] = []
    total = 0
    for recs in groups.values():
        if len(recs) < 2:
            continue
        bases = [r for r in recs if is_base(r)]
        if len(bases) != 1:
            continue
        for r in recs:
            if r is bases[0]:
                continue
            total += 1
            if len(rows) < MAX_COMPARISONS:
                cmp = _compare(inp, bases[0], r)
                if cmp is not None:
                    rows.append({**r, **_cmp_fields(cmp), "base_label": nice_label(bases[0])})
    return pd.DataFrame(rows), total


def _cmp_fields(cmp: an.Comparison) -> dict[str, Any]:
    return {"ratio": cmp.ratio, "low": cmp.low, "high": cmp.high,
            "significant": cmp.significant, "text": cmp.text(), "note": cmp.note,
            "baseline_ips": float("nan"), "contender_ips": float("nan"),
            "runs_baseline": cmp.runs_baseline, "runs_contender": cmp.runs_contender}


def _speedup_rows(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(rows["machine_id"], rows["device"],
                                                         strict=True)],
        "workload": rows["workload"] + " " + rows["mode"] + " b"
        + rows["batch_size"].astype(int).astype(str) + " " + rows["precision"],
        "configuration": labels_of(rows),
        "baseline": rows["base_label"],
        "img/s": rows["ips"].map(num),
        "ratio [95% CI]": rows["text"],
    })


def parse_baseline(text: str) -> dict[str, str]:
    """'framework=pytorch,exec_mode=eager' -> a dict of cell key fields (ValueError else)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        k = k.strip()
        if not sep or not v.strip():
            raise ValueError(f"--baseline: expected FIELD=VALUE, got {part!r}")
        if k not in KEY or k == "machine_id":
            raise ValueError(f"--baseline: {k!r} is not a cell field (use "
                             f"{', '.join(f for f in KEY if f not in ('machine_id', 'options_key'))})")
        out[k] = v.strip()
    if not out:
        raise ValueError("--baseline: give at least one FIELD=VALUE")
    return out


def speedup(inp: Inputs) -> Section:
    sec = Section("speedup", "Speedup")
    if inp.cells.empty:
        sec.empty = "No successful cells: no speedups."
        return sec
    if inp.baseline:
        want = inp.baseline

        def is_base(r: Mapping[Any, Any]) -> bool:
            return all(str(r[k]) == v for k, v in want.items())

        what = ", ".join(f"{k}={v}" for k, v in want.items())
        # Like with like: everything the baseline does not name is the same on both sides.
        rows, total = _against(inp, [f for f in KEY if f not in want], is_base)
        sec.add(f"Against the baseline {what}: every other cell that differs from it only in "
                f"{', '.join(want)}, on the same machine and device.")
    else:
        rows, total = _against(inp, [f for f in KEY if f not in ("variant", "exec_mode",
                                                                 "options_key")],
                               _default_config)
        sec.add("Against each framework's own default configuration (its default execution "
                "mode, the default build, all threads): what each other setting of the same "
                "framework gains. Choose another baseline with --baseline, e.g. "
                "--baseline framework=pytorch,exec_mode=eager.")
    if rows.empty:
        sec.add("No cell has a baseline to compare with in its group (a speedup needs the "
                "baseline configuration measured at the same workload, mode, batch and "
                "precision).")
    else:
        sec.add(_forest(rows, _short_labels(rows), "Speedup over the baseline (see the table)"))
        sec.add(table(_speedup_rows(rows), numeric=["img/s"], download="speedup.csv.gz"))
        if total > len(rows):
            sec.add(f"{len(rows)} of {total:,} comparisons computed (the first in key order).")
        for n in _notes(rows):
            sec.add(para(n, "note"))
    # Against the fastest framework: each framework's best cell vs the best of all.
    best = (inp.cells.sort_values("ips", ascending=False)
            .groupby([*LIKE, "framework"], sort=False).head(1))
    best = best[best.groupby(LIKE, sort=False)["framework"].transform("nunique") > 1]
    recs: list[dict[str, Any]] = []
    for _, sub in best.groupby(LIKE, sort=False):
        if len(recs) >= MAX_COMPARISONS:
            break
        sub = sub.sort_values("ips", ascending=False)
        top = recs_of(sub.iloc[[0]])[0]
        for r in recs_of(sub.iloc[1:]):
            if len(recs) >= MAX_COMPARISONS:
                break
            cmp = _compare(inp, top, r)
            if cmp is not None:
                recs.append({**r, **_cmp_fields(cmp), "base_label": nice_label(top)})
    sec.add(Markup("<h3>Against the fastest framework on the same device</h3>"))
    if not recs:
        sec.add("Only one framework was measured per workload: nothing to rank.")
        return sec
    fast = pd.DataFrame(recs)
    sec.add("Each framework's best configuration as a fraction of the fastest framework's, at "
            "the same workload, mode, batch and precision (1 = as fast as the fastest).")
    sec.add(table(_speedup_rows(fast), numeric=["img/s"], download="vs-fastest.csv.gz"))
    # The heatmap: framework x workload, one per machine/device and mode.
    n_maps = 0
    for (mid, dev, mode), sub in best.groupby(["machine_id", "device", "mode"], sort=False):
        if sub["framework"].nunique() < 2 or n_maps >= MAX_CHARTS:
            continue
        n_maps += 1
        # One batch per workload: the one most frameworks ran (ties: the larger).
        cnt = sub.groupby(["workload", "batch_size", "precision"]).size().reset_index(name="n")
        pick = cnt.sort_values(["n", "batch_size"], ascending=False).groupby("workload").head(1)
        frs = sorted(sub["framework"].unique())
        wls = list(dict.fromkeys(pick["workload"]))[:16]  # a readable heatmap
        mat = pd.DataFrame(np.nan, index=[fw(f) for f in frs], columns=wls)
        notes = pd.DataFrame("", index=mat.index, columns=wls)
        for p in recs_of(pick[pick["workload"].isin(wls)]):
            s = sub[(sub["workload"] == p["workload"]) & (sub["batch_size"] == p["batch_size"])
                    & (sub["precision"] == p["precision"])]
            top = recs_of(s.sort_values("ips", ascending=False).iloc[[0]])[0]
            for r in recs_of(s):
                if r is top or r["cell_id"] == top["cell_id"]:
                    mat.loc[fw(r["framework"]), p["workload"]] = 1.0
                    notes.loc[fw(r["framework"]), p["workload"]] = "fastest"
                    continue
                cmp = _compare(inp, top, r)
                if cmp is not None:
                    mat.loc[fw(r["framework"]), p["workload"]] = cmp.ratio
                    notes.loc[fw(r["framework"]), p["workload"]] = (
                        f"{cmp.ratio:.2f}\n[{cmp.low:.2f}, {cmp.high:.2f}]"
                        + ("" if cmp.significant else "\nno clear diff."))
        title = f"{MODE_NAMES.get(str(mode), str(mode)).capitalize()} on {system(mid, dev)}: each " \
                "framework's best / the fastest"
        sec.add(figure(charts.heatmap(mat, notes, title, "ratio to the fastest"), title))
    return sec


# ------------------------------------------------------------------- 4 modes and precision


def modes(inp: Inputs) -> Section:
    sec = Section("modes", "Execution mode and precision")
    if inp.cells.empty:
        sec.empty = "No successful cells."
        return sec
    parts = []
    rows_e, tot_e = _against(inp, [f for f in KEY if f != "exec_mode"], lambda r: r[
        "exec_mode"] == (ADAPTERS[r["framework"]].default_exec_mode
                         if r["framework"] in ADAPTERS else ""))
    rows_p, tot_p = _against(inp, [f for f in KEY if f != "precision"],
                             lambda r: r["precision"] == "fp32")
    for rows, total, what, name in (
            (rows_e, tot_e, "each execution mode over the framework's default mode", "modes"),
            (rows_p, tot_p, "each precision over fp32, in the same execution mode",
             "precision")):
        if rows.empty:
            continue
        parts.append(what)
        sec.add(Markup(f"<h3>{esc(what.capitalize())}</h3>"))
        sec.add(_forest(rows, _short_labels(rows), what.capitalize()))
        sec.add(table(_speedup_rows(rows), numeric=["img/s"], download=f"{name}.csv.gz"))
        if total > len(rows):
            sec.add(f"{len(rows)} of {total:,} comparisons shown.")
    if not parts:
        sec.empty = ("No cell was measured in two execution modes or two precisions with all "
                     "else equal (use --exec-modes eager,compiled or --precisions fp32,bf16).")
    return sec


# ------------------------------------------------------------------- 5 threads


# ------------------------------------------------------------------- builds


def builds(inp: Inputs) -> Section:
    from cnnbench.analyse import builds as B

    sec = Section("builds", "What a build for your CPU buys you")
    df = inp.df
    rows = df[(df["mode"] != "peak") & df["variant"].notna()] if not df.empty else df
    if not rows.empty:
        rows = rows.assign(threads=rows["threads"].fillna(0).astype(int))
        has_variant = (rows["variant"] != B.BASELINE).groupby(
            [rows[c] for c in B.GROUP], dropna=False, sort=False).transform("any")
        rows = rows[has_variant]
    if rows.empty:
        sec.empty = ("No build variant was measured beside the default build (use e.g. "
                     "--variants default,x86-64-v2,x86-64-v3,x86-64-v4).")
        return sec
    gains = B.build_gains(rows).head(MAX_COMPARISONS)
    if gains.empty:
        sec.empty = "No variant was measured with its default build at the same settings."
        return sec
    sec.add("Each ISA ladder level (the same build capped to an older CPU's instruction set), "
            "configuration variant and alternative build against the same framework's default "
            "build at the same workload, mode, batch, precision, execution mode and threads, "
            "with the kernels that actually ran (from oneDNN's verbose log, ATen's CPU "
            "capability, XLA's flags). A level above this CPU is not run: it shows as "
            "unsupported. Beside it, the seeds' anchor: " + TF_BUILD.text + " It is stated in "
            "the direction of the seed's figure, the build for the CPU over the stock one: the "
            "default over a capped level, an alternative or custom build over the default.")
    measured = gains[gains["ratio"].notna()]
    if not measured.empty:
        sec.add(_forest(measured, [f"{r['workload']} {r['mode']} b{int(r['batch_size'])}: "
                                   f"{fw(r['framework'])} {r['variant']}"
                                   for r in recs_of(measured)],
                        "Variant or build / the default build"))
    for fig_ in _ladder_charts(gains):
        sec.add(fig_)
    t = pd.DataFrame({
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
    sec.add(table(t, download="builds.csv.gz"))
    if (gains["framework"] == "jax").any():
        sec.add(para(B.jax_note(), "note"))
    for mid, m in inp.machines.items():
        flags = set((m.get("cpu") or {}).get("flags") or [])
        if not flags:
            continue
        mat = B.isa_matrix(df[df["machine_id"] == mid], flags)
        if not mat.empty:
            sec.add(details(f"{mid}: what each build was compiled for and dispatches to, "
                            "against this CPU's extensions", table(mat)))
    return sec


def _ladder_charts(gains: pd.DataFrame) -> list[Markup]:
    """Throughput against the ISA ladder, per framework: one chart per machine, workload,
    batch and precision, train and infer side by side; levels this CPU lacks are on the axis,
    marked, with no point."""
    from cnnbench.analyse.builds import LADDER_ORDER

    lad = gains[gains["isa_level"].notna() & gains["isa_level"].isin(list(LADDER_ORDER))]
    out: list[Markup] = []
    keys = ["machine_id", "device", "workload", "batch_size", "precision", "threads"]
    for i, (_, sub) in enumerate(lad.groupby(keys, sort=True)):
        if i >= MAX_CHARTS:
            break
        levels = sorted(set(sub["isa_level"]), key=LADDER_ORDER.__getitem__)
        missing = {lv: "not on this CPU" for lv in levels
                   if not (sub[sub["isa_level"] == lv]["status"] != "unsupported").any()}
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


def _scaling_table(t: pd.DataFrame, what: str) -> pd.DataFrame:
    return pd.DataFrame({
        "cell": [f"{r['machine_id']} {r['workload']} {r['mode']} {fw(r['framework'])} "
                 f"{r['exec_mode']}" + (f" {r['variant']}" if r["variant"] != "default" else "")
                 for r in recs_of(t)],
        what: t["n"].astype(int),
        "batch (global / per device)": [f"{int(b)} / {int(p)}" for b, p in zip(
            t["batch_size"], t["per_device_batch"], strict=True)],
        "img/s [95% CI]": [f"{num(v)} {ci(lo, hi)}" for v, lo, hi in zip(
            t["images_per_s"], t["ips_low"], t["ips_high"], strict=True)],
        "speedup [95% CI]": [f"{v:.2f} [{lo:.2f}, {hi:.2f}]" for v, lo, hi in zip(
            t["speedup"], t["speedup_low"], t["speedup_high"], strict=True)],
        "efficiency [95% CI]": t["text"],
        "verdict": [("baseline" if n == b else v) for n, b, v in zip(
            t["n"], t["baseline_n"], t["verdict"], strict=True)],
    })


def _curves(sec: Section, curves: pd.DataFrame, by: list[str], what: str) -> None:
    from cnnbench.analyse.scaling import projections, scaling_figure

    for i, (k, sub) in enumerate(curves.groupby(by, sort=False, dropna=False)):
        if i >= MAX_CHARTS:
            sec.add(f"{curves.groupby(by).ngroups - MAX_CHARTS} more curves are in the table.")
            break
        # scaling_figure says "simulated" in the title itself
        title = " ".join(str(v) for v in k if v not in ("", None, False, True))
        fig = scaling_figure(sub, title=f"{what}: {title}",
                             seed_claim=what == "Data-parallel scaling")
        sec.add(figure(fig, f"{what} {title}"))
    proj = projections(curves)
    if not proj.empty:
        sec.add(details("Projections: fitted parameters", table_of_projections(proj)))


def table_of_projections(proj: pd.DataFrame) -> Markup:
    t = pd.DataFrame({
        "curve": [f"{r['workload']} {r['mode']} {fw(r['framework'])} {r['exec_mode']}"
                  + (f" {r['scaling']}" if r["scaling"] else "")
                  + (" simulated" if r["simulated"] else "") for r in recs_of(proj)],
        "model": proj["model"], "fit": proj["label"],
        "measured up to": proj["n_max"].astype(int),
    })
    return table(t, numeric=["measured up to"])


def threads(inp: Inputs) -> Section:
    from cnnbench.analyse.scaling import thread_scaling

    sec = Section("threads", "Thread scaling")
    t = thread_scaling(inp.df) if not inp.cells.empty else pd.DataFrame()
    if t.empty:
        sec.empty = ("No cell was run at two or more thread counts with all else equal "
                     "(use --threads 1,2,…).")
        return sec
    sec.add("Throughput and efficiency against the CPU thread count, each against the same "
            "cell at the fewest threads (efficiency = speedup ÷ (threads ÷ fewest)), with the "
            "ideal line and a projection past the largest count (dashed: a fit, not a "
            "measurement).")
    _curves(sec, t, ["machine_id", "workload", "mode", "batch_size"], "Thread scaling")
    sec.add(table(_scaling_table(t, "threads"), numeric=["threads"], download="threads.csv.gz"))
    return sec


def scaling(inp: Inputs) -> Section:
    from cnnbench.analyse.scaling import SEED_LABEL, device_scaling

    sec = Section("scaling", "Data-parallel scaling")
    t = device_scaling(inp.df) if not inp.cells.empty else pd.DataFrame()
    if t.empty:
        sec.empty = ("No data-parallel cells with their one-device baseline in these results "
                     "(use --devices cpu,cpu*2 or gpu:0,gpu:0+1 with --scaling weak,strong).")
        return sec
    sec.add("Weak scaling keeps the per-device batch fixed, strong scaling the global batch; "
            "efficiency is t1 / (N·tN) against the same framework's one-device run in the same "
            "results, with the comparison layer's interval. Simulated devices (cpu*N) share "
            "the same cores: they measure the overhead of the data-parallel path, never "
            "hardware scaling, and are kept apart. The seed's claim, drawn as a star on "
            f"hardware GPUs' charts of training with weak scaling: "
            f"{SEED_LABEL.removeprefix('seed claim: ')}.")
    for sim in (False, True):
        part = t[t["simulated"] == sim]
        if part.empty:
            continue
        sec.add(Markup(f"<h3>{'Simulated devices' if sim else 'Hardware devices'}</h3>"))
        _curves(sec, part, ["machine_id", "workload", "mode", "scaling", "simulated"],
                "Data-parallel scaling")
        sec.add(table(_scaling_table(part, "devices"), numeric=["devices"],
                      download=f"scaling-{'simulated' if sim else 'hardware'}.csv.gz"))
    return sec


# ------------------------------------------------------------------- 6 machines


def _systems(inp: Inputs) -> list[tuple[str, str]]:
    """The machines and devices measured (simulated device sets are no hardware)."""
    cells = inp.hardware
    order = list(dict.fromkeys(zip(cells["machine_id"], cells["device"], strict=True)))
    return [(str(m), str(d)) for m, d in order]


def reference_system(inp: Inputs) -> tuple[str, str] | None:
    systems = _systems(inp)
    if not systems:
        return None
    if inp.reference_machine:
        # A reference bundle's machine answers to its own id as well as to its label.
        names = {inp.reference_machine, REFERENCE_LABEL.format(inp.reference_machine)}
        mine = [s for s in systems if s[0] in names]
        if not mine:
            raise ValueError(f"--reference-machine {inp.reference_machine!r} has no results "
                             f"(machines: {', '.join(sorted({s[0] for s in systems}))})")
        systems = mine
    counts = inp.hardware.groupby(SYSTEM).size()
    return max(systems, key=lambda s: (s[0] == systems[0][0], counts.get(s, 0)))


def machine_table(inp: Inputs) -> pd.DataFrame:
    rows = []
    ids = list(dict.fromkeys([*inp.cells.get("machine_id", []), *inp.machines]))
    for mid in ids:
        m = inp.machines.get(str(mid), {})
        cpu = m.get("cpu") or {}
        rows.append({"machine": mid, "CPU": cpu.get("model", ""),
                     "cores": cpu.get("logical_cores", ""),
                     "ISA": " ".join(x for x in cpu.get("isa") or [] if x.startswith(("avx", "amx",
                                                                                     "fma"))),
                     "memory GiB": num((m.get("memory_bytes") or 0) / 2**30) if m else "",
                     "GPUs": ", ".join(str(g.get("name")) for g in m.get("gpus") or []) or "none",
                     "OS": m.get("os", "")})
    return pd.DataFrame(rows)


def machines(inp: Inputs) -> Section:
    sec = Section("machines", "Machines compared")
    if inp.cells.empty:
        sec.empty = "No successful cells."
        return sec
    sec.add(table(machine_table(inp), numeric=["cores", "memory GiB"]))
    if len(inp.hardware) < len(inp.cells):
        sec.add("Simulated device sets (cpu*N) are not compared here: they share one machine's "
                "cores (see Data-parallel scaling).")
    systems = _systems(inp)
    if len(systems) < 2:
        sec.add("One machine and device only: run the same sweep on another machine (or with "
                "--machine-id on this one) and pass both results folders to cnnbench report.")
        return sec
    ref = reference_system(inp)
    assert ref is not None
    best = (inp.hardware.sort_values("ips", ascending=False)
            .groupby([*SYSTEM, "workload", "mode", "batch_size", "precision"], sort=False)
            .head(1))
    like = ["workload", "mode", "batch_size", "precision"]
    refb = {tuple(r[f] for f in like): r for r in recs_of(best)
            if (r["machine_id"], r["device"]) == ref}
    recs: list[dict[str, Any]] = []
    for r in recs_of(best):
        base = refb.get(tuple(r[f] for f in like))
        if base is None or (r["machine_id"], r["device"]) == ref or len(recs) >= MAX_COMPARISONS:
            continue
        cmp = _compare(inp, base, r)
        if cmp is not None:
            recs.append({**r, **_cmp_fields(cmp), "base_label": nice_label(base)})
    sec.add(f"Each machine and device's best configuration per workload, mode, batch and "
            f"precision, normalised to the reference {system(*ref)} (choose it with "
            "--reference-machine), with the geometric mean across workloads per mode, as "
            "Lambda's GPU pages do, but with 95% intervals. Precisions are never mixed.")
    if not recs:
        sec.add("No workload was measured on both the reference and another machine at the same "
                "batch and precision.")
        return sec
    df = pd.DataFrame(recs)
    gm_rows = []
    for (mid, dev, mode, prec), g in df.groupby([*SYSTEM, "mode", "precision"], sort=False):
        gm = an.geomean(g["ratio"], g["low"], g["high"])
        gm_rows.append({"machine / device": system(mid, dev), "mode": mode, "precision": prec,
                        "workloads": gm.n, "geomean vs reference": gm.text(),
                        "ratio": gm.ratio, "low": gm.low, "high": gm.high,
                        "significant": not gm.low <= 1 <= gm.high})
    gms = pd.DataFrame(gm_rows)
    sec.add(_forest(gms, [f"{r['machine / device']} {r['mode']} {r['precision']}"
                         for r in gm_rows], f"Geometric mean throughput relative to {system(*ref)}"))
    sec.add(table(gms.drop(columns=["ratio", "low", "high", "significant"]),
                  numeric=["workloads"]))
    t = pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(df["machine_id"], df["device"],
                                                         strict=True)],
        "workload": df["workload"] + " " + df["mode"] + " b"
        + df["batch_size"].astype(int).astype(str) + " " + df["precision"],
        "best here": labels_of(df), "img/s": df["ips"].map(num),
        "best on reference": df["base_label"], "vs reference [95% CI]": df["text"]})
    sec.add(details("Per workload", table(t, numeric=["img/s"], download="machines.csv.gz")))
    return sec


# ------------------------------------------------------------------- 7 buyer's view


def buyers(inp: Inputs) -> Section:
    sec = Section("buyers", "Buyer's view")
    if inp.hardware.empty:
        sec.empty = "No successful cells." if inp.cells.empty else _simulated_note(inp)
        return sec
    # The best by the lower bound of its interval, per machine/device, workload, mode and
    # precision: a figure a buyer can count on, never a lucky point estimate. Simulated
    # device sets are no hardware to buy.
    best = (inp.hardware.sort_values("low", ascending=False)
            .groupby([*SYSTEM, "workload", "mode", "precision"], sort=False).head(1))
    if not inp.prices:
        sec.add("No prices file: pass --prices prices.toml (purchase price, hourly price and "
                "power in watts per machine; see the README) for images/s per 1,000 of price, "
                "per rented hour and per kWh.")
    else:
        rows = []
        for r in recs_of(best):
            p = price_for(str(r["machine_id"]), inp.prices)
            if p is None:
                continue
            lo = float(r["low"])
            rows.append({
                "machine / device": f"{p.label} ({system(r['machine_id'], r['device'])})",
                "workload": f"{r['workload']} {r['mode']} {r['precision']}",
                "best (by lower bound)": nice_label(r),
                "img/s, lower bound": num(lo),
                "img/s per 1,000 of price": num(lo * 1000 / p.price_usd) if p.price_usd else "",
                "images per rented hour": num(lo * 3600) if p.hourly_usd else "",
                "images per 1 of rent": num(lo * 3600 / p.hourly_usd) if p.hourly_usd else "",
                "images per kWh": num(lo * 3600 / (p.watts / 1000)) if p.watts else "",
            })
        if rows:
            sec.add("Throughput is each cell's lower 95% bound; power is the prices file's "
                    "figure (no cell here reports a measured power draw). Precisions are kept "
                    "apart.")
            sec.add(table(pd.DataFrame(rows), numeric=[
                "img/s, lower bound", "img/s per 1,000 of price", "images per rented hour",
                "images per 1 of rent", "images per kWh"], download="value.csv.gz"))
        else:
            sec.add("The prices file names none of these machines.")
    job = inp.job
    train = best[(best["workload"] == job.workload) & (best["mode"] == "train")]
    sec.add(Markup(f"<h3>Estimated time to train: {esc(job.text())}</h3>"))
    if train.empty:
        sec.add(f"Not measured: no {job.workload} training cell in these results (the default "
                f"sweep trains only the small workloads; run --workloads {job.workload} "
                "--modes train, or --full).")
        return sec
    rows = []
    for r in recs_of(train):
        hours = [job.total / float(v) / 3600 for v in (r["ips"], r["high"], r["low"])]
        p = price_for(str(r["machine_id"]), inp.prices)
        row = {"machine / device": system(r["machine_id"], r["device"]),
               "configuration": nice_label(r), "precision": r["precision"],
               "img/s [95% CI]": f"{num(r['ips'])} {ci(r['low'], r['high'])}",
               "hours (estimate)": f"{num(hours[0])} [{num(hours[1])}, {num(hours[2])}]",
               "rental cost": "", "energy kWh": ""}
        if p is not None and p.hourly_usd:
            row["rental cost"] = f"{num(hours[0] * p.hourly_usd)} [{num(hours[1] * p.hourly_usd)}, " \
                                 f"{num(hours[2] * p.hourly_usd)}]"
        if p is not None and p.watts:
            row["energy kWh"] = num(hours[0] * p.watts / 1000)
        rows.append(row)
    sec.add(table(pd.DataFrame(rows)))
    sec.add(para("An estimate: the measured training throughput (synthetic data, the batch size "
                 "measured) held for the whole job, with no data loading, evaluation or "
                 "checkpoints; the range is from the throughput's 95% interval.", "note"))
    return sec


# ------------------------------------------------------------------- 8 claims


def claims(inp: Inputs) -> Section:
    from cnnbench.analyse.scaling import device_scaling

    sec = Section("claims", "The seeds' claims checked")
    scaling = device_scaling(inp.df) if not inp.cells.empty else None
    t = check_claims(inp.df, inp.cells, scaling, inp.machines)
    sec.add("Each claim from the seeds beside what these results show, like for like: one GPU "
            "against the CPU at the same framework, batch, precision and execution mode, "
            "builds that differ in one thing only, two GPUs training with weak scaling; and "
            "this CPU's own figures beside the seeds', with what is not like for like. A ratio "
            "whose interval crosses 1 reads \"no clear difference\".")
    sec.add(table(t))
    return sec


# ------------------------------------------------------------------- 9 method


def method(inp: Inputs) -> Section:
    sec = Section("method", "Method")
    df = inp.df
    sec.add(bullets([
        "Each cell runs in a fresh worker process in its framework's own environment, with "
        "synthetic data and generated weights. The first step (compilation, graph capture) "
        "is timed apart; warm-up runs until the step time stops drifting; then timed rounds "
        "of several steps, each ended by a device sync, until the median's 95% interval "
        "reaches its target or the cell's budget (warm-up plus rounds) runs out.",
        "A cell's images/s is batch size ÷ median step time; its interval is the "
        "distribution-free interval of the median (one run) or the hierarchical bootstrap "
        "over runs then rounds with Student's t (several runs).",
        "A comparison of two cells is the ratio of their throughputs with a 95% interval: "
        "between runs, Welch's t on the log of each run's median with a resample of runs then "
        "rounds; one run a side, a bootstrap of the ratio of medians and Mann–Whitney U on the "
        "rounds, which does not cover the noise between processes. A ratio whose interval "
        "crosses 1 reads \"no clear difference\". Geometric means resample the cells and each "
        "cell's own interval.",
        "Flags: ci_wide, above_peak (faster than the device's measured GEMM peak), "
        "time_not_growing, warmup_unsteady, busy_machine, over_budget, threads_mismatch; see "
        "the README's schema.",
        "Every figure traces to its results row by cell_id (the Throughput section's "
        "More columns, and the downloads).",
    ]))
    if inp.notes:
        sec.add(Markup("<h3>Reference results</h3>"))
        sec.add(bullets(inp.notes))
    if df.empty:
        sec.add("No rows.")
        return sec
    ok = df[df["status"] == "ok"]
    sw = (ok.assign(onednn=ok["build"].map(_onednn))
          .groupby(["machine_id", "framework", "variant", "framework_version", "python"],
                   dropna=False)
          .agg(cells=("cell_id", "size"), onednn=("onednn", "first"),
               budget_s=("budget_s", "median")).reset_index())
    sec.add(Markup("<h3>Software and variants</h3>"))
    sw["budget_s"] = sw["budget_s"].map(num)
    sec.add(table(sw.rename(columns={"budget_s": "budget s", "machine_id": "machine",
                                     "framework_version": "version"}),
                  numeric=["cells", "budget s"]))
    pk = peaks(df)
    if pk:
        sec.add(Markup("<h3>Measured peaks</h3>"))
        sec.add("Each device's peak is the fastest round of any framework's n×n GEMM probe at "
                "that thread count and precision; MFU = achieved FLOP/s ÷ peak.")
        sec.add(table(pd.DataFrame(pk).drop(columns=["flops"]), numeric=["gflops", "n"]))
    return sec


def _onednn(build: Any) -> str:
    if not isinstance(build, dict):
        return ""
    o = build.get("onednn")
    if isinstance(o, dict):
        return f"{'on' if o.get('enabled') else 'off'} {o.get('version') or ''}".strip()
    return ""


# ------------------------------------------------------------------- 10 not run, problems


def not_run(inp: Inputs) -> Section:
    sec = Section("not-run", "Cells that did not run")
    df = inp.df
    failed = df[df["status"] != "ok"] if not df.empty else df
    if failed.empty:
        sec.empty = "Every cell ran."
        return sec
    counts = failed["status"].value_counts()
    sec.add(f"{len(failed):,} cell(s) did not run; by status: "
            + ", ".join(f"{s} {n:,}" for s, n in counts.items()) + ".")
    t = failed.sort_values("started_at", na_position="last")[
        ["framework", "variant", "device", "workload", "mode", "batch_size", "precision",
         "exec_mode", "status", "error"]].rename(columns={"batch_size": "batch"})
    sec.add(table(t, download="not-run.csv.gz"))
    return sec


def problems(inp: Inputs) -> Section:
    sec = Section("problems", "Problems reading results")
    if not inp.problems:
        sec.empty = "None: every line of every results file was read."
        return sec
    sec.add(bullets(inp.problems[:200]))
    if len(inp.problems) > 200:
        sec.add(f"… and {len(inp.problems) - 200} more.")
    return sec


BUILDERS = (summary, throughput, speedup, modes, builds, threads, scaling, machines, buyers,
            claims, method, not_run, problems)

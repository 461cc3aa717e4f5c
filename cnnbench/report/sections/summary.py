"""Summary: the fastest configuration of each machine, device, workload and mode against the
runner-up (``analyse.pairs.podiums``)."""

from __future__ import annotations

import pandas as pd

from cnnbench.analyse.ceiling import summary_sentences as ceiling_sentences
from cnnbench.analyse.pairs import Podium, podiums
from cnnbench.report.htmlkit import Section, bullets, para, table
from cnnbench.report.sections.base import (
    MAX_FINDINGS,
    MODE_NAMES,
    Inputs,
    ci,
    nice_label,
    num,
    simulated_note,
    system,
)
from cnnbench.report.sections.registry import section


def _finding(p: Podium) -> str | None:
    mid, dev, wl, mode = p.group
    top, second, cmp = p.top, p.second, p.cmp
    where = f"{wl} {MODE_NAMES.get(str(mode), str(mode))} on {system(mid, dev)}"
    if second is None:
        return (f"{where}: {nice_label(top)} is the only configuration measured, "
                f"{num(top['ips'])} img/s {ci(top['low'], top['high'])}.")
    if cmp is None:
        return None
    if cmp.significant:
        return (f"{where}: {nice_label(top)} is fastest, {num(top['ips'])} img/s "
                f"{ci(top['low'], top['high'])}, {cmp.text()} {nice_label(second)}.")
    return (f"{where}: the top two are not distinguishable: "
            f"{nice_label(top)} ({num(top['ips'])} img/s) and "
            f"{nice_label(second)} ({num(second['ips'])} img/s), {cmp.text()}.")


@section("summary", "Summary", order=10)
def summary(inp: Inputs, sec: Section) -> None:
    cells = inp.hardware
    if cells.empty:
        sec.empty = ("No successful cells: nothing to summarise (see Cells that did not run)."
                     if inp.cells.empty else simulated_note(inp))
        return
    groups = podiums(cells, inp.bank, MAX_FINDINGS)
    findings = [f for f in map(_finding, groups[:MAX_FINDINGS]) if f]
    rows = [{"machine / device": system(p.group[0], p.group[1]), "workload": p.group[2],
             "mode": p.group[3], "fastest": nice_label(p.top), "img/s": num(p.top["ips"]),
             "95% CI": ci(p.top["low"], p.top["high"]), "configurations": len(p.cells)}
            for p in groups]
    sec.add(f"{len(cells):,} cells measured on {cells['machine_id'].nunique()} machine(s); "
            "each finding compares the fastest configuration with the runner-up, with the 95% "
            "interval of their throughput ratio (see Method). " + simulated_note(inp))
    sec.add(bullets(findings))
    tuned = ceiling_sentences(inp.df)  # where `cnnbench tune` ran: defaults against ceilings
    if tuned:
        sec.add(bullets(tuned))
    if len(groups) > MAX_FINDINGS:
        sec.add(f"{len(groups) - MAX_FINDINGS:,} more groups are in the table below.")
    sec.add(table(pd.DataFrame(rows), numeric=["img/s", "configurations"],
                  download="summary.csv.gz"))
    one_run = int((cells["runs"] == 1).sum())
    if one_run:
        sec.add(para(f"{one_run:,} of {len(cells):,} cells have one run: their intervals cover "
                     "the noise between rounds, not between processes; use --repeat 3 for "
                     "comparisons that do.", "note"))

"""Buyer's view: images/s per 1,000 of price, per rented hour and per kWh, and the time, rent
and energy of a training job (``analyse.value``), from the lower bound of each interval."""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import value as V
from cnnbench.report.htmlkit import Section, esc, para, table
from cnnbench.report.sections.base import Inputs, ci, nice_label, num, simulated_note, system
from cnnbench.report.sections.registry import section

VALUE_COLUMNS = ["img/s, lower bound", "img/s per 1,000 of price", "images per rented hour",
                 "images per 1 of rent", "images per kWh"]


def _value(inp: Inputs, sec: Section, best: pd.DataFrame) -> None:
    if not inp.prices:
        sec.add("No prices file: pass --prices prices.toml (purchase price, hourly price and "
                "power in watts per machine; see the README) for images/s per 1,000 of price, "
                "per rented hour and per kWh.")
        return
    rows = [dict(zip(["machine / device", "workload", "best (by lower bound)", *VALUE_COLUMNS], [
        f"{v.price.label} ({system(v.cell['machine_id'], v.cell['device'])})",
        f"{v.cell['workload']} {v.cell['mode']} {v.cell['precision']}", nice_label(v.cell),
        *map(num, (v.ips_low, v.per_1000_price, v.per_hour, v.per_rent, v.per_kwh))],
        strict=True)) for v in V.values(best, inp.prices)]
    if not rows:
        sec.add("The prices file names none of these machines.")
        return
    sec.add("Throughput is each cell's lower 95% bound; power is the prices file's "
            "figure (no cell here reports a measured power draw). Precisions are kept "
            "apart.")
    sec.add(table(pd.DataFrame(rows), numeric=VALUE_COLUMNS, download="value.csv.gz"))


def _range(r: V.Range) -> str:
    return f"{num(r[0])} [{num(r[1])}, {num(r[2])}]"


def _job(inp: Inputs, sec: Section, best: pd.DataFrame) -> None:
    job = inp.job
    train = best[(best["workload"] == job.workload) & (best["mode"] == "train")]
    sec.add(Markup(f"<h3>Estimated time to train: {esc(job.text())}</h3>"))
    if train.empty:
        sec.add(f"Not measured: no {job.workload} training cell in these results (the default "
                f"sweep trains only the small workloads; run --workloads {job.workload} "
                "--modes train, or --full).")
        return
    rows = [{"machine / device": system(c.cell["machine_id"], c.cell["device"]),
             "configuration": nice_label(c.cell), "precision": c.cell["precision"],
             "img/s [95% CI]": f"{num(c.cell['ips'])} {ci(c.cell['low'], c.cell['high'])}",
             "hours (estimate)": _range(c.hours),
             "rental cost": _range(c.rent) if c.rent else "", "energy kWh": num(c.kwh)}
            for c in V.job_costs(train, job.total, inp.prices)]
    sec.add(table(pd.DataFrame(rows)))
    sec.add(para("An estimate: the measured training throughput (synthetic data, the batch size "
                 "measured) held for the whole job, with no data loading, evaluation or "
                 "checkpoints; the range is from the throughput's 95% interval.", "note"))


@section("buyers", "Buyer's view", order=90)
def buyers(inp: Inputs, sec: Section) -> None:
    if inp.hardware.empty:
        sec.empty = "No successful cells." if inp.cells.empty else simulated_note(inp)
        return
    best = V.best_by_lower_bound(inp.hardware)
    _value(inp, sec, best)
    _job(inp, sec, best)

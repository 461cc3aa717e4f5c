"""Buyer's view: images/s per 1,000 of price, per rented hour and per kWh, and the time, rent
and energy of a training job (``analyse.value``), from the lower bound of each interval."""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from cnnbench.analyse import buyer as B
from cnnbench.analyse import value as V
from cnnbench.analyse.pairs import records
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


FIT_GB = (4, 8, 16)  # the memory sizes a buyer weighs: "fits in N GB"


def _of_best(df: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configurations the buyer's view shows, at every batch measured."""
    keys = best[[c for c in B.CONFIG if c in best]].drop_duplicates()
    cols = [c for c in keys.columns if c in df]
    if df.empty or len(cols) < len(B.CONFIG):
        return df.iloc[:0]
    return df.merge(keys[cols].astype(df[cols].dtypes.to_dict()), on=cols, how="inner")


def _fits(inp: Inputs, sec: Section, best: pd.DataFrame) -> None:
    sec.add(Markup("<h3>Fits in N GB</h3>"))
    mem = B.memory_table(_of_best(inp.df, best))
    if mem.empty:
        sec.add("No row here reports its peak memory (rows written before cnnbench measured "
                "it): run again for the largest batch that fits in 4, 8 and 16 GB.")
        return
    fits = pd.concat([B.fits_in(mem, gb) for gb in FIT_GB], ignore_index=True)
    rows = [{"configuration": nice_label(r), "workload": f"{r['workload']} {r['mode']}",
             "memory": f"{gb} GB",
             "largest batch measured that fits": "" if r["largest_batch"] is None
             or r["largest_batch"] != r["largest_batch"] else int(r["largest_batch"]),
             "its peak MB": num(r["peak_mb"])}
            for r in records(fits) for gb in [r["limit_gb"]]]
    sec.add(table(pd.DataFrame(rows), download="fits.csv.gz"))
    sec.add(para("The peak is the GPU's own allocator peak on a GPU, else the worker's peak "
                 "resident memory (the kernel's high-water mark); only batches measured count "
                 "(--fit searches the largest one).", "note"))


def _energy(inp: Inputs, sec: Section, best: pd.DataFrame) -> None:
    sec.add(Markup("<h3>Images per joule</h3>"))
    ids = set(best["cell_id"]) if "cell_id" in best else set()
    rows_df = inp.df[inp.df["cell_id"].isin(ids)] if ids and "cell_id" in inp.df else inp.df.iloc[:0]
    energy = B.energy_table(rows_df, inp.prices)
    if energy.empty or (energy["source"] == "none").all():
        reasons = sorted({str(r) for r in energy["reason"].dropna()}) if not energy.empty else []
        sec.add("No measured power and no declared watts: "
                + ("; ".join(reasons) if reasons else "rows written before cnnbench measured "
                   "energy") + ". Pass --prices with each machine's watts for an estimate.")
        return
    per = energy.groupby([*B.CONFIG, "batch_size", "source"], dropna=False, as_index=False).agg(
        images_per_joule=("images_per_joule", "median"), watts=("watts", "median"),
        reason=("reason", "first"))
    rows = [{"configuration": nice_label(r), "workload": f"{r['workload']} {r['mode']}",
             "batch": r["batch_size"], "images per joule": num(r["images_per_joule"]),
             "watts": num(r["watts"]), "power from": r["source"],
             "why not measured": "" if r["source"] == "measured" else str(r["reason"] or "")}
            for r in records(per)]
    sec.add(table(pd.DataFrame(rows), download="energy.csv.gz"))
    sec.add(para("'measured': the CPU's RAPL or the GPU's NVML energy counter over the timed "
                 "rounds; 'declared': the prices file's watts for the machine with the "
                 "measured throughput; 'none': neither.", "note"))


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
    _fits(inp, sec, best)
    _energy(inp, sec, best)
    _job(inp, sec, best)

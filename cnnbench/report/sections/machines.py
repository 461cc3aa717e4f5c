"""Machines compared: each machine and device's best against the reference system's, with
geometric means (``analyse.systems``), and the machines' records."""

from __future__ import annotations

import pandas as pd

from cnnbench.analyse import systems as S
from cnnbench.report.htmlkit import Section, details, table
from cnnbench.report.sections.base import (
    MAX_COMPARISONS,
    Inputs,
    forest,
    labels_of,
    num,
    system,
)
from cnnbench.report.sections.registry import section


def _geomeans(sec: Section, rows: pd.DataFrame, ref: S.System) -> None:
    gm_rows = [{"machine / device": system(g["machine_id"], g["device"]), "mode": g["mode"],
                "precision": g["precision"], "workloads": g["gm"].n,
                "geomean vs reference": g["gm"].text(), "ratio": g["gm"].ratio,
                "low": g["gm"].low, "high": g["gm"].high,
                "significant": not g["gm"].low <= 1 <= g["gm"].high}
               for g in S.geomeans(rows)]
    gms = pd.DataFrame(gm_rows)
    sec.add(forest(gms, [f"{r['machine / device']} {r['mode']} {r['precision']}"
                         for r in gm_rows], f"Geometric mean throughput relative to {system(*ref)}"))
    sec.add(table(gms.drop(columns=["ratio", "low", "high", "significant"]),
                  numeric=["workloads"]))


def _per_workload(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "machine / device": [system(m, d) for m, d in zip(rows["machine_id"], rows["device"],
                                                         strict=True)],
        "workload": rows["workload"] + " " + rows["mode"] + " b"
        + rows["batch_size"].astype(int).astype(str) + " " + rows["precision"],
        "best here": labels_of(rows), "img/s": rows["ips"].map(num),
        "best on reference": labels_of(rows, "base_label", "base_framework"),
        "vs reference [95% CI]": rows["text"]})


@section("machines", "Machines compared", order=80)
def machines(inp: Inputs, sec: Section) -> None:
    if inp.cells.empty:
        sec.empty = "No successful cells."
        return
    mt = S.machine_table(list(inp.cells.get("machine_id", [])), inp.machines)
    sec.add(table(mt.assign(**{"memory GiB": mt["memory GiB"].map(num)}),
                  numeric=["cores", "memory GiB"]))
    if len(inp.hardware) < len(inp.cells):
        sec.add("Simulated device sets (cpu*N) are not compared here: they share one machine's "
                "cores (see Data-parallel scaling).")
    if len(S.systems(inp.hardware)) < 2:
        sec.add("One machine and device only: run the same sweep on another machine (or with "
                "--machine-id on this one) and pass both results folders to cnnbench report.")
        return
    ref = S.reference_system(inp.hardware, inp.reference_machine)
    assert ref is not None
    rows = S.against_reference(inp.hardware, ref, inp.bank, MAX_COMPARISONS)
    sec.add(f"Each machine and device's best configuration per workload, mode, batch and "
            f"precision, normalised to the reference {system(*ref)} (choose it with "
            "--reference-machine), with the geometric mean across workloads per mode, as "
            "Lambda's GPU pages do, but with 95% intervals. Precisions are never mixed.")
    if rows.empty:
        sec.add("No workload was measured on both the reference and another machine at the same "
                "batch and precision.")
        return
    _geomeans(sec, rows, ref)
    sec.add(details("Per workload", table(_per_workload(rows), numeric=["img/s"],
                                          download="machines.csv.gz")))

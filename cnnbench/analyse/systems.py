"""Machines and devices compared: the systems measured, the reference one, each system's best
against the reference's, their geometric means, and the machines' own records.

Pure functions from the report's cells to records and DataFrames; every ratio comes from
``pairs.SampleBank.compare`` (``compare.compare_cells`` on raw rounds) and ``compare.geomean``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cnnbench.analyse import compare as an
from cnnbench.analyse.pairs import Record, SampleBank, best_per, compared, records
from cnnbench.core.keys import LIKE, SYSTEM
from cnnbench.core.results import REFERENCE_LABEL

System = tuple[str, str]


def systems(hardware: pd.DataFrame) -> list[System]:
    """The machines and devices measured, in order (simulated device sets are no hardware)."""
    order = dict.fromkeys(zip(hardware["machine_id"], hardware["device"], strict=True))
    return [(str(m), str(d)) for m, d in order]


def reference_system(hardware: pd.DataFrame, machine: str | None = None) -> System | None:
    """The system the others are normalised to: of ``machine`` (else the first machine), its
    device with the most cells. ValueError when ``machine`` has no results."""
    found = systems(hardware)
    if not found:
        return None
    if machine:
        # A reference bundle's machine answers to its own id as well as to its label.
        names = {machine, REFERENCE_LABEL.format(machine)}
        mine = [s for s in found if s[0] in names]
        if not mine:
            raise ValueError(f"--reference-machine {machine!r} has no results "
                             f"(machines: {', '.join(sorted({s[0] for s in found}))})")
        found = mine
    counts = hardware.groupby(SYSTEM).size()
    return max(found, key=lambda s: (s[0] == found[0][0], counts.get(s, 0)))


def against_reference(hardware: pd.DataFrame, ref: System, bank: SampleBank,
                      limit: int) -> pd.DataFrame:
    """Each other system's best cell per workload, mode, batch and precision against the
    reference system's best at the same (the first ``limit``)."""
    best = records(best_per(hardware, LIKE))
    work = [f for f in LIKE if f not in SYSTEM]
    refb = {tuple(r[f] for f in work): r for r in best if (r["machine_id"], r["device"]) == ref}
    recs: list[Record] = []
    for r in best:
        base = refb.get(tuple(r[f] for f in work))
        if base is None or (r["machine_id"], r["device"]) == ref or len(recs) >= limit:
            continue
        cmp = bank.compare(base, r)
        if cmp is not None:
            recs.append(compared(r, base, cmp))
    return pd.DataFrame(recs)


def geomeans(rows: pd.DataFrame) -> list[Record]:
    """The geometric mean of ``against_reference``'s ratios per system, mode and precision
    (precisions never mixed): ``machine_id``, ``device``, ``mode``, ``precision`` and the
    ``compare.GeoMean`` as ``gm``."""
    out = []
    for (mid, dev, mode, prec), g in rows.groupby([*SYSTEM, "mode", "precision"], sort=False):
        out.append({"machine_id": mid, "device": dev, "mode": mode, "precision": prec,
                    "gm": an.geomean(g["ratio"], g["low"], g["high"])})
    return out


def machine_table(cell_machines: Sequence[Any],
                  machines: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per machine (those of the cells, then those with only a machine record):
    CPU, cores, vector ISA, memory (GiB; None without a record), GPUs and OS."""
    rows = []
    for mid in dict.fromkeys([*cell_machines, *machines]):
        m = machines.get(str(mid), {})
        cpu = m.get("cpu") or {}
        isa = [x for x in cpu.get("isa") or [] if x.startswith(("avx", "amx", "fma"))]
        rows.append({"machine": mid, "CPU": cpu.get("model", ""),
                     "cores": cpu.get("logical_cores", ""), "ISA": " ".join(isa),
                     "memory GiB": (m.get("memory_bytes") or 0) / 2**30 if m else None,
                     "GPUs": ", ".join(str(g.get("name")) for g in m.get("gpus") or []) or "none",
                     "OS": m.get("os", "")})
    return pd.DataFrame(rows)

"""The buyer's figures: throughput per unit of price, rent and energy, and the time, rent and
energy of a training job, from each system's best cell by the lower bound of its interval
(a figure a buyer can count on, never a lucky point estimate). Pure functions; no HTML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from cnnbench.analyse.pairs import Record, best_per, records
from cnnbench.core.keys import SYSTEM
from cnnbench.core.prices import Price, price_for

Range = tuple[float, float, float]  # estimate, low, high


def best_by_lower_bound(hardware: pd.DataFrame) -> pd.DataFrame:
    """The best cell by its lower 95% bound per machine/device, workload, mode and precision
    (precisions are kept apart; simulated device sets are no hardware to buy)."""
    return best_per(hardware, [*SYSTEM, "workload", "mode", "precision"], score="low")


@dataclass(frozen=True)
class Value:
    """A cell's lower-bound images/s per 1,000 of price, per rented hour, per 1 of rent and
    per kWh (None where the prices file gives no such figure)."""

    cell: Record
    price: Price
    ips_low: float
    per_1000_price: float | None
    per_hour: float | None
    per_rent: float | None
    per_kwh: float | None


def values(best: pd.DataFrame, prices: Sequence[Price]) -> list[Value]:
    """A ``Value`` for each cell of ``best`` whose machine the prices file names."""
    out = []
    for r in records(best):
        p = price_for(str(r["machine_id"]), list(prices))
        if p is None:
            continue
        lo = float(r["low"])
        out.append(Value(r, p, lo, lo * 1000 / p.price_usd if p.price_usd else None,
                         lo * 3600 if p.hourly_usd else None,
                         lo * 3600 / p.hourly_usd if p.hourly_usd else None,
                         lo * 3600 / (p.watts / 1000) if p.watts else None))
    return out


@dataclass(frozen=True)
class JobCost:
    """A training job of ``images`` images on one cell's measured training throughput held
    throughout: hours, rent (None without an hourly price) and kWh (None without watts), each
    from the throughput's point estimate and its 95% interval (estimate, low, high)."""

    cell: Record
    hours: Range
    rent: Range | None
    kwh: float | None


def job_costs(train: pd.DataFrame, images: int, prices: Sequence[Price]) -> list[JobCost]:
    out = []
    for r in records(train):
        # The fastest end of the throughput interval is the shortest job.
        h = (images / float(r["ips"]) / 3600, images / float(r["high"]) / 3600,
             images / float(r["low"]) / 3600)
        p = price_for(str(r["machine_id"]), list(prices))
        rent = (h[0] * p.hourly_usd, h[1] * p.hourly_usd, h[2] * p.hourly_usd) if (
            p is not None and p.hourly_usd) else None
        kwh = h[0] * p.watts / 1000 if p is not None and p.watts else None
        out.append(JobCost(r, h, rent, kwh))
    return out

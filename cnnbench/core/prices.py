"""Machine prices for the report's price/performance table (a TOML file, validated).

    [[machine]]
    match = "my-workstation-*"   # glob over machine_id
    price_usd = 2500             # purchase price (optional if hourly_usd is given)
    hourly_usd = 0.90            # rental price per hour (optional)
    watts = 450                  # power draw under load, for images per kWh (optional)
    label = "RTX box"            # optional display name
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.core.tomlfile import read_text, tables


class PriceError(ValueError):
    pass


@dataclass(frozen=True)
class Price:
    match: str
    price_usd: float | None
    hourly_usd: float | None
    label: str
    watts: float | None = None


def _positive(v: Any, where: str, key: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise PriceError(f"{where}: {key} must be a positive number, got {v!r}")
    return float(v)


def parse_prices(text: str, source: str = "prices") -> list[Price]:
    entries = tables(text, source, "machine", {"match", "price_usd", "hourly_usd", "watts", "label"},
                     PriceError)
    out: list[Price] = []
    for where, e in entries:
        match = e.get("match")
        if not isinstance(match, str) or not match.strip():
            raise PriceError(f"{where}: match must be a non-empty machine_id glob")
        price = _positive(e.get("price_usd"), where, "price_usd")
        hourly = _positive(e.get("hourly_usd"), where, "hourly_usd")
        if price is None and hourly is None:
            raise PriceError(f"{where}: give price_usd, hourly_usd or both")
        label = e.get("label", match)
        if not isinstance(label, str):
            raise PriceError(f"{where}: label must be a string")
        watts = _positive(e.get("watts"), where, "watts")
        out.append(Price(match, price, hourly, label, watts))
    return out


def load_prices(path: Path) -> list[Price]:
    return parse_prices(read_text(path, "prices", PriceError), str(path))


def price_for(machine_id: str, prices: list[Price]) -> Price | None:
    for p in prices:  # first match wins, like a routing table
        if fnmatch.fnmatchcase(machine_id, p.match):
            return p
    return None

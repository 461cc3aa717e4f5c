"""`cnnbench report`: the HTML report from JSON Lines results."""

from __future__ import annotations

from pathlib import Path


def run(results: list[Path] | None = None, output: Path = Path("reports/index.html"),
        prices: Path | None = None) -> int:
    from ..prices import load_prices
    from ..report import write_report

    price_list = load_prices(prices) if prices else None
    out = write_report(results or [Path("results")], output, price_list)
    print(f"wrote {out}")
    return 0

"""`cnnbench report`: the HTML report from JSON Lines results."""

from __future__ import annotations

import sys
from pathlib import Path

from cnnbench.commands import UsageError


def warn(line: str) -> None:
    print(f"cnnbench: {line}", file=sys.stderr)


def parse_job(text: str | None) -> object:
    """'resnet50:90:1281167' (workload, epochs, images per epoch) -> sections.Job."""
    from cnnbench.report.sections.base import Job

    if not text:
        return Job()
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        job = Job(parts[0], int(parts[1]), int(parts[2]))
    except ValueError:
        raise UsageError(f"--job: expected WORKLOAD:EPOCHS:IMAGES, e.g. resnet50:90:1281167, "
                         f"got {text!r}") from None
    if not job.workload or job.epochs <= 0 or job.images <= 0:
        raise UsageError(f"--job: epochs and images must be positive, got {text!r}")
    return job


def run(results: list[Path] | None = None, output: Path = Path("reports/index.html"),
        prices: Path | None = None, baseline: str | None = None,
        reference_machine: str | None = None, job: str | None = None,
        with_reference: bool = False) -> int:
    from cnnbench.analyse.pairs import parse_baseline
    from cnnbench.core.prices import load_prices
    from cnnbench.report.render import write_report

    try:
        base = parse_baseline(baseline) if baseline else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    price_list = load_prices(prices) if prices else None
    paths = results or [Path("results")]
    try:
        out = write_report(paths, output, price_list, baseline=base,
                           reference_machine=reference_machine, job=parse_job(job),
                           with_reference=with_reference, warn=warn)
    except ValueError as exc:
        if str(exc).startswith("--"):
            raise UsageError(str(exc)) from None
        raise
    print(f"wrote {out}")
    return 0

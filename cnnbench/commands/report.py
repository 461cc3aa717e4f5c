"""`cnnbench report`: the HTML report from JSON Lines results."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.commands import UsageError
from cnnbench.core.options import add_command, flag


@dataclass
class ReportOptions:
    results: list[Path] = flag(
        "results", factory=list, nargs="*", type=Path,
        help="files or folders (default: results/); a folder's reference bundles "
        "(results/reference/) are left out unless named or --with-reference")
    with_reference: bool = flag("--with-reference", action="store_true",
                                help="also read the reference bundles under the folders named")
    output: Path = flag("-o", "--output", default=Path("reports/index.html"), type=Path)
    prices: Path | None = flag("--prices", type=Path, metavar="TOML",
                               help="machine prices and power for the buyer's view (see README)")
    baseline: str | None = flag(
        "--baseline", metavar="FIELD=VALUE,...",
        help="speedup baseline, e.g. framework=pytorch,exec_mode=eager (default: each "
        "framework's own default configuration)")
    reference_machine: str | None = flag(
        "--reference-machine", metavar="ID",
        help="machine the others are normalised to (default: the first)")
    job: str | None = flag("--job", metavar="WORKLOAD:EPOCHS:IMAGES",
                           help="training job the buyer's view prices (default "
                           "resnet50:90:1281167)")


def setup_arguments(subparsers: Any) -> None:
    add_command(subparsers, "report", ReportOptions, run,
                help="write the HTML report from results",
                description="Build a self-contained HTML report from JSON Lines results.")


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


def run(options: ReportOptions) -> int:
    from cnnbench.analyse.pairs import parse_baseline
    from cnnbench.core.prices import load_prices
    from cnnbench.report.render import write_report

    o = options
    try:
        base = parse_baseline(o.baseline) if o.baseline else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    price_list = load_prices(o.prices) if o.prices else None
    paths = o.results or [Path("results")]
    try:
        out = write_report(paths, o.output, price_list, baseline=base,
                           reference_machine=o.reference_machine, job=parse_job(o.job),
                           with_reference=o.with_reference, warn=warn)
    except ValueError as exc:
        if str(exc).startswith("--"):
            raise UsageError(str(exc)) from None
        raise
    print(f"wrote {out}")
    return 0

"""`cnnbench tune`: each framework's fastest configuration on this machine (the ceiling).

Owns its arguments (``setup_arguments``) and ``run(args)``. The search is
``cnnbench.sweep.tune``; the candidates come from the knobs each adapter declares
(``adapters.knobs``, ``cnnbench.plan.space``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cnnbench.commands import UsageError, console
from cnnbench.core.cells import MODES
from cnnbench.core.options import csv, pos_float, pos_int_list

DEFAULT_WORKLOADS = ("resnet50",)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _option_values(text: str) -> tuple[str, list[Any]]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=V1,V2,..., got {text!r}")
    return key.strip(), [_value(v) for v in csv(values)]


def setup_arguments(subparsers: Any) -> None:
    t = subparsers.add_parser(
        "tune", help="find each framework's fastest configuration that still computes the "
        "same function (the ceiling)",
        description="Search each framework's declared knobs (execution and compile mode, "
        "precision, layout, threads, batch size) by successive halving, after an accuracy "
        "gate against the oracle; then compare the best two and the default in fresh, "
        "interleaved processes until the ratio's interval is within --target-ratio-ci.")
    t.add_argument("--frameworks", type=csv, metavar="LIST", help="default: all real ones")
    t.add_argument("--workloads", type=csv, metavar="LIST",
                   help=f"default: {','.join(DEFAULT_WORKLOADS)}")
    t.add_argument("--modes", type=csv, metavar="LIST", help="infer,train (default infer)")
    t.add_argument("--devices", type=csv, metavar="LIST", help="cpu or gpu:N (default cpu)")
    t.add_argument("--batch-sizes", type=pos_int_list, metavar="LIST",
                   help="inference batches to search (default: the workload's default and 64)")
    t.add_argument("--threads", type=pos_int_list, metavar="LIST",
                   help="intra-op thread counts to search (default: all usable cores only)")
    t.add_argument("--exec-modes", type=csv, metavar="LIST",
                   help="only these of the declared execution modes")
    t.add_argument("--precisions", type=csv, metavar="LIST",
                   help="only these of the declared precisions")
    t.add_argument("--adapter-opt", type=_option_values, action="append", metavar="KEY=VALUE",
                   help="an adapter option in every candidate, the default's too")
    t.add_argument("--try-opt", type=_option_values, action="append", metavar="KEY=V1,V2",
                   help="more adapter option values to search over")
    t.add_argument("--budget", type=pos_float, default=20.0, metavar="S",
                   help="seconds of warm-up and rounds of a final run (default 20); rung k of "
                   "R gets budget / 3^(R-k)")
    t.add_argument("--rungs", type=int, default=2, metavar="N", help="successive-halving rungs")
    t.add_argument("--final-runs", type=int, default=3, metavar="N",
                   help="fresh-process runs a side before the ratio's interval is checked")
    t.add_argument("--max-final-runs", type=int, default=8, metavar="N",
                   help="at most this many runs a side")
    t.add_argument("--target-ratio-ci", type=pos_float, default=0.05, metavar="FRAC",
                   help="add final runs until the ratio's interval is within +-FRAC")
    t.add_argument("--python", type=_option_values, action="append", metavar="FW=PATH")
    t.add_argument("--results-dir", type=Path, default=Path("results"), metavar="DIR")
    t.add_argument("--run-id", metavar="ID")
    t.add_argument("--resume", metavar="RUN_ID", help="continue a search ('last' = newest)")
    t.add_argument("--machine-id", metavar="ID")
    t.add_argument("--dry-run", action="store_true",
                   help="print the candidates and the estimated wall time, then exit")
    t.add_argument("--no-progress", action="store_true", help="one line per candidate only")
    t.set_defaults(_options=None, _run=run, _check=None)  # run() reads the namespace


def _groups(a: argparse.Namespace, usable_cores: int) -> list[Any]:
    from cnnbench.commands.run import expand_frameworks, expand_workloads
    from cnnbench.core.machine import cpu_flags
    from cnnbench.plan.space import groups

    modes = a.modes or ["infer"]
    for m in modes:
        if m not in MODES:
            raise UsageError(f"cnnbench tune: unknown mode {m!r} (known: {', '.join(MODES)})")
    workloads = expand_workloads(a.workloads, list(DEFAULT_WORKLOADS))
    batches = a.batch_sizes
    return groups(expand_frameworks(a.frameworks), workloads, modes, a.devices or ["cpu"],
                  cpu_flags=cpu_flags(), threads=a.threads or [usable_cores],
                  batch_sizes=batches, exec_modes=a.exec_modes, precisions=a.precisions,
                  try_opts=dict(a.try_opt or []),
                  base_options={k: v[0] if len(v) == 1 else v for k, v in a.adapter_opt or []})


def _default_batches(a: argparse.Namespace) -> None:
    """--batch-sizes defaults to each workload's own batch and 64: filled per workload."""
    if a.batch_sizes is None:
        from workloads import get_workload

        names = a.workloads or list(DEFAULT_WORKLOADS)
        a.batch_sizes = sorted({b for n in names if n != "all" and not any(
            ch in n for ch in "*?[") for b in (get_workload(n).default_batch, 64)}) or None


def run(a: argparse.Namespace) -> int:
    from cnnbench.core import machine
    from cnnbench.measure.timing import Protocol
    from cnnbench.plan.estimate import format_duration
    from cnnbench.sweep.tune import TuneOptions, estimate_s

    if a.rungs < 1 or a.final_runs < 2 or a.max_final_runs < a.final_runs:
        raise UsageError("cnnbench tune: needs --rungs >= 1, --final-runs >= 2 and "
                         "--max-final-runs >= --final-runs")
    _default_batches(a)
    mrec = machine.probe()
    groups = _groups(a, mrec["cpu"]["usable_cores"])
    options = TuneOptions(budget_s=a.budget, rungs=a.rungs, final_runs=a.final_runs,
                          max_final_runs=a.max_final_runs, target_ratio_ci=a.target_ratio_ci)
    out = console()
    expected, most = estimate_s(groups, options, Protocol(budget_s=a.budget))
    for g in groups:
        out.print(f"{g.label}: {len(g.candidates)} candidates", markup=False)
        if a.dry_run:
            for c in g.candidates:
                out.print(f"  {c.label()} {json.dumps(c.options) if c.options else ''}",
                          markup=False)
            for knob, why in g.absent.items():
                out.print(f"  absent: {knob}: {why}", markup=False)
    out.print(f"estimated wall time: {format_duration(expected)} (up to {format_duration(most)} "
              "if every final comparison needs the most runs)", markup=False)
    if a.dry_run:
        return 0
    return _search(a, groups, options, mrec, out)


def _search(a: argparse.Namespace, groups: list[Any], options: Any, mrec: dict[str, Any],
            out: Any) -> int:
    import time

    from cnnbench.commands.run import describe, resolve_run_id
    from cnnbench.core import machine
    from cnnbench.measure.timing import Protocol
    from cnnbench.sweep.runner import RunSettings
    from cnnbench.sweep.tune import Search, overhead

    mid = a.machine_id or machine.machine_id(mrec)
    settings = RunSettings(run_id=resolve_run_id(a.results_dir, mid, a.run_id, a.resume),
                           machine_id=mid, results_dir=a.results_dir,
                           protocol=Protocol(budget_s=a.budget),
                           python_overrides={k: str(v[0]) for k, v in a.python or []},
                           gpu_count=len(mrec.get("gpus") or []))
    if a.resume and not settings.run_file.exists():
        raise UsageError(f"--resume {settings.run_id}: no such run in {settings.run_file.parent}")
    machine.write_machine(a.results_dir, mid, mrec)
    out.print(f"tune {settings.run_id} -> {settings.run_file}", markup=False)

    def on_done(cell: Any, row: dict[str, Any]) -> None:
        acc = row.get("accuracy") or {}
        extra = f" [gate {acc['check']} error {acc['error']:.2g}]" if acc else ""
        out.print(f"  {row.get('stage')}: {describe(cell, row)}{extra}", markup=False)

    search = Search(settings, options, on_done=on_done)
    t0 = time.monotonic()
    for g in groups:
        out.print(f"{g.label}: {len(g.candidates)} candidates", markup=False)
        res = search.run(g)
        out.print(f"  {g.label}: final {res.final_runs} runs a side, "
                  f"{'within' if res.settled else 'not within'} +-{options.target_ratio_ci:g}",
                  markup=False)
    rows = list(search.recorded.values())
    timed, wall = overhead(rows)
    share = f"{100 * timed / wall:.0f}%" if wall else "n/a"
    out.print(f"done in {time.monotonic() - t0:.0f} s ({search.timed} runs timed now); timed "
              f"rounds were {share} of the workers' wall time ({timed:.0f} of {wall:.0f} s)",
              markup=False)
    _print_ceilings(settings.run_file, out)
    return 0


def _print_ceilings(run_file: Path, out: Any) -> None:
    import pandas as pd

    from cnnbench.analyse.ceiling import ceilings
    from cnnbench.core.schema import iter_rows

    df = pd.DataFrame(list(iter_rows(run_file, [])))
    for c in ceilings(df):
        k = c.key
        verdict = "winner" if c.named else f"cannot be told apart from {', '.join(c.ties)}"
        gain = c.gain.text() if c.gain else "is the default"
        out.print(f"{k['framework']} {k['workload']} {k['mode']} {k['device']}: {c.best} "
                  f"{c.images_per_s:.1f} img/s [{c.low:.1f}, {c.high:.1f}] ({verdict}); "
                  f"over the default: {gain}", markup=False)

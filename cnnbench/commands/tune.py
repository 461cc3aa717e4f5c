"""`cnnbench tune`: each framework's fastest configuration on this machine (the ceiling).

Owns its arguments (``TuneCommand``, whose fields are its flags, with the search's own
``TuneOptions`` nested) and ``run(options)``. The search is
``cnnbench.sweep.tune``; the candidates come from the knobs each adapter declares
(``adapters.knobs``, ``cnnbench.plan.space``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.commands import UsageError, console
from cnnbench.core.cells import MODES
from cnnbench.core.options import (
    add_command,
    csv,
    flag,
    json_values,
    key_value,
    nested,
    pos_int_list,
    safe_id,
)
from cnnbench.measure.timing import Protocol
from cnnbench.sweep.options import pythons
from cnnbench.sweep.runner import RunSettings
from cnnbench.sweep.tune import TuneOptions

DEFAULT_WORKLOADS = ("resnet50",)


def _option_values(text: str) -> tuple[str, list[Any]]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=V1,V2,..., got {text!r}")
    return key.strip(), [json_values([("v", v)])["v"] for v in csv(values)]


@dataclass
class TuneCommand:
    """Every `cnnbench tune` option: what to search, and the search's own settings."""

    frameworks: list[str] | None = flag("--frameworks", type=csv, metavar="LIST",
                                        help="default: all real ones")
    workloads: list[str] | None = flag(
        "--workloads", type=csv, metavar="LIST", help=f"default: {','.join(DEFAULT_WORKLOADS)}; "
        "NAME:MODE pins a workload's mode (resnet50:infer,resnet20:train)")
    modes: list[str] = flag("--modes", factory=lambda: ["infer"], type=csv, metavar="LIST",
                            help="infer,train (default infer)")
    devices: list[str] = flag("--devices", factory=lambda: ["cpu"], type=csv, metavar="LIST",
                              help="cpu or gpu:N (default cpu)")
    batch_sizes: list[int] | None = flag(
        "--batch-sizes", type=pos_int_list, metavar="LIST",
        help="inference batches to search (default: the workload's default and 64)")
    threads: list[int] | None = flag("--threads", type=pos_int_list, metavar="LIST",
                                     help="intra-op thread counts to search (default: all "
                                     "usable cores only)")
    exec_modes: list[str] | None = flag(
        "--exec-modes", type=csv, metavar="LIST",
        help="only these execution modes (default: every declared one but the eager modes "
        "that a framework's docs call debugging modes; naming one searches it)")
    precisions: list[str] | None = flag("--precisions", type=csv, metavar="LIST",
                                        help="only these of the declared precisions")
    adapter_opt: dict[str, Any] = flag(
        "--adapter-opt", factory=dict, type=key_value, action="append", metavar="KEY=VALUE",
        convert=json_values, help="an adapter option in every candidate, the default's too")
    try_opt: dict[str, list[Any]] = flag(
        "--try-opt", factory=dict, type=_option_values, action="append", metavar="KEY=V1,V2",
        convert=dict, help="more adapter option values to search over")
    search: TuneOptions = nested(TuneOptions)
    python: dict[str, str] = flag(
        "--python", factory=dict, type=key_value, action="append", metavar="FW=PATH",
        convert=pythons, help="use this interpreter for a framework instead of its tox env")
    results_dir: Path = flag("--results-dir", default=Path("results"), type=Path, metavar="DIR")
    run_id: str | None = flag("--run-id", type=safe_id, metavar="ID")
    resume: str | None = flag("--resume", type=safe_id, metavar="RUN_ID",
                              help="continue a search ('last' = newest): nothing recorded is "
                              "timed again")
    machine_id: str | None = flag("--machine-id", type=safe_id, metavar="ID")
    dry_run: bool = flag("--dry-run", action="store_true",
                         help="print the candidates and the estimated wall time, then exit")
    no_progress: bool = flag("--no-progress", action="store_true",
                             help="one line per candidate only")


def _candidates(g: Any) -> str:
    n = len(g.candidates)
    return f"{n} candidate{'' if n == 1 else 's'}"


def setup_arguments(subparsers: Any) -> None:
    add_command(
        subparsers, "tune", TuneCommand, run,
        help="find each framework's fastest configuration that still computes the same "
        "function (the ceiling)",
        description="Search each framework's declared knobs (execution and compile mode, "
        "precision, layout, threads, batch size) by successive halving, after an accuracy "
        "gate against the oracle; then compare the best two and the default in fresh, "
        "interleaved processes until the ratio's interval is within --target-ratio-ci.")


def _groups(a: TuneCommand, usable_cores: int) -> list[Any]:
    from cnnbench.commands.run import expand_frameworks, expand_workloads, pinned_modes
    from cnnbench.core.machine import cpu_flags
    from cnnbench.plan.space import groups

    for m in a.modes:
        if m not in MODES:
            raise UsageError(f"cnnbench tune: unknown mode {m!r} (known: {', '.join(MODES)})")
    from workloads import get_workload

    out = []
    for names, pinned in pinned_modes(a.workloads):  # resnet50:infer,resnet20:train
        for w in expand_workloads(names, list(DEFAULT_WORKLOADS)):
            # Inference batches: --batch-sizes, or the workload's own and 64.
            batches = a.batch_sizes or sorted({get_workload(w).default_batch, 64})
            out += groups(expand_frameworks(a.frameworks), [w], pinned or a.modes, a.devices,
                          cpu_flags=cpu_flags(), threads=a.threads or [usable_cores],
                          batch_sizes=batches, exec_modes=a.exec_modes,
                          precisions=a.precisions, try_opts=a.try_opt,
                          base_options=a.adapter_opt)
    return out


def run(a: TuneCommand) -> int:
    from cnnbench.core import machine
    from cnnbench.plan.estimate import format_duration
    from cnnbench.sweep.tune import estimate_s

    mrec = machine.probe()
    groups = _groups(a, mrec["cpu"]["usable_cores"])
    out = console()
    expected, most = estimate_s(groups, a.search, Protocol(budget_s=a.search.budget_s))
    for g in groups:
        out.print(f"{g.label}: {_candidates(g)}", markup=False)
        if a.dry_run:
            for c in g.candidates:
                out.print(f"  {c.label()} {json.dumps(c.options) if c.options else ''}",
                          markup=False)
            for knob, why in {**g.absent, **g.pruned}.items():
                what = "not searched" if knob in g.pruned else "absent"
                out.print(f"  {what}: {knob}: {why}", markup=False)
    out.print(f"estimated wall time: {format_duration(expected)} (up to {format_duration(most)} "
              "if every final comparison needs the most runs)", markup=False)
    if a.dry_run:
        return 0
    return _search(a, groups, mrec, out)


def _settings(a: TuneCommand, mrec: dict[str, Any]) -> RunSettings:
    from cnnbench.commands.run import resolve_run_id
    from cnnbench.core import machine

    mid = a.machine_id or machine.machine_id(mrec)
    settings = RunSettings(run_id=resolve_run_id(a.results_dir, mid, a.run_id, a.resume),
                           machine_id=mid, results_dir=a.results_dir,
                           protocol=Protocol(budget_s=a.search.budget_s),
                           python_overrides=dict(a.python),
                           gpu_count=len(mrec.get("gpus") or []))
    if a.resume and not settings.run_file.exists():
        raise UsageError(f"--resume {settings.run_id}: no such run in {settings.run_file.parent}")
    machine.write_machine(a.results_dir, mid, mrec)
    return settings


def _search(a: TuneCommand, groups: list[Any], mrec: dict[str, Any], out: Any) -> int:
    import time

    from cnnbench.commands.run import describe
    from cnnbench.sweep.tune import Search, overhead

    settings = _settings(a, mrec)
    out.print(f"tune {settings.run_id} -> {settings.run_file}", markup=False)

    def on_done(cell: Any, row: dict[str, Any]) -> None:
        acc = row.get("accuracy") or {}
        extra = f" [gate {acc['check']} error {acc['error']:.2g}]" if acc else ""
        opts = " ".join(f"{k}={v}" for k, v in sorted(cell.options.items()))
        out.print(f"  {row.get('stage')}: {describe(cell, row)}{' ' + opts if opts else ''}"
                  f"{extra}", markup=False)

    search = Search(settings, a.search, on_done=on_done)
    t0 = time.monotonic()
    for g in groups:
        out.print(f"{g.label}: {_candidates(g)}", markup=False)
        res = search.run(g)
        out.print(f"  {g.label}: final {res.final_runs} runs a side, "
                  f"{'within' if res.settled else 'not within'} +-{a.search.target_ratio_ci:g}",
                  markup=False)
    timed, wall = overhead(list(search.recorded.values()))
    share = f"{100 * timed / wall:.0f}%" if wall else "n/a"
    out.print(f"done in {time.monotonic() - t0:.0f} s ({search.timed} runs timed now); timed "
              f"rounds were {share} of the workers' wall time ({timed:.0f} of {wall:.0f} s)",
              markup=False)
    _print_ceilings(settings.run_file, out)
    return 0


def _print_ceilings(run_file: Path, out: Any) -> None:
    import pandas as pd

    from cnnbench.analyse.ceiling import ceilings, precision_gains
    from cnnbench.core.schema import iter_rows

    df = pd.DataFrame(list(iter_rows(run_file, [])))
    for c in ceilings(df):
        k = c.key
        verdict = "winner" if c.named else f"cannot be told apart from {', '.join(c.ties)}"
        gain = c.gain.text() if c.gain else "is the default"
        out.print(f"{k['framework']} {k['workload']} {k['mode']} {k['device']}: {c.best} "
                  f"{c.images_per_s:.1f} img/s [{c.low:.1f}, {c.high:.1f}] ({verdict}); "
                  f"over the default: {gain}", markup=False)
    for g in precision_gains(df):
        k = g.key
        what = f"{g.gain.text()} ({g.config}; {g.source})" if g.gain else str(g.reason)
        out.print(f"{k['framework']} {k['workload']} {k['mode']} {k['device']}: bf16 over fp32: "
                  f"{what}", markup=False)

"""`cnnbench run --launcher slurm`: submit the sweep as a job array, then show its progress
(pending, running, done) until no job is left, or return at once with ``--detach``;
``--resume RUN_ID`` collects a sweep and resubmits the cells neither recorded nor queued."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnbench.commands import UsageError, console
from cnnbench.core.cells import Cell
from cnnbench.sweep import slurmctl as slurm
from cnnbench.sweep.runner import RunSettings, new_run_id
from cnnbench.sweep.slurm import (
    Progress,
    SlurmOptions,
    Sweep,
    collect,
    counts,
    settings_dict,
    state_dir,
    submit,
    watch,
)


def _check() -> None:
    why = slurm.missing()
    if why:
        raise UsageError(f"cnnbench run --launcher slurm: {why}")


def node_cpus(opts: SlurmOptions) -> list[int] | None:
    """The CPUs Slurm gives a node of the partition (the fewest, where nodes differ): the
    default thread count of the cells, which this submitting machine cannot know."""
    _check()
    args = ["sinfo", "--noheader", "--format=%c"] + (
        [f"--partition={opts.partition}"] if opts.partition else [])
    try:
        out = slurm._run(args)
    except slurm.SlurmError as exc:
        raise UsageError(f"cnnbench run: {exc}") from None
    cpus = [int(c.rstrip("+")) for c in out.split() if c.rstrip("+").isdigit()]
    if not cpus:
        where = f"partition {opts.partition!r}" if opts.partition else "the default partition"
        raise UsageError(f"cnnbench run: sinfo lists no node in {where}")
    return [min(cpus)]


def submit_sweep(cells: list[Cell], *, results_dir: Path, run_id: str | None,
                 machine_id: str | None, variants_file: Path | None, options: SlurmOptions,
                 detach: bool, no_progress: bool, strict: bool, report: Path | None,
                 settings: RunSettings) -> int:
    _check()
    settings.run_id = run_id or new_run_id()
    sdir = state_dir(results_dir, settings.run_id)
    if (sdir / "sweep.json").exists():
        raise UsageError(f"cnnbench run: run {settings.run_id} exists in {sdir}; continue it "
                         f"with --resume {settings.run_id}")
    data = settings_dict(settings, variants_file, options)
    data["machine_id"] = machine_id
    sweep = Sweep.new(sdir, cells, data, options)
    sdir.mkdir(parents=True, exist_ok=True)
    sweep.save()
    return _go(sweep, cells, detach, no_progress, strict, report)


def resume(results_dir: Path, run_id: str, detach: bool, no_progress: bool,
           strict: bool) -> int:
    _check()
    if run_id == "last":
        sweeps = sorted(results_dir.glob("slurm/*/sweep.json"), key=lambda p: p.stat().st_mtime)
        if not sweeps:
            raise UsageError(f"--resume last: no Slurm sweep in {results_dir / 'slurm'}")
        run_id = sweeps[-1].parent.name
    sdir = state_dir(results_dir, run_id)
    if not (sdir / "sweep.json").exists():
        raise UsageError(f"--resume {run_id}: no Slurm sweep in {sdir}")
    sweep = Sweep.load(sdir)
    return _go(sweep, None, detach, no_progress, strict, None)


def _go(sweep: Sweep, cells: list[Cell] | None, detach: bool, no_progress: bool,
        strict: bool, report: Path | None) -> int:
    """Collect what is known, submit what is neither recorded nor live, then watch."""
    out = console()
    try:
        p = collect(sweep, on_row=_printer(out))
        todo = [sweep.cells[c] for c in sweep.cells if c in p.not_run]
        job = submit(sweep, todo, sweep.options)
    except slurm.SlurmError as exc:
        raise UsageError(f"cnnbench run: {exc}") from None
    live = p.pending + p.running
    out.print(f"run {sweep.run_id}: {len(todo)} cells submitted"
              + (f" as job array {job}" if job else "")
              + (f", {live} in jobs already queued or running" if live else "")
              + (f", {p.done} already recorded" if p.done else "")
              + f"; state in {sweep.dir}", markup=False)
    if detach:
        out.print(f"detached: collect with `cnnbench run --resume {sweep.run_id} "
                  f"--results-dir {sweep.results_dir}`", markup=False)
        return 0
    final = _watch_with_progress(sweep, out, no_progress)
    return _summary(sweep, final, out, strict, report)


def _printer(out: Any) -> Callable[[Cell, dict[str, Any]], None]:
    from rich.markup import escape

    from cnnbench.sweep.runner import describe

    def show(cell: Cell, row: dict[str, Any]) -> None:
        color = "green" if row["status"] == "ok" else "red"
        out.print(f"[{color}]{escape(describe(cell, row))}[/{color}]")

    return show


def _watch_with_progress(sweep: Sweep, out: Any, no_progress: bool) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
              TimeElapsedColumn(), console=out, disable=no_progress, transient=False)
    show = _printer(bar.console)
    with bar:
        task = bar.add_task("slurm", total=len(sweep.cells))

        def on_poll(p: Progress) -> None:
            bar.update(task, completed=p.done, description=(
                f"pending {p.pending}, running {p.running}, done {p.done}"))

        try:
            return watch(sweep, show, on_poll)
        except KeyboardInterrupt:
            bar.stop()
            raise UsageError(
                f"interrupted; the jobs go on in Slurm. Collect them with `cnnbench run "
                f"--resume {sweep.run_id} --results-dir {sweep.results_dir}`") from None
        except slurm.SlurmError as exc:
            raise UsageError(f"cnnbench run: {exc}") from None


def _summary(sweep: Sweep, p: Progress, out: Any, strict: bool, report: Path | None) -> int:
    c = counts(sweep)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(c.items())) or "nothing recorded"
    files = sorted(sweep.results_dir.glob(f"*/{sweep.run_id}.jsonl"))
    out.print(f"done: {summary}. Results: {', '.join(map(str, files)) or '(none)'}",
              markup=False)
    if p.not_run:
        out.print(f"{len(p.not_run)} cells not run (their jobs ended before reaching them); "
                  f"`cnnbench run --resume {sweep.run_id} --results-dir {sweep.results_dir}` "
                  "submits them again", markup=False)
    if report:
        from cnnbench.report.render import write_report

        out.print(f"report: {write_report([sweep.results_dir], report)}", markup=False)
    return 1 if strict and (set(c) - {"ok"} or p.not_run) else 0

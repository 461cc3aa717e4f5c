"""`cnnbench run`: plan the cells, check the plan, run it with progress, write the report.

``run(...)`` takes the command line's values as plain parameters; every check that can
refuse the input runs before anything is measured, and refuses with a ``UsageError``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

from cnnbench.commands import UsageError, console
from cnnbench.commands.buyer import extend_plan, run_fits
from cnnbench.core.cells import MODES, Cell
from cnnbench.core.options import add_command, given
from cnnbench.measure.timing import Protocol
from cnnbench.plan.expand import expand
from cnnbench.plan.variants import VariantSet, load_variants_file
from cnnbench.sweep.nodes import Nodes, split_endpoint
from cnnbench.sweep.options import (
    DEFAULT_REPEAT,
    GROUPS,
    QUICK_BATCH,
    QUICK_BUDGET_S,
    QUICK_WORKLOADS,
    RunOptions,
    SlurmOptions,
)
from cnnbench.sweep.runner import RunSettings, describe

__all__ = ["DEFAULT_REPEAT", "QUICK_BATCH", "QUICK_BUDGET_S", "QUICK_WORKLOADS", "RunOptions",
           "describe", "run", "setup_arguments"]


def setup_arguments(subparsers: Any) -> None:
    add_command(subparsers, "run", RunOptions, run, groups=GROUPS, check=_check_flags,
                help="run a sweep of cells, one worker process per cell",
                description="Expand frameworks x variants x devices x workloads x modes x batch "
                "sizes x precisions x execution modes x threads into cells and run each in "
                "its own worker process.")


def _check_flags(ns: Any) -> None:
    """What the parsed flags alone can refuse: Slurm's options without the Slurm launcher."""
    slurm_flags = given(SlurmOptions, ns)
    if ns.launcher != "slurm" and slurm_flags:
        raise UsageError(f"cnnbench run: {', '.join(slurm_flags)} need --launcher slurm")
    if ns.launcher == "slurm" and ns.target_ratio_ci:
        raise UsageError("cnnbench run: --target-ratio-ci decides each next run from the last "
                         "one's rows, so it runs here only (not with --launcher slurm)")


def protocol(budget_s: float, target_ci: float) -> Protocol:
    """The timing protocol of the run, checked once here and sent to every worker as it is."""
    try:
        return Protocol(budget_s=budget_s, target_rel_ci=target_ci)
    except ValueError as exc:
        raise UsageError(f"cnnbench run: {exc} (see --budget, --target-ci)") from None


def expand_workloads(names: list[str] | None, default: list[str]) -> list[str]:
    from workloads import get_workload, list_workloads

    if names is None:
        return list(default)
    out: list[str] = []
    for n in names:
        if n == "all":
            out.extend(list_workloads())
        elif any(c in n for c in "*?["):
            hits = list_workloads(n)
            if not hits:
                raise UsageError(f"no workload matches {n!r}")
            out.extend(hits)
        else:
            get_workload(n)
            out.append(n)
    return out


def expand_frameworks(names: list[str] | None) -> list[str]:
    from adapters import FRAMEWORKS, get_info

    if names is None or names == ["all"]:
        return list(FRAMEWORKS)
    for n in names:
        get_info(n)
    return names


def check_threads(cells: list[Cell], variants: VariantSet) -> None:
    """Refuse a variant whose environment would silently override the pinned thread count
    (the row would report the requested count while another was in force)."""
    from cnnbench.plan.envs import THREAD_VARS

    for c in cells:
        v = variants.get(c.framework, c.variant)
        if v is None or not c.threads:
            continue
        for var in THREAD_VARS:
            if var in v.env and v.env[var] != str(c.threads):
                raise UsageError(
                    f"variant {v.name!r} sets {var}={v.env[var]}, which conflicts with "
                    f"{c.threads} threads (--threads); remove it from the variant or pass "
                    f"--threads {v.env[var]}")


def resolve_run_id(results_dir: Path, machine_id: str, run_id: str | None,
                   resume: str | None) -> str:
    if resume == "last":
        runs = sorted((results_dir / machine_id).glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise UsageError(f"--resume last: no run in {results_dir / machine_id}")
        return runs[-1].stem
    from cnnbench.sweep.runner import new_run_id

    return resume or run_id or new_run_id()


def plan(frameworks: list[str], *, quick: bool, full: bool, workloads: list[str] | None,
         modes: list[str] | None, batch_sizes: list[int] | None, own_variants: bool = False,
         **axes: Any) -> list[Cell]:
    """The cells of the run. Without workload, mode or batch options it is a preset:
    `presets.DEFAULT_PLAN` or, with ``full``, `presets.FULL_PLAN`; ``quick`` is the
    few-minute smoke plan. ``own_variants``: the run named no variants, so a preset's
    entries run the variants they name (the default preset's ISA ladder on ResNet-20)."""
    from cnnbench.plan.presets import DEFAULT_PLAN, FULL_PLAN

    if quick or workloads or modes or batch_sizes:
        cells: list[Cell] = []
        for names, pinned in pinned_modes(workloads):
            cells += expand(frameworks,
                            expand_workloads(names, list(QUICK_WORKLOADS) if quick else _all()),
                            modes=pinned or modes or list(MODES),
                            batch_sizes=batch_sizes or ([QUICK_BATCH] if quick else None), **axes)
        return cells
    return (FULL_PLAN if full else DEFAULT_PLAN).expand(frameworks, own_variants=own_variants,
                                                        **axes)


def pinned_modes(workloads: list[str] | None) -> list[tuple[list[str] | None, list[str] | None]]:
    """``--workloads resnet50:infer,resnet20:train``: a workload may pin its modes (NAME:MODE,
    repeated for several), the others take ``--modes``. (names, pinned modes) groups."""
    if workloads is None:
        return [(None, None)]
    plain = [w for w in workloads if ":" not in w]
    by_mode: dict[str, list[str]] = {}
    for w in workloads:
        if ":" in w:
            name, _, mode = w.partition(":")
            if mode not in MODES:
                raise UsageError(f"--workloads {w}: unknown mode {mode!r} "
                                 f"(known: {', '.join(MODES)})")
            by_mode.setdefault(mode, []).append(name)
    groups: list[tuple[list[str] | None, list[str] | None]] = [(plain, None)] if plain else []
    return groups + [(names, [mode]) for mode, names in by_mode.items()]


def default_budget(quick: bool, full: bool) -> float:
    from cnnbench.plan.presets import DEFAULT_PLAN, FULL_PLAN

    return QUICK_BUDGET_S if quick else (FULL_PLAN if full else DEFAULT_PLAN).budget_s


def run(options: RunOptions) -> int:
    """`cnnbench run` with ``options``: every check that can refuse them runs before
    anything is measured."""
    from cnnbench.core import machine

    o = options
    launcher = _launcher(o)
    if launcher == "slurm" and o.resume:
        from cnnbench.commands import run_slurm

        return run_slurm.resume(o.results_dir, o.resume, o.detach, o.no_progress, o.strict)
    vset = VariantSet(load_variants_file(o.variants_file) if o.variants_file else None)
    variant_names = o.variants or ["default"]
    vset.check_names(variant_names)
    vset.check_interpreters(variant_names)
    if o.quick and o.full:
        raise UsageError("cnnbench run: --quick and --full exclude each other")
    proto = protocol(o.budget or default_budget(o.quick, o.full), o.target_ci)
    mrec = machine.probe()
    nodes = multinode(o.nnodes, o.rdzv_endpoint, o.rdzv_id, o.node_rank, o.node_addrs)
    gpu_count = len(mrec.get("gpus") or [])
    threads = o.threads or [mrec["cpu"]["usable_cores"]]
    if launcher == "slurm":
        from cnnbench.commands import run_slurm

        # The compute nodes', not this machine's: Slurm's CPUs and GPUs per node.
        threads = o.threads or run_slurm.node_cpus(o.slurm) or threads
        gpu_count = o.slurm.gpus_per_node or 0
    cells = cells_of(o, variant_names, threads, gpu_count)
    check_threads(cells, vset)
    if o.dry_run:
        return _dry_run(cells, proto, o)
    if launcher == "slurm":
        return _submit(cells, o, RunSettings.from_options(
            o, run_id="", machine_id="", protocol=proto, variants=vset))
    mid = o.machine_id or machine.machine_id(mrec)
    settings = RunSettings.from_options(
        o, run_id=resolve_run_id(o.results_dir, mid, o.run_id, o.resume), machine_id=mid,
        protocol=proto, variants=vset, gpu_count=gpu_count, nodes=nodes,
        gpu_reason=mrec.get("gpu_error") or ("NVML lists no GPU" if not gpu_count else None))
    if nodes.count > 1 and not nodes.rdzv_id:
        nodes.rdzv_id = settings.run_id
    if o.resume and not settings.run_file.exists():
        raise UsageError(f"--resume {settings.run_id}: no such run in {settings.run_file.parent}")
    machine.write_machine(o.results_dir, mid, mrec)
    return _run_here(cells, settings, o)


def _launcher(o: RunOptions) -> str:
    """Where the run goes, checked against the flags that only one launcher takes."""
    launcher = o.launcher
    if launcher == "local" and o.resume and o.resume != "last" and _slurm_state(o.results_dir,
                                                                               o.resume):
        launcher = "slurm"  # a Slurm sweep is resumed (collected) by its own launcher
    if launcher == "slurm" and o.nnodes > 1:
        raise UsageError("cnnbench run: with --launcher slurm, --nodes-per-job N spans "
                         "each job over N nodes (--nnodes is for runs started by hand)")
    if launcher != "slurm" and o.detach:
        raise UsageError("cnnbench run: --detach needs --launcher slurm")
    return launcher


def cells_of(o: RunOptions, variant_names: list[str], threads: list[int],
             gpu_count: int) -> list[Cell]:
    """The run's cells: the plan, each repeated ``--repeat`` times."""
    cells = plan(expand_frameworks(o.frameworks), quick=o.quick, full=o.full,
                 workloads=o.workloads, modes=o.modes, batch_sizes=o.batch_sizes,
                 own_variants=o.variants is None, precisions=o.precisions or ["fp32"],
                 exec_modes=o.exec_modes or ["default"], devices=o.devices or ["cpu"],
                 variants=variant_names, threads=threads, options=o.adapter_opt,
                 scalings=o.scaling or ["weak"], gpu_count=gpu_count)
    cells = extend_plan(cells, o.buyer)  # latency cells (--latency)
    if o.repeat > 1:
        # Repeats are interleaved (every cell once, then every cell again), so slow drifts
        # of the machine spread over all cells instead of biasing the last ones.
        cells = [dataclasses.replace(c, repeat=r) for r in range(o.repeat) for c in cells]
    return cells


def _dry_run(cells: list[Cell], proto: Protocol, o: RunOptions) -> int:
    from cnnbench.plan.estimate import describe_plan
    from cnnbench.plan.probes import probe_cells

    out = console()
    for c in cells:
        out.print(c.label(), markup=False)
    out.print(f"{len(cells)} cells", markup=False)
    probes = [] if o.no_probe else probe_cells(cells)
    for line in describe_plan(cells, proto.budget_s, probes=probes, protocol=proto,
                              kernel_probe=not o.no_kernel_probe):
        out.print(line, markup=False)
    return 0


def _submit(cells: list[Cell], o: RunOptions, settings: RunSettings) -> int:
    from cnnbench.commands import run_slurm

    return run_slurm.submit_sweep(
        cells, results_dir=o.results_dir, run_id=o.run_id, machine_id=o.machine_id,
        variants_file=o.variants_file, options=o.slurm, detach=o.detach,
        no_progress=o.no_progress, strict=o.strict, report=o.report, settings=settings)


def _run_here(cells: list[Cell], settings: RunSettings, o: RunOptions) -> int:
    from cnnbench.sweep.runner import pending

    out = console()
    todo = pending(cells, settings)
    n_cells = sum(c.mode != "peak" for c in todo)
    recorded = len(cells) - n_cells
    out.print(f"run {settings.run_id}: {n_cells} cells to run"
              + (f" ({recorded} already recorded)" if recorded else "")
              + f" -> {settings.run_file}", markup=False)
    counts = _run_with_progress(cells, todo, settings, out, o.no_progress)
    if o.target_ratio_ci:
        from cnnbench.sweep.settle import settle

        def more(extra: list[Cell]) -> None:
            counts.update(_run_with_progress(extra, pending(extra, settings), settings, out,
                                             o.no_progress))

        settle(cells, settings, o.target_ratio_ci, o.max_repeat, run=more,
               say=lambda text: out.print(text, markup=False))
    run_fits(cells, settings, o.buyer, out)  # the largest batch that fits (--fit)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to run"
    out.print(f"done: {summary}. Results: {settings.run_file}", markup=False)
    if o.report:
        out.print(f"report: {_report(o.results_dir, settings.machine_id, o.report, o.with_reference)}",
                  markup=False)
    return 1 if o.strict and set(counts) - {"ok", "follower"} else 0


def _report(results_dir: Path, machine_id: str, output: Path, with_reference: bool) -> Path:
    """The report of this machine's results (every run of it), not of whatever else lies in
    the results folder; with the reference bundles there only when asked."""
    from cnnbench.commands.report import warn
    from cnnbench.core.results import reference_notes
    from cnnbench.core.schema import reference_root, result_files
    from cnnbench.report.render import write_report

    mine = [results_dir / machine_id]
    if with_reference:
        bundles = [f for f in result_files([results_dir], with_reference=True)
                   if reference_root(f.parent) is not None]
        return write_report([*mine, *bundles], output, warn=warn)
    left: dict[Path, int] = {}
    result_files([results_dir], left_out=left)  # only to say what the report leaves out
    return write_report(mine, output, warn=warn, notes=reference_notes(left, {}))


def multinode(nnodes: int, rdzv_endpoint: str | None, rdzv_id: str | None,
              node_rank: int | None, node_addrs: list[str] | None) -> Nodes:
    """Where the ranks of a run started by hand on every node meet (``--nnodes`` > 1)."""
    if nnodes == 1:
        if node_rank is not None or node_addrs:
            raise UsageError("cnnbench run: --node-rank and --node-addrs go with --nnodes N")
        return Nodes()
    if not rdzv_endpoint:
        raise UsageError("cnnbench run: --nnodes needs --rdzv-endpoint HOST:PORT (the same on "
                         "every node)")
    try:
        host, port = split_endpoint(rdzv_endpoint)
    except ValueError as exc:
        raise UsageError(f"cnnbench run: --rdzv-endpoint: {exc}") from None
    if node_rank is not None and node_rank >= nnodes:
        raise UsageError(f"cnnbench run: --node-rank {node_rank} is not below --nnodes {nnodes}")
    if node_addrs and len(node_addrs) != nnodes:
        raise UsageError(f"cnnbench run: --node-addrs lists {len(node_addrs)} nodes, "
                         f"--nnodes says {nnodes}")
    return Nodes(count=nnodes, host=host, addrs=list(node_addrs or []), port=port,
                 rdzv_id=rdzv_id or "", rank=node_rank)


def _slurm_state(results_dir: Path, run_id: str) -> bool:
    from cnnbench.sweep.slurm import state_dir

    return (state_dir(results_dir, run_id) / "sweep.json").exists()


def _all() -> list[str]:
    from workloads import list_workloads

    return list_workloads()


def _run_with_progress(cells: list[Cell], todo: list[Cell], settings: RunSettings, out: Any,
                       no_progress: bool) -> Counter[str]:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cnnbench.core.schema import iter_rows
    from cnnbench.plan.estimate import format_duration, peaks_from_rows
    from cnnbench.sweep.eta import Eta, eta_column
    from cnnbench.sweep.runner import run_plan

    # The ETA is the dry run's estimate of the cells left, corrected as cells finish (a resumed
    # run starts from the peaks it already measured).
    recorded = list(iter_rows(settings.run_file, [])) if settings.run_file.exists() else []
    eta = Eta(todo, settings.protocol.budget_s, peaks=peaks_from_rows(recorded),
              protocol=settings.protocol, kernel_probe=settings.kernel_probe)
    out.print(f"estimated wall time: {format_duration(eta.remaining_s())}", markup=False)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), eta_column(eta), console=out,
                        disable=no_progress, transient=False)
    with progress:
        task = progress.add_task("sweep", total=len(todo))

        def on_start(cell: Cell) -> None:
            eta.start(cell)
            progress.update(task, description=escape(cell.label()))

        def on_done(cell: Cell, row: dict[str, Any]) -> None:
            eta.done_row(cell, row)
            color = "green" if row["status"] == "ok" else "red"
            progress.console.print(f"[{color}]{escape(describe(cell, row))}[/{color}]")
            progress.advance(task)

        try:
            return run_plan(cells, settings, on_start=on_start, on_done=on_done)
        except KeyboardInterrupt:
            progress.stop()
            raise UsageError(
                f"interrupted; finished cells are in {settings.run_file}; continue with "
                f"`cnnbench run --resume {settings.run_id}` and the same options"
            ) from None

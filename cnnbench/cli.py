"""`cnnbench` command line: run, report, env, list.

Bad input gets one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from adapters import ADAPTERS, FRAMEWORKS, UnknownAdapter, get_info
from workloads import UnknownWorkload, get_workload, list_workloads

from .plan import MODES, PRECISIONS, PlanError, expand
from .prices import PriceError
from .variants import VariantError, VariantSet, load_variants_file

QUICK_WORKLOADS = ("lenet5", "cifar10_tutorial", "resnet20")
QUICK_BATCH = 32
QUICK_BUDGET_S = 4.0
DEFAULT_BUDGET_S = 20.0


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage lines too
        raise UsageError(f"{self.prog}: {message} (see --help)")


# ------------------------------------------------------------------- value parsers


def _csv(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def _pos_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _pos_int_list(text: str) -> list[int]:
    return [_pos_int(t) for t in _csv(text)]


def _pos_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _name_list(text: str) -> list[str]:
    return _csv(text)


_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _safe_id(text: str) -> str:
    """Run and machine ids become file names: no separators, no leading dot."""
    if not text or text.startswith(".") or not set(text) <= _ID_CHARS or len(text) > 100:
        raise argparse.ArgumentTypeError(
            f"ids may hold letters, digits, '.', '_' and '-' (not first '.'), got {text!r}")
    return text


def _pythons(pairs: list[tuple[str, str]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for fw, path in pairs or []:
        get_info(fw)
        if not Path(path).exists():
            raise UsageError(f"--python {fw}={path}: no such interpreter")
        out[fw] = path
    return out


def _adapter_opts(pairs: list[tuple[str, str]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs or []:
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


# ------------------------------------------------------------------- subcommands


def _expand_workloads(names: list[str] | None, quick: bool) -> list[str]:
    if names is None:
        return list(QUICK_WORKLOADS) if quick else list_workloads()
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


def _expand_frameworks(names: list[str] | None) -> list[str]:
    if names is None or names == ["all"]:
        return list(FRAMEWORKS)
    for n in names:
        get_info(n)
    return names


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from . import machine
    from .runner import RunSettings, new_run_id, recorded_cells, run_plan
    from .validity import probe_cells

    variants = VariantSet(load_variants_file(args.variants_file) if args.variants_file else None)
    variant_names = args.variants or ["default"]
    variants.check_names(variant_names)
    frameworks = _expand_frameworks(args.frameworks)
    workloads = _expand_workloads(args.workloads, args.quick)
    batch_sizes = args.batch_sizes or ([QUICK_BATCH] if args.quick else None)
    budget = args.budget or (QUICK_BUDGET_S if args.quick else DEFAULT_BUDGET_S)
    opts = _adapter_opts(args.adapter_opt)
    pythons = _pythons(args.python)
    mrec = machine.probe()
    threads = args.threads or [mrec["cpu"]["usable_cores"]]
    cells = expand(frameworks, workloads, modes=args.modes or list(MODES),
                   batch_sizes=batch_sizes, precisions=args.precisions or ["fp32"],
                   exec_modes=args.exec_modes or ["default"], devices=args.devices or ["cpu"],
                   variants=variant_names, threads=threads, options=opts)
    if args.repeat > 1:
        # Repeats are interleaved (every cell once, then every cell again), so slow drifts
        # of the machine spread over all cells instead of biasing the last ones.
        cells = [dataclasses.replace(c, repeat=r) for r in range(args.repeat) for c in cells]
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    if args.dry_run:
        for c in cells:
            console.print(c.label(), markup=False)
        console.print(f"{len(cells)} cells")
        return 0

    mid = args.machine_id or machine.machine_id(mrec)
    run_id = args.resume or args.run_id or new_run_id()
    if args.resume == "last":
        runs = sorted((args.results_dir / mid).glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise UsageError(f"--resume last: no run in {args.results_dir / mid}")
        run_id = runs[-1].stem
    protocol = {"budget_s": budget, "target_rel_ci": args.target_ci}
    settings = RunSettings(run_id=run_id, machine_id=mid, results_dir=args.results_dir,
                           protocol=protocol, timeout_s=args.timeout, python_overrides=pythons,
                           variants=variants, memory_limit_mb=args.memory_limit_mb or 0,
                           verbose=args.verbose, probe_peak=not args.no_probe,
                           check_noise=not args.no_noise_check, interleave=args.interleave)
    if args.resume and not settings.run_file.exists():
        raise UsageError(f"--resume {run_id}: no such run in {settings.run_file.parent}")
    machine.write_machine(args.results_dir, mid, mrec)
    done = recorded_cells(settings.run_file)
    todo = [c for c in cells if c.cell_id not in done]
    console.print(f"run {run_id}: {len(todo)} cells to run"
                  + (f" ({len(cells) - len(todo)} already recorded)" if done else "")
                  + f" -> {settings.run_file}", markup=False)
    probes = [p for p in probe_cells(todo) if p.cell_id not in done] if settings.probe_peak else []
    counts = _run_with_progress(todo, len(probes), settings, run_plan, console, args.no_progress)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to run"
    console.print(f"done: {summary}. Results: {settings.run_file}", markup=False)
    if args.report:
        from .report import write_report

        out = write_report([args.results_dir], args.report)
        console.print(f"report: {out}", markup=False)
    if args.strict and set(counts) - {"ok"}:
        return 1
    return 0


def _run_with_progress(cells: list[Any], n_probes: int, settings: Any, run_plan: Any,
                       console: Any, no_progress: bool) -> Any:
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .validity import probe_peak

    def line(cell: Any, row: dict[str, Any]) -> str:
        peak = probe_peak(row) if row["mode"] == "peak" else None
        if peak is not None:  # an ok GEMM probe
            what = f"GEMM peak {peak / 1e9:.1f} GFLOP/s (best round)"
        elif row["status"] == "ok":
            what = (f"{row['images_per_s']:.1f} img/s "
                    f"[{row['ci95_low']:.1f}, {row['ci95_high']:.1f}]")
            if row.get("mfu") is not None:
                what += f" MFU {100 * row['mfu']:.1f}%"
            if row["flags"]:
                what += f" flags={','.join(row['flags'])}"
        else:
            what = f"{row['status'].upper()}: {row['error']}"
        return escape(f"{cell.label()}: {what}")

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=console, disable=no_progress, transient=False)
    with progress:
        task = progress.add_task("sweep", total=len(cells) + n_probes)

        def on_start(cell: Any) -> None:
            progress.update(task, description=escape(cell.label()))

        def on_done(cell: Any, row: dict[str, Any]) -> None:
            color = "green" if row["status"] == "ok" else "red"
            progress.console.print(f"[{color}]{line(cell, row)}[/{color}]")
            progress.advance(task)

        try:
            return run_plan(cells, settings, on_start=on_start, on_done=on_done)
        except KeyboardInterrupt:
            progress.stop()
            raise UsageError(
                f"interrupted; finished cells are in {settings.run_file}; continue with "
                f"`cnnbench run --resume {settings.run_id}` and the same options"
            ) from None


def _console() -> Any:
    from rich.console import Console

    # Piped output gets a wide page rather than rich's 80 columns, so no count is cut.
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.variants:
        vs = VariantSet(load_variants_file(args.variants_file) if args.variants_file else [])
        vrows: list[dict[str, Any]] = [
            {"name": v.name, "framework": v.framework, "env": v.env, "options": v.options,
             "python": v.python, "description": v.description} for v in vs.variants]
        if args.json:
            print(json.dumps(vrows, indent=2))
            return 0
        t = Table("variant", "framework", "environment", "adapter options", "description")
        for v in vs.variants:
            t.add_row(v.name, v.framework, " ".join(f"{k}={x}" for k, x in v.env.items()),
                      " ".join(f"{k}={x}" for k, x in v.options.items()),
                      v.description + (f" ({v.python})" if v.python else ""))
        _console().print(t)
        return 0
    names = list_workloads(args.filter, args.tag)
    rows = [get_workload(n).summary() for n in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table("workload", "input", "classes", "params", "GFLOPs/img", "default batch",
              "description")
    for col in t.columns[:-1]:
        col.no_wrap = True
    for r in rows:
        t.add_row(r["name"], "x".join(map(str, r["input_shape"])), str(r["num_classes"]),
                  f"{r['params']:,}", f"{r['flops_per_image'] / 1e9:.4f}",
                  str(r["default_batch"]), r["description"])
    _console().print(t)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from . import machine
    from .envs import facts_for

    pythons = _pythons(args.python)
    rec = machine.probe()
    frameworks = _expand_frameworks(args.frameworks)
    fw_facts = {fw: facts_for(fw, pythons) for fw in frameworks}
    out = {"machine_id": machine.machine_id(rec), "machine": rec, "frameworks": fw_facts}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    cpu = rec["cpu"]
    print(f"machine   {out['machine_id']}")
    print(f"cpu       {cpu['model']} ({cpu['logical_cores']} logical, "
          f"{cpu['physical_cores']} physical, {cpu['usable_cores']} usable)")
    print(f"isa       {' '.join(cpu['isa'])}")
    print(f"memory    {rec['memory_bytes'] / 2**30:.1f} GiB")
    gpus = ", ".join(g["name"] for g in rec["gpus"]) or f"none ({rec.get('gpu_error')})"
    print(f"gpus      {gpus}" + (f" driver {rec['driver']}" if rec.get("driver") else ""))
    print(f"os        {rec['os']}, python {rec['python']}")
    for fw, f in fw_facts.items():
        print(f"\n[{fw}] {f['status']}" + (f": {f['error']}" if f.get("error") else ""))
        build: dict[str, Any] = f.get("build") or {}  # type: ignore[assignment]
        for k, v in build.items():
            print(f"  {k:24} {v}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .prices import load_prices
    from .report import write_report

    prices = load_prices(args.prices) if args.prices else None
    out = write_report(args.results or [Path("results")], args.output, prices)
    print(f"wrote {out}")
    return 0


# ------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cnnbench", description="Multi-framework CNN benchmark suite.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a sweep of cells, one worker process per cell",
                       description="Expand frameworks x variants x devices x workloads x modes "
                       "x batch sizes x precisions x execution modes x threads into cells and "
                       "run each in its own worker process.")
    r.add_argument("--quick", action="store_true",
                   help=f"small sweep: {', '.join(QUICK_WORKLOADS)}, batch {QUICK_BATCH}, "
                   f"{QUICK_BUDGET_S:g} s budget per cell")
    r.add_argument("--frameworks", type=_name_list, metavar="LIST",
                   help=f"adapters (default: all real ones: {', '.join(FRAMEWORKS)}; "
                   f"known: {', '.join(ADAPTERS)})")
    r.add_argument("--workloads", type=_name_list, metavar="LIST",
                   help="workload names or globs, or 'all' (default: all; see `cnnbench list`)")
    r.add_argument("--modes", type=_name_list, metavar="LIST", help="train,infer (default both)")
    r.add_argument("--batch-sizes", type=_pos_int_list, metavar="LIST",
                   help="default: each workload's own default batch")
    r.add_argument("--precisions", type=_name_list, metavar="LIST",
                   help=f"{', '.join(PRECISIONS)} (bf16/fp16 are mixed precision; default fp32)")
    r.add_argument("--exec-modes", type=_name_list, metavar="LIST",
                   help="e.g. eager,compiled; 'default' = each adapter's default")
    r.add_argument("--devices", type=_name_list, metavar="LIST",
                   help="cpu, gpu:N (cuda:N is an alias), gpu:0,1 (default cpu)")
    r.add_argument("--threads", type=_pos_int_list, metavar="LIST",
                   help="intra-op thread counts to sweep (default: all usable cores)")
    r.add_argument("--variants", type=_name_list, metavar="LIST",
                   help="build variants, e.g. default,isa-avx2 (default: default)")
    r.add_argument("--variants-file", type=Path, metavar="TOML",
                   help="declare custom builds / interpreters (see README)")
    r.add_argument("--budget", type=_pos_float, metavar="S",
                   help=f"seconds of warm-up + timed rounds per cell (default {DEFAULT_BUDGET_S:g})")
    r.add_argument("--target-ci", type=_pos_float, default=0.03, metavar="FRAC",
                   help="stop when the median's 95%% CI is within +-FRAC (default 0.03)")
    r.add_argument("--timeout", type=_pos_float, metavar="S",
                   help="kill a worker after S seconds (default: 2 x budget + setup allowance)")
    r.add_argument("--python", type=_key_value, action="append", metavar="FW=PATH",
                   help="use this interpreter for a framework instead of its tox env")
    r.add_argument("--adapter-opt", type=_key_value, action="append", metavar="KEY=VALUE",
                   help="adapter-specific option passed to every cell")
    r.add_argument("--repeat", type=_pos_int, default=1, metavar="N",
                   help="run every cell N times in fresh processes, interleaved")
    r.add_argument("--interleave", action="store_true",
                   help="run cells that differ only in framework, variant or execution mode "
                   "side by side, alternating their timed rounds")
    r.add_argument("--no-probe", action="store_true",
                   help="skip the GEMM peak probes (no MFU)")
    r.add_argument("--no-noise-check", action="store_true",
                   help="skip sampling other busy processes before each cell (saves 0.2 s)")
    r.add_argument("--memory-limit-mb", type=_pos_int, metavar="MB",
                   help="address-space limit per worker (an overrun becomes status oom)")
    r.add_argument("--results-dir", type=Path, default=Path("results"), metavar="DIR")
    r.add_argument("--run-id", type=_safe_id, metavar="ID",
                   help="name of this run (default: UTC time + random)")
    r.add_argument("--resume", type=_safe_id, metavar="RUN_ID",
                   help="continue a run ('last' = the newest): skip the cells it recorded")
    r.add_argument("--machine-id", type=_safe_id, metavar="ID", help="override the detected machine id")
    r.add_argument("--report", type=Path, metavar="HTML", help="also write the report here")
    r.add_argument("--strict", action="store_true", help="exit 1 if any cell is not ok")
    r.add_argument("--dry-run", action="store_true", help="print the cells and exit")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--verbose", action="store_true", help="keep framework log output")
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("report", help="write the HTML report from results",
                        description="Build a self-contained HTML report from JSON Lines results.")
    rp.add_argument("results", nargs="*", type=Path, help="files or folders (default: results/)")
    rp.add_argument("-o", "--output", type=Path, default=Path("reports/index.html"))
    rp.add_argument("--prices", type=Path, metavar="TOML",
                    help="machine prices for the price/performance table (see README)")
    rp.set_defaults(func=cmd_report)

    e = sub.add_parser("env", help="print the machine and each framework's build facts",
                       description="Probe the machine and ask each framework environment "
                       "(in its own process) for its build facts.")
    e.add_argument("--frameworks", type=_name_list, metavar="LIST")
    e.add_argument("--python", type=_key_value, action="append", metavar="FW=PATH")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_env)

    ls = sub.add_parser("list", help="list workloads with parameter and FLOP counts",
                        description="List the registered workloads.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--filter", metavar="GLOB", help="only names matching this glob")
    ls.add_argument("--tag", help="only workloads with this tag (small, imagenet, residual...)")
    ls.add_argument("--variants", action="store_true",
                    help="list the build variants instead (built-in, plus --variants-file)")
    ls.add_argument("--variants-file", type=Path, metavar="TOML",
                    help="custom build variants to list with --variants")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except (UsageError, PlanError, VariantError, PriceError, UnknownWorkload, UnknownAdapter,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        msg = str(exc)
        if not msg.startswith("cnnbench"):
            msg = f"cnnbench: error: {msg}"
        print(msg.splitlines()[0] if msg else "cnnbench: error", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def entry() -> None:
    sys.exit(main())

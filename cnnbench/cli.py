"""`cnnbench` command line: parses, then calls the subcommand's module in
``cnnbench.commands`` with plain parameters.

Bad input gets one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from adapters import ADAPTERS, FRAMEWORKS, UnknownAdapter, get_info
from cnnbench.commands import UsageError
from cnnbench.commands import compare as compare_cmd
from cnnbench.commands import env as env_cmd
from cnnbench.commands import list as list_cmd
from cnnbench.commands import report as report_cmd
from cnnbench.commands import run as run_cmd
from cnnbench.commands.run import DEFAULT_REPEAT, QUICK_BATCH, QUICK_BUDGET_S, QUICK_WORKLOADS
from cnnbench.core.cells import PRECISIONS, PlanError
from cnnbench.core.prices import PriceError
from cnnbench.plan.estimate import DEFAULT_PLAN, FULL_PLAN
from cnnbench.plan.variants import VariantError
from workloads import UnknownWorkload

__all__ = ["UsageError", "build_parser", "entry", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage lines too
        # An argument may hold a newline; the message stays one line.
        message = message.replace("\r", "\\r").replace("\n", "\\n")
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
# Each turns the parsed flags into the plain parameters of its command module's run().


def cmd_run(a: argparse.Namespace) -> int:
    return run_cmd.run(
        quick=a.quick, full=a.full, frameworks=a.frameworks, workloads=a.workloads, modes=a.modes,
        batch_sizes=a.batch_sizes, precisions=a.precisions, exec_modes=a.exec_modes,
        devices=a.devices, threads=a.threads, variants=a.variants, variants_file=a.variants_file,
        scalings=a.scaling, nnodes=a.nnodes, rdzv_endpoint=a.rdzv_endpoint, rdzv_id=a.rdzv_id,
        node_rank=a.node_rank, node_addrs=a.node_addrs, launcher=a.launcher,
        slurm_options=_slurm_options(a), detach=a.detach,
        budget=a.budget, target_ci=a.target_ci, timeout=a.timeout, pythons=_pythons(a.python),
        adapter_opts=_adapter_opts(a.adapter_opt), repeat=a.repeat, interleave=a.interleave,
        no_probe=a.no_probe, no_noise_check=a.no_noise_check, memory_limit_mb=a.memory_limit_mb,
        results_dir=a.results_dir, run_id=a.run_id, resume=a.resume, machine_id=a.machine_id,
        report=a.report, with_reference=a.with_reference, strict=a.strict, dry_run=a.dry_run,
        no_progress=a.no_progress, verbose=a.verbose, no_kernel_probe=a.no_kernel_probe)


def _slurm_options(a: argparse.Namespace) -> Any:
    from cnnbench.sweep.slurm import SlurmOptions

    slurm_flags = {"--partition": a.partition, "--time": a.time,
                   "--gpus-per-node": a.gpus_per_node, "--nodes-per-job": a.nodes_per_job,
                   "--cells-per-job": a.cells_per_job, "--shared-nodes": a.shared_nodes or None,
                   "--slurm-arg": a.slurm_arg}
    given = [k for k, v in slurm_flags.items() if v is not None]
    if a.launcher != "slurm" and given:
        raise UsageError(f"cnnbench run: {', '.join(given)} need --launcher slurm")
    return SlurmOptions(partition=a.partition, time=a.time, gpus_per_node=a.gpus_per_node,
                        nodes_per_job=a.nodes_per_job or 1, cells_per_job=a.cells_per_job or 8,
                        exclusive=not a.shared_nodes, extra=list(a.slurm_arg or []))


def _slurm_time(text: str) -> str:
    """Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    import re

    if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a Slurm time limit such as 00:30:00 or "
                                         f"1-00:00:00, got {text!r}")
    return text.strip()


def cmd_report(a: argparse.Namespace) -> int:
    return report_cmd.run(a.results, a.output, a.prices, a.baseline, a.reference_machine, a.job,
                          a.with_reference)


def cmd_compare(a: argparse.Namespace) -> int:
    return compare_cmd.run(a.baseline, a.contender, a.fail_above, a.json, a.results_dir)


def cmd_env(a: argparse.Namespace) -> int:
    return env_cmd.run(a.frameworks, _pythons(a.python), a.json)


def cmd_list(a: argparse.Namespace) -> int:
    return list_cmd.run(a.variants, a.variants_file, a.json, a.filter, a.tag)


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
    r.add_argument("--full", action="store_true",
                   help=f"the full sweep: {FULL_PLAN.description}")
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
                   help="cpu, gpu:N (cuda:N is an alias), a device set run data parallel: "
                   "gpu:0+1, gpu:all, cpu*2 (two simulated CPU devices) (default cpu)")
    r.add_argument("--scaling", type=_name_list, metavar="LIST",
                   help="weak (--batch-sizes is per device) and/or strong (it is the global "
                   "batch) for device sets (default weak)")
    r.add_argument("--nnodes", type=_pos_int, default=1,
                   help="multi-node PyTorch: run the same command on every node (torchrun's "
                   "c10d rendezvous joins them per cell)")
    r.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="with --nnodes: the rendezvous host (a node's address) and a free port")
    r.add_argument("--rdzv-id", type=_safe_id, metavar="ID",
                   help="with --nnodes: the job's id, the same on every node (default: the "
                   "run id, so pass --run-id too)")
    r.add_argument("--node-rank", type=int, metavar="I",
                   help="with --nnodes: this node's index, 0 on the rendezvous host (JAX's "
                   "process id and TensorFlow's worker index; torchrun finds PyTorch's itself)")
    r.add_argument("--node-addrs", type=_name_list, metavar="LIST",
                   help="with --nnodes: every node's address in --node-rank order "
                   "(TensorFlow's TF_CONFIG lists each worker)")
    sl = r.add_argument_group("Slurm", "with --launcher slurm: the sweep becomes a job array "
                              "of cell groups, each task running the runner on its node")
    sl.add_argument("--launcher", choices=("local", "slurm"), default="local",
                    help="where the runner runs: here (default) or as Slurm jobs")
    sl.add_argument("--partition", metavar="P", help="Slurm partition of the jobs")
    sl.add_argument("--time", type=_slurm_time, metavar="T",
                    help="time limit per job (Slurm's --time, e.g. 00:30:00)")
    sl.add_argument("--gpus-per-node", type=_pos_int, metavar="N", help="GPUs per node")
    sl.add_argument("--nodes-per-job", type=_pos_int, metavar="N",
                    help="nodes per job (default 1); above 1 every cell spans them: PyTorch, "
                    "JAX and TensorFlow ranks joined by their own multi-node launchers")
    sl.add_argument("--cells-per-job", type=_pos_int, metavar="N",
                    help="cells per array task (default 8)")
    sl.add_argument("--shared-nodes", action="store_true",
                    help="let other jobs share the nodes (default: --exclusive, so nothing "
                    "else runs beside a measurement)")
    sl.add_argument("--slurm-arg", action="append", metavar="ARG",
                    help="one more sbatch argument, as it is (e.g. --slurm-arg=--account=A)")
    sl.add_argument("--detach", action="store_true",
                    help="submit and return; `cnnbench run --resume RUN_ID` collects later")
    r.add_argument("--threads", type=_pos_int_list, metavar="LIST",
                   help="intra-op thread counts to sweep (default: all usable cores)")
    r.add_argument("--variants", type=_name_list, metavar="LIST",
                   help="build variants, e.g. default,isa-avx2 (default: default)")
    r.add_argument("--variants-file", type=Path, metavar="TOML",
                   help="declare custom builds / interpreters (see README)")
    r.add_argument("--budget", type=_pos_float, metavar="S",
                   help="seconds of warm-up + timed rounds per cell, the first step not counted "
                   f"(default {DEFAULT_PLAN.budget_s:g}; {FULL_PLAN.budget_s:g} with --full, "
                   f"{QUICK_BUDGET_S:g} with --quick)")
    r.add_argument("--target-ci", type=_pos_float, default=0.03, metavar="FRAC",
                   help="stop when the median's 95%% CI is within +-FRAC (default 0.03)")
    r.add_argument("--timeout", type=_pos_float, metavar="S",
                   help="kill a worker after S seconds (default: 2 x budget + setup allowance)")
    r.add_argument("--python", type=_key_value, action="append", metavar="FW=PATH",
                   help="use this interpreter for a framework instead of its tox env")
    r.add_argument("--adapter-opt", type=_key_value, action="append", metavar="KEY=VALUE",
                   help="adapter-specific option passed to every cell")
    r.add_argument("--repeat", type=_pos_int, default=None, metavar="N",
                   help=f"run every cell N times in fresh processes, interleaved (default "
                   f"{DEFAULT_REPEAT}: comparisons need the noise between processes)")
    side = r.add_mutually_exclusive_group()
    side.add_argument("--interleave", action="store_const", const="all", dest="interleave",
                      default="variants",
                      help="run cells that differ only in framework, variant or execution "
                      "mode side by side, alternating their timed rounds (default: only "
                      "cells that differ in variant)")
    side.add_argument("--no-interleave", action="store_const", const="none",
                      dest="interleave", help="run every cell alone, one after another")
    r.add_argument("--no-probe", action="store_true",
                   help="skip the GEMM peak probes (no MFU)")
    r.add_argument("--no-kernel-probe", action="store_true",
                   help="skip the probe of the kernels that ran (one step again, oneDNN's "
                   "verbose log on) after each CPU cell; rows then have no `kernels`")
    r.add_argument("--no-noise-check", action="store_true",
                   help="skip sampling other busy processes before each cell (saves 0.2 s)")
    r.add_argument("--memory-limit-mb", type=_pos_int, metavar="MB",
                   help="address-space limit per worker (an overrun becomes status oom)")
    r.add_argument("--results-dir", type=Path, default=Path("results"), metavar="DIR")
    r.add_argument("--run-id", type=_safe_id, metavar="ID",
                   help="name of this run (default: UTC time + random)")
    r.add_argument("--resume", type=_safe_id, metavar="RUN_ID",
                   help="continue a run ('last' = the newest): skip the cells it recorded; "
                   "a Slurm sweep is collected, and what is neither recorded nor queued "
                   "is submitted again")
    r.add_argument("--machine-id", type=_safe_id, metavar="ID", help="override the detected machine id")
    r.add_argument("--report", type=Path, metavar="HTML",
                   help="also write the report of this machine's results (every run of it "
                   "under --results-dir) here")
    r.add_argument("--with-reference", action="store_true",
                   help="the report also compares with the reference bundles under "
                   "--results-dir (results/reference/)")
    r.add_argument("--strict", action="store_true", help="exit 1 if any cell is not ok")
    r.add_argument("--dry-run", action="store_true", help="print the cells and exit")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--verbose", action="store_true", help="keep framework log output")
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("report", help="write the HTML report from results",
                        description="Build a self-contained HTML report from JSON Lines results.")
    rp.add_argument("results", nargs="*", type=Path,
                    help="files or folders (default: results/); a folder's reference bundles "
                    "(results/reference/) are left out unless named or --with-reference")
    rp.add_argument("--with-reference", action="store_true",
                    help="also read the reference bundles under the folders named")
    rp.add_argument("-o", "--output", type=Path, default=Path("reports/index.html"))
    rp.add_argument("--prices", type=Path, metavar="TOML",
                    help="machine prices and power for the buyer's view (see README)")
    rp.add_argument("--baseline", metavar="FIELD=VALUE,...",
                    help="speedup baseline, e.g. framework=pytorch,exec_mode=eager "
                    "(default: each framework's own default configuration)")
    rp.add_argument("--reference-machine", metavar="ID",
                    help="machine the others are normalised to (default: the first)")
    rp.add_argument("--job", metavar="WORKLOAD:EPOCHS:IMAGES",
                    help="training job the buyer's view prices (default resnet50:90:1281167)")
    rp.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", help="compare the same cells in two result sets",
                       description="Per cell present in both: images/s of each with its 95%% CI, "
                       "the ratio CONTENDER / BASELINE with its CI and whether it is significant "
                       "(a ratio whose interval crosses 1 reads 'no clear difference'), then the "
                       "geometric mean.")
    c.add_argument("baseline", help="results file or folder, or a run id under --results-dir")
    c.add_argument("contender", help="results file or folder, or a run id under --results-dir")
    c.add_argument("--fail-above", metavar="FRAC",
                   help="exit 1 if a cell is significantly slower by more than this (5%% or 0.05)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--results-dir", type=Path, default=Path("results"), metavar="DIR")
    c.set_defaults(func=cmd_compare)

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
    # --- issue 23 (tune helper): `cnnbench tune` owns its arguments; the lead reconciles ---
    from cnnbench.commands import tune as tune_cmd

    tune_cmd.setup_arguments(sub)
    # --- end issue 23 ---
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

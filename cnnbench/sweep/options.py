"""The options of a sweep, each defined once: a field of `RunOptions` (or of `SlurmOptions`,
for ``--launcher slurm``) with its flag and help. `cnnbench run`'s parser is generated from
them (`cnnbench.core.options`), the command reads them, and the runner's settings derive
from them (`RunSettings.from_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import ADAPTERS, FRAMEWORKS, get_info
from cnnbench.core.cells import PRECISIONS
from cnnbench.core.options import (
    LazyHelp,
    OptionError,
    csv,
    flag,
    json_values,
    key_value,
    nested,
    pos_float,
    pos_int,
    pos_int_list,
    safe_id,
    slurm_time,
)
from cnnbench.plan.presets import QUICK_BATCH, QUICK_BUDGET_S, QUICK_WORKLOADS

# Runs per cell unless --repeat says otherwise. Fresh processes of one cell differ by 10-30%
# here (far more than one run's rounds), so a comparison is only honest across runs: with
# three a side, the comparison layer's Welch test flags about 5% of A/A pairs; with one, it
# can only use the rounds, and flags most of them. The presets' budgets are per run.
DEFAULT_REPEAT = 3

SLURM = "Slurm"
BUYER = "buyer"
GROUPS = {BUYER: "latency percentiles and the largest batch that fits",
          SLURM: "with --launcher slurm: the sweep becomes a job array of cell groups, each "
                 "task running the runner on its node"}


def pythons(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """--python FW=PATH pairs: each framework known, each interpreter there."""
    out: dict[str, str] = {}
    for fw, path in pairs:
        get_info(fw)
        if not Path(path).exists():
            raise OptionError(f"--python {fw}={path}: no such interpreter")
        out[fw] = path
    return out


def _full_help() -> str:
    from cnnbench.plan.presets import FULL_PLAN

    return f"the full sweep: {FULL_PLAN.description}"


def _budget_help() -> str:
    from cnnbench.plan.presets import DEFAULT_PLAN, FULL_PLAN

    return ("seconds of warm-up + timed rounds per cell, the first step not counted "
            f"(default {DEFAULT_PLAN.budget_s:g}; {FULL_PLAN.budget_s:g} with --full, "
            f"{QUICK_BUDGET_S:g} with --quick)")


@dataclass
class SlurmOptions:
    """What the submitter asks Slurm for (the command line's --partition ... --slurm-arg)."""

    partition: str | None = flag("--partition", metavar="P", help="Slurm partition of the jobs")
    time: str | None = flag(  # Slurm's --time, e.g. 00:30:00, per job
        "--time", type=slurm_time, metavar="T",
        help="time limit per job (Slurm's --time, e.g. 00:30:00)")
    gpus_per_node: int | None = flag("--gpus-per-node", type=pos_int, metavar="N",
                                     help="GPUs per node")
    nodes_per_job: int = flag(  # > 1: every cell of the job spans its nodes (multinode)
        "--nodes-per-job", default=1, type=pos_int, metavar="N",
        help="nodes per job (default 1); above 1 every cell spans them: PyTorch, JAX and "
        "TensorFlow ranks joined by their own multi-node launchers")
    cells_per_job: int = flag("--cells-per-job", default=8, type=pos_int, metavar="N",
                              help="cells per array task (default 8)")
    # A benchmark wants its nodes to itself; --shared-nodes lets Slurm pack jobs.
    exclusive: bool = flag("--shared-nodes", default=True, action="store_false",
                           help="let other jobs share the nodes (default: --exclusive, so "
                           "nothing else runs beside a measurement)")
    extra: list[str] = flag(  # more sbatch arguments, as they are
        "--slurm-arg", factory=list, action="append", metavar="ARG",
        help="one more sbatch argument, as it is (e.g. --slurm-arg=--account=A)")
    poll_s: float = 2.0

    def sbatch_args(self) -> list[str]:
        args = [f"--nodes={self.nodes_per_job}", "--ntasks-per-node=1"]
        if self.exclusive:
            args.append("--exclusive")
        if self.partition:
            args.append(f"--partition={self.partition}")
        if self.time:
            args.append(f"--time={self.time}")
        if self.gpus_per_node:
            args.append(f"--gpus-per-node={self.gpus_per_node}")
        return [*args, *self.extra]



@dataclass(frozen=True)
class BuyerOptions:
    """Latency cells and the largest-batch search (flags of `cnnbench run`)."""

    latency: bool = flag(
        "--latency", action="store_true", group=BUYER,
        help="add a latency cell (every step timed alone, p50/p90/p99/p99.9 with intervals) "
        "for each workload and configuration of the plan")
    latency_batch: int = flag("--latency-batch", default=1, type=pos_int, metavar="N",
                              group=BUYER, help="batch size of the latency cells (default 1)")
    fit: bool = flag(
        "--fit", action="store_true", group=BUYER,
        help="after the plan, find each train/infer configuration's largest batch under "
        "--memory-limit-mb (default: the machine's RAM) by doubling, then bisection, each try "
        "a fresh worker")
    fit_max_batch: int = flag("--fit-max-batch", default=1024, type=pos_int, metavar="N",
                              group=BUYER, help="the largest batch the search tries (default 1024)")
    fit_limit_kind: str = flag(
        "--fit-limit", default="resident", choices=("resident", "address-space"), group=BUYER,
        help="enforce the search's limit on resident memory (watched, default) or on address "
        "space (RLIMIT_AS, which counts reserved regions too)")



def _list(*flags: str, help: str | None = None, **kw: Any) -> Any:
    return flag(*flags, type=csv, metavar="LIST", help=help, **kw)


def _id(name: str, help: str, metavar: str = "ID") -> Any:
    """A flag naming a run or a machine: it becomes a file name (``safe_id``)."""
    return flag(name, type=safe_id, metavar=metavar, help=help)


@dataclass
class RunOptions:
    """Every `cnnbench run` option; None where the command fills in a default that depends
    on others (the preset, the machine)."""

    quick: bool = flag("--quick", action="store_true",
                       help=f"small sweep: {', '.join(QUICK_WORKLOADS)}, batch {QUICK_BATCH}, "
                       f"{QUICK_BUDGET_S:g} s budget per cell")
    frameworks: list[str] | None = _list(
        "--frameworks", help=f"adapters (default: all real ones: {', '.join(FRAMEWORKS)}; "
        f"known: {', '.join(ADAPTERS)})")
    full: bool = flag("--full", action="store_true", help=LazyHelp(_full_help))
    workloads: list[str] | None = _list(
        "--workloads", help="workload names or globs, or 'all' (default: all; see `cnnbench list`); "
        "NAME:MODE pins a workload's mode (resnet50:infer,resnet20:train)")
    modes: list[str] | None = _list("--modes", help="train,infer (default both)")
    batch_sizes: list[int] | None = flag("--batch-sizes", type=pos_int_list, metavar="LIST",
                                         help="default: each workload's own default batch")
    precisions: list[str] | None = _list(
        "--precisions", help=f"{', '.join(PRECISIONS)} (bf16/fp16 are mixed precision; "
        "default fp32)")
    exec_modes: list[str] | None = _list(
        "--exec-modes", help="e.g. eager,compiled; 'default' = each adapter's default")
    devices: list[str] | None = _list(
        "--devices", help="cpu, gpu:N (cuda:N is an alias), a device set run data parallel: "
        "gpu:0+1, gpu:all, cpu*2 (two simulated CPU devices) (default cpu)")
    scaling: list[str] | None = _list(
        "--scaling", help="weak (--batch-sizes is per device) and/or strong (it is the global "
        "batch) for device sets (default weak)")
    nnodes: int = flag("--nnodes", default=1, type=pos_int,
                       help="multi-node PyTorch: run the same command on every node "
                       "(torchrun's c10d rendezvous joins them per cell)")
    rdzv_endpoint: str | None = flag(
        "--rdzv-endpoint", metavar="HOST:PORT",
        help="with --nnodes: the rendezvous host (a node's address) and a free port")
    rdzv_id: str | None = flag("--rdzv-id", type=safe_id, metavar="ID",
                               help="with --nnodes: the job's id, the same on every node "
                               "(default: the run id, so pass --run-id too)")
    node_rank: int | None = flag(
        "--node-rank", type=int, metavar="I",
        help="with --nnodes: this node's index, 0 on the rendezvous host (JAX's process id "
        "and TensorFlow's worker index; torchrun finds PyTorch's itself)")
    node_addrs: list[str] | None = _list(
        "--node-addrs", help="with --nnodes: every node's address in --node-rank order "
        "(TensorFlow's TF_CONFIG lists each worker)")
    launcher: str = flag("--launcher", default="local", choices=("local", "slurm"), group=SLURM,
                         help="where the runner runs: here (default) or as Slurm jobs")
    slurm: SlurmOptions = nested(SlurmOptions, group=SLURM)
    detach: bool = flag("--detach", action="store_true", group=SLURM,
                        help="submit and return; `cnnbench run --resume RUN_ID` collects later")
    threads: list[int] | None = flag(
        "--threads", type=pos_int_list, metavar="LIST",
        help="intra-op thread counts to sweep (default: all usable cores)")
    variants: list[str] | None = _list(
        "--variants", help="build variants, e.g. default,isa-avx2 (default: default)")
    variants_file: Path | None = flag("--variants-file", type=Path, metavar="TOML",
                                      help="declare custom builds / interpreters (see README)")
    budget: float | None = flag("--budget", type=pos_float, metavar="S",
                                help=LazyHelp(_budget_help))
    target_ci: float = flag("--target-ci", default=0.03, type=pos_float, metavar="FRAC",
                            help="stop when the median's 95%% CI is within +-FRAC "
                            "(default 0.03)")
    timeout: float | None = flag(
        "--timeout", type=pos_float, metavar="S",
        help="kill a worker after S seconds (default: 2 x budget + setup allowance)")
    python: dict[str, str] = flag(
        "--python", factory=dict, type=key_value, action="append", metavar="FW=PATH",
        convert=pythons, help="use this interpreter for a framework instead of its tox env")
    adapter_opt: dict[str, Any] = flag(
        "--adapter-opt", factory=dict, type=key_value, action="append", metavar="KEY=VALUE",
        convert=json_values, help="adapter-specific option passed to every cell")
    repeat: int = flag("--repeat", default=DEFAULT_REPEAT, type=pos_int, metavar="N",
                       help=f"run every cell N times in fresh processes, interleaved (default "
                       f"{DEFAULT_REPEAT}: comparisons need the noise between processes)")
    target_ratio_ci: float | None = flag(
        "--target-ratio-ci", type=pos_float, metavar="FRAC",
        help="after the --repeat runs, run each comparison (a build against the default, or a "
        "cell alone) again, interleaved in fresh processes, until its interval is within "
        "+-FRAC (0.05: +-5%%) or --max-repeat runs a side")
    max_repeat: int = flag("--max-repeat", default=10, type=pos_int, metavar="N",
                           help="with --target-ratio-ci: at most N runs a side (default 10)")
    interleave: str = flag(
        "--interleave", default="variants", action="store_const", const="all",
        help="run cells that differ only in framework, variant or execution mode side by "
        "side, alternating their timed rounds (default: only cells that differ in variant)",
        alternative=(("--no-interleave",), {
            "action": "store_const", "const": "none",
            "help": "run every cell alone, one after another"}))
    no_probe: bool = flag("--no-probe", action="store_true",
                          help="skip the GEMM peak probes (no MFU)")
    no_kernel_probe: bool = flag(
        "--no-kernel-probe", action="store_true",
        help="skip the probe of the kernels that ran (one step again, oneDNN's verbose log "
        "on) after each CPU cell; rows then have no `kernels`")
    no_noise_check: bool = flag(
        "--no-noise-check", action="store_true",
        help="skip sampling other busy processes before each cell (saves 0.2 s)")
    buyer: BuyerOptions = nested(BuyerOptions, group=BUYER)
    memory_limit_mb: int | None = flag(
        "--memory-limit-mb", type=pos_int, metavar="MB",
        help="address-space limit per worker (an overrun becomes status oom)")
    results_dir: Path = flag("--results-dir", default=Path("results"), type=Path, metavar="DIR")
    run_id: str | None = _id("--run-id", "name of this run (default: UTC time + random)")
    resume: str | None = _id(
        "--resume", "continue a run ('last' = the newest): skip the cells it recorded; a "
        "Slurm sweep is collected, and what is neither recorded nor queued is submitted again",
        metavar="RUN_ID")
    machine_id: str | None = _id("--machine-id", "override the detected machine id")
    report: Path | None = flag(
        "--report", type=Path, metavar="HTML",
        help="also write the report of this machine's results (every run of it under "
        "--results-dir) here")
    with_reference: bool = flag(
        "--with-reference", action="store_true",
        help="the report also compares with the reference bundles under --results-dir "
        "(results/reference/)")
    strict: bool = flag("--strict", action="store_true", help="exit 1 if any cell is not ok")
    dry_run: bool = flag("--dry-run", action="store_true", help="print the cells and exit")
    no_progress: bool = flag("--no-progress", action="store_true", help="no progress bar")
    verbose: bool = flag("--verbose", action="store_true", help="keep framework log output")

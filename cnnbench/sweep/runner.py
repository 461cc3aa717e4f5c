"""The runner: one worker process per cell, a timeout per cell, one appended row per cell.

A crash, hang, OOM or unsupported combination becomes that cell's status and the sweep goes
on. Rows are appended (and fsynced) as each cell ends, so an interrupted sweep loses at most
the cell in flight, and ``--resume`` skips what is already recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters import get_info
from cnnbench.core.cells import Cell
from cnnbench.core.keys import probe_key
from cnnbench.core.schema import append_row, blank_row, iter_rows
from cnnbench.measure.kernels import cap_ignored
from cnnbench.measure.timing import Protocol
from cnnbench.measure.worker import one_line as _one_line
from cnnbench.plan.envs import find_python, tox_workdir, worker_env
from cnnbench.plan.probes import probe_cells
from cnnbench.plan.variants import Variant, VariantSet
from cnnbench.sweep.nodes import Nodes, free_port
from cnnbench.sweep.options import RunOptions
from cnnbench.sweep.validity import Validity
from workloads import get_workload

# A setting that travels with a Slurm sweep to its tasks (`RunSettings.portable`): the rest
# is what each task finds on its own node.
_PORTABLE = {"portable": True}


@dataclass
class RunSettings:
    """The runner's view of a run: the command's `RunOptions` as the runner reads them
    (`from_options`), plus what the command found (ids, protocol, variants, the machine's
    GPUs, the nodes) and what the run learns as it goes (the kernels probed)."""

    run_id: str
    machine_id: str
    results_dir: Path
    protocol: Protocol = field(default_factory=Protocol)  # built and checked by the CLI
    timeout_s: float | None = field(default=None, metadata=_PORTABLE)  # None: from the budget
    python_overrides: dict[str, str] = field(default_factory=dict, metadata=_PORTABLE)
    variants: VariantSet = field(default_factory=VariantSet)
    memory_limit_mb: int = field(default=0, metadata=_PORTABLE)
    # Workers keep the frameworks' own log output (CNNBENCH_VERBOSE).
    verbose: bool = field(default=False, metadata=_PORTABLE)
    probe_peak: bool = field(default=True, metadata=_PORTABLE)  # GEMM probes first, for MFU
    # Which cells run side by side, their timed rounds alternating (`run_interleaved`):
    # "variants" (the cells that differ only in variant: a build comparison meets its
    # baseline under the same drift), "all" (also framework and execution mode) or "none".
    interleave: str = field(default="variants", metadata=_PORTABLE)
    # Sample other busy processes before and after each cell.
    check_noise: bool = field(default=True, metadata=_PORTABLE)
    # GPUs on this machine (NVML, from the machine record) and why there are none; None:
    # not known, the worker's framework decides.
    gpu_count: int | None = None
    gpu_reason: str | None = None
    # Several nodes per cell (multinode.Nodes): every cell's ranks span them, joined by each
    # framework's own mechanism, and the node holding rank 0 records the one row.
    nodes: Nodes = field(default_factory=Nodes)
    # After each ok CPU cell, run one step again in a probe process with oneDNN's verbose log
    # on (and XLA's dump): the kernels that ran, in the row's `kernels` (cnnbench.measure.kernels).
    kernel_probe: bool = field(default=True, metadata=_PORTABLE)
    # This CPU's feature flags (/proc/cpuinfo); None = read them here. A ladder level that
    # needs a flag not in it is recorded unsupported.
    cpu_flags: frozenset[str] | None = None
    # The kernels probed so far in this run, by build, switch, mode, precision and execution
    # mode (`probe_key`): they decide which kernels run, so one probe serves every workload,
    # batch and repeat of them (each later row carries a copy, ``probed_in`` naming the row
    # whose probe ran).
    probed: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The tuner's accuracy gate: the worker checks the cell against the oracle at its
    # precision's tolerance before timing it (cnnbench.measure.accuracy); a failure is the
    # row's status ``inaccurate``, with the error in ``accuracy``.
    accuracy_check: bool = False
    # Reset and read the memory counters (peak RSS, the device's peak). Off only to show side
    # by side that reading them does not slow the timed rounds (tests/perf).
    measure_memory: bool = field(default=True, metadata=_PORTABLE)

    @classmethod
    def from_options(cls, options: RunOptions, *, run_id: str, machine_id: str,
                     protocol: Protocol, variants: VariantSet, **found: Any) -> RunSettings:
        """The settings of a run of ``options``; ``found`` holds what the command found out
        (gpu_count, gpu_reason, nodes)."""
        return cls(run_id=run_id, machine_id=machine_id, results_dir=options.results_dir,
                   protocol=protocol, timeout_s=options.timeout,
                   python_overrides=dict(options.python), variants=variants,
                   memory_limit_mb=options.memory_limit_mb or 0, verbose=options.verbose,
                   probe_peak=not options.no_probe, check_noise=not options.no_noise_check,
                   interleave=options.interleave, kernel_probe=not options.no_kernel_probe,
                   **found)

    def portable(self) -> dict[str, Any]:
        """The settings a Slurm task takes as they are (JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("portable")}

    @property
    def run_file(self) -> Path:
        return self.results_dir / self.machine_id / f"{self.run_id}.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.results_dir / self.machine_id / "logs" / self.run_id

    @property
    def nnodes(self) -> int:
        return self.nodes.count

    def cell_timeout(self, cell: Cell) -> float:
        if self.timeout_s:
            return self.timeout_s
        budget = self.protocol.budget_s
        # Setup (imports, weights, first step) comes on top of the budget; compilers need more.
        return budget * 2 + (900 if cell.exec_mode != "eager" else 300)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(2).hex()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def recorded_cells(path: Path) -> set[str]:
    """cell_ids already in a run file (for resume); damaged lines count as not recorded."""
    if not path.exists():
        return set()
    problems: list[str] = []
    return {r["cell_id"] for r in iter_rows(path, problems) if r.get("cell_id")}


def _counts(cell: Cell) -> tuple[int, int]:
    """(trainable parameters, FLOPs per step-item) of a cell; a GEMM probe does 2 n^3."""
    if cell.mode == "peak":
        return 0, 2 * cell.batch_size**3
    spec = get_workload(cell.workload)
    return spec.params, spec.flops_per_image


def _busy_processes(threshold: float = 25.0) -> list[str]:
    """Other processes using more than `threshold`% of a core right now (sampled 0.2 s)."""
    import psutil

    me = psutil.Process()
    ours = {me.pid, *(c.pid for c in me.children(recursive=True))}
    procs = [p for p in psutil.process_iter(["pid", "name"]) if p.pid not in ours]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(0.2)
    busy = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            pct = p.cpu_percent(None)
            if pct > threshold:
                busy.append(f"{p.info['name']}[{p.pid}] {pct:.0f}%")
    return busy


def _base_row(cell: Cell, settings: RunSettings) -> dict[str, Any]:
    params, flops = _counts(cell)
    nodes = settings.nnodes if cell.mode != "peak" else 1
    n_dev = cell.n_devices * nodes
    return blank_row(
        run_id=settings.run_id, machine_id=settings.machine_id, cell_id=cell.cell_id,
        framework=cell.framework, variant=cell.variant, device=cell.device,
        n_devices=n_dev, workload=cell.workload, mode=cell.mode,
        per_device_batch=cell.batch_size // n_dev if n_dev and not cell.batch_size % n_dev
        else None, scaling=cell.scaling, simulated=cell.simulated, n_nodes=nodes,
        replicas=n_dev if cell.mode != "peak" else None,
        batch_size=cell.batch_size, precision=cell.precision, exec_mode=cell.exec_mode,
        threads=cell.threads, budget_s=settings.protocol.budget_s, repeat=cell.repeat,
        params=params, flops_per_image=flops, started_at=now_iso(), options=dict(cell.options),
        memory_limit_mb=settings.memory_limit_mb or None,
        memory_limit_kind="address-space" if settings.memory_limit_mb else None,
    )


# Worker record keys that the row names differently, or derives (the CI in images/s).
_RENAMED = {"median_s": "median_step_s"}
_DERIVED = ("ci95_low_s", "ci95_high_s")


def _merge_record(row: dict[str, Any], rec: dict[str, Any], batch: int) -> None:
    """Copy a worker's record into the row: every key that is a schema field (or is renamed
    to one); the step-time CI becomes an images/s CI."""
    for k, v in rec.items():
        key = _RENAMED.get(k, k)
        if key in row and k not in _DERIVED:
            row[key] = v
    if row["status"] == "ok":
        med, lo_s, hi_s = rec["median_s"], rec["ci95_low_s"], rec["ci95_high_s"]
        row["images_per_s"] = batch / med
        row["ci95_low"] = batch / hi_s  # the slowest plausible step gives the lowest rate
        row["ci95_high"] = batch / lo_s
        flags = list(row["flags"])
        if row["mode"] != "peak" and row.get("model_params") not in (None, row["params"]):
            flags.append("param_count_mismatch")
        tset = row.get("threads_set") or {}
        intra = tset.get("intra_op")
        # Data-parallel processes (DDP ranks on one node) split the cell's threads.
        want = max(1, row["threads"] // tset["processes"]) if row["threads"] and tset.get(
            "processes") else row["threads"]
        if want and intra is not None and intra != want:
            flags.append("threads_mismatch")  # the framework did not take the pinned count
        row["flags"] = flags


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _last_error_line(log: Path) -> str:
    lines = [ln.strip() for ln in _tail(log).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def uses_torchrun(cell: Cell, settings: RunSettings) -> bool:
    """PyTorch data parallel runs one process per device, launched by torchrun."""
    return cell.framework == "pytorch" and cell.mode != "peak" and (
        cell.n_devices > 1 or settings.nnodes > 1)


def launcher(cell: Cell, settings: RunSettings) -> list[str]:
    """What goes before ``-m cnnbench.measure.worker``: nothing, or torchrun's arguments (run as
    ``python -m torch.distributed.run`` of the framework's interpreter)."""
    if not uses_torchrun(cell, settings):
        return []
    args = ["-m", "torch.distributed.run", "--nproc-per-node", str(cell.n_devices)]
    if settings.nnodes > 1:
        args += settings.nodes.torchrun(cell)
    else:
        args += ["--standalone"]
    return args


def device_env(cell: Cell, settings: RunSettings) -> dict[str, str]:
    """Environment a device set needs before the framework starts (recorded in ``env``).

    Simulated devices share the cell's cores: PyTorch's ranks split its threads (torchrun
    would set OMP_NUM_THREADS=1 with several ranks per node, and leave one rank all of
    them); JAX makes N host devices out of one CPU, which XLA reads once, at start-up."""
    out: dict[str, str] = {}
    if uses_torchrun(cell, settings) and cell.threads and cell.n_devices > 1:
        per = str(max(1, cell.threads // cell.n_devices))
        out.update({"OMP_NUM_THREADS": per, "MKL_NUM_THREADS": per,
                    "OPENBLAS_NUM_THREADS": per})
    if cell.framework == "jax" and cell.simulated:
        flag = f"--xla_force_host_platform_device_count={cell.n_devices}"
        out["XLA_FLAGS"] = flag
    return out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class WorkerProcess:
    """One cell's worker: started, optionally driven round by round, then collected.

    Every way a worker can fail to run (no variant, no interpreter, an interpreter that
    cannot be executed) becomes the row's status: nothing here raises into the sweep."""

    def __init__(self, cell: Cell, settings: RunSettings, driven: bool = False) -> None:
        self.cell, self.settings, self.driven = cell, settings, driven
        self.row = _base_row(cell, settings)
        self.t_start = time.monotonic()
        self.timeout = settings.cell_timeout(cell)
        self.proc: subprocess.Popen[bytes] | None = None
        self.timed_out = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._to_worker: Any = None
        self._from_worker: Any = None
        self.launch: tuple[str, dict[str, str], dict[str, Any]] | None = None
        self.multinode = settings.nnodes > 1 and cell.mode != "peak"

    def start(self) -> bool:
        """Spawn the worker; False (with the row's status set) when it cannot run at all."""
        launch = self._launch()
        if launch is None:
            return False
        if self._gpu_missing():
            return False
        why = self.settings.nodes.refusal(self.cell) if self.multinode else None
        if why:
            self.row.update(status="unsupported", error=why)
            return False
        python, env, options = launch
        self.row.update(python=python, options=options)
        if self.settings.check_noise:
            self.row["busy"] = _busy_processes()
        self.row["load_start"] = list(os.getloadavg())
        try:
            self._spawn(python, env, options)
        except OSError as exc:  # e.g. a custom interpreter without execute permission
            self._cleanup()
            self.row.update(status="unavailable",
                            error=f"cannot start the worker with {python}: {_one_line(exc)}")
            return False
        return True

    def _gpu_missing(self) -> bool:
        """A GPU cell on a machine the probe found no GPU on is unavailable, not a crash."""
        settings = self.settings
        need = self.cell.devices.gpus_needed
        if not need or settings.gpu_count is None or settings.gpu_count >= need:
            return False
        why = settings.gpu_reason or "no GPU found"
        self.row.update(status="unavailable", error=(
            f"{self.cell.device} needs {need} GPU{'s' if need > 1 else ''}; this machine has "
            f"{settings.gpu_count} ({why})"))
        return True

    def _launch(self) -> tuple[str, dict[str, str], dict[str, Any]] | None:
        """(interpreter, environment, adapter options) of this cell, or None with the row's
        status set when the variant, its interpreter or its ISA level does not exist here."""
        cell, settings, row = self.cell, self.settings, self.row
        variant = settings.variants.get(cell.framework, cell.variant)
        if variant is None:
            row.update(status="unsupported",
                       error=f"variant {cell.variant!r} is not defined for {cell.framework}")
            return None
        row.update(variant_kind=variant.kind, isa_level=variant.isa)
        python = self._interpreter(variant) if self._isa_runs(variant) else None
        if python is None:
            return None
        extra = {"CNNBENCH_VERBOSE": "1"} if settings.verbose else {}
        dev_env = device_env(cell, settings)
        if "XLA_FLAGS" in dev_env and variant.env.get("XLA_FLAGS"):
            dev_env["XLA_FLAGS"] = f"{variant.env['XLA_FLAGS']} {dev_env['XLA_FLAGS']}"
        if self.multinode:
            if settings.nodes.srun:
                settings.nodes.port = free_port()  # on this node, the first: rank 0's
            dev_env.update(settings.nodes.env(cell))
            row["nodes"] = settings.nodes.facts or None
        env, row["env"] = worker_env({**variant.env, **extra}, cell.threads)
        env.update(dev_env)
        row["env"].update(dev_env)
        if not (self.multinode and settings.nodes.srun):
            # Under srun a worker's parent is its node's slurmstepd, which it watches instead.
            env["CNNBENCH_RUNNER_PID"] = str(os.getpid())  # not in row["env"]: no setting
        # The variant's adapter options, overridden by the run's own --adapter-opt.
        self.launch = (python, env, {**variant.options, **cell.options})
        return self.launch

    def _isa_runs(self, variant: Variant) -> bool:
        """False (the row unsupported) when the variant's ISA level needs a CPU flag that
        this CPU lacks."""
        level = variant.level
        if level is None or self.cell.device != "cpu":
            return True
        from cnnbench.core.machine import cpu_flags
        from cnnbench.plan.variants import missing_flags

        flags = self.settings.cpu_flags
        lacks = missing_flags(level, flags if flags is not None else cpu_flags())
        if lacks:
            self.row.update(status="unsupported", error=(
                f"{level.name} needs {' '.join(lacks)}, which this CPU lacks: a build for "
                f"{level.target} would not run here"))
        return not lacks

    def _interpreter(self, variant: Variant) -> str | None:
        """The variant's interpreter, or None (the row unavailable, with the reason)."""
        cell, row = self.cell, self.row
        overrides = dict(self.settings.python_overrides)
        # A build of its own (an interpreter or a tox environment) wins over --python, which
        # names the framework's default environment.
        if variant.python:
            overrides[cell.framework] = variant.python
        elif variant.tox_env:
            py = tox_workdir() / variant.tox_env / "bin" / "python"
            if not py.exists():
                row.update(status="unavailable", error=(
                    f"build {variant.name!r} is not installed: {py} does not exist; create it "
                    f"with `tox -e {variant.tox_env} --notest`"))
                return None
            overrides[cell.framework] = str(py)
        python, how = find_python(cell.framework, overrides)
        if python is None or not Path(python).exists():
            error = how if python is None else f"interpreter not found: {python} ({how})"
            row.update(status="unavailable", error=error)
            return None
        return python

    def _spawn(self, python: str, env: dict[str, str], options: dict[str, Any]) -> None:
        cell, settings = self.cell, self.settings
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = settings.log_dir / f"{cell.cell_id}.log"
        srun = self.multinode and settings.nodes.srun
        # Under srun every node reads the cell and rank 0's node writes the record: a folder
        # beside the logs, on the results' shared filesystem, instead of this node's /tmp.
        self._tmp = tempfile.TemporaryDirectory(prefix="cnnbench-cell-",
                                                dir=settings.log_dir if srun else None)
        tmp = Path(self._tmp.name)
        cell_file, self.out_file = tmp / "cell.json", tmp / "record.json"
        payload = {"cell": {**cell.to_dict(), "options": options},
                   "protocol": settings.protocol.to_dict()}
        cell_file.write_text(json.dumps(payload))
        cmd = [*(settings.nodes.srun_prefix() if srun else []), python,
               *launcher(cell, settings), "-m", "cnnbench.measure.worker", "--cell", str(cell_file),
               "--out", str(self.out_file)]
        if settings.memory_limit_mb:
            cmd += ["--memory-limit-mb", str(settings.memory_limit_mb)]
        if settings.accuracy_check:
            cmd += ["--check"]
        if not settings.measure_memory:
            cmd += ["--no-memory"]
        pipes: list[int] = []
        if self.driven:
            cmd_r, cmd_w = os.pipe()
            rep_r, rep_w = os.pipe()
            cmd += ["--control", f"{cmd_r},{rep_w}"]
            pipes = [cmd_r, cmd_w, rep_r, rep_w]
        try:
            with open(self.log_path, "wb") as log:
                # A new session, so a timeout kills the worker and everything it started
                # (torch.compile and XLA spawn compiler processes).
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, env=env, cwd=tmp,
                                             start_new_session=True,
                                             pass_fds=(pipes[0], pipes[3]) if pipes else ())
        except OSError:
            for fd in pipes:
                os.close(fd)
            raise
        if pipes:
            os.close(pipes[0])
            os.close(pipes[3])
            self._to_worker = os.fdopen(pipes[1], "w", encoding="utf-8")
            self._from_worker = os.fdopen(pipes[2], "r", encoding="utf-8")

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- driven rounds (interleaved comparisons) -------------------------------------------
    def send(self, command: str) -> bool:
        try:
            self._to_worker.write(command + "\n")
            self._to_worker.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def recv(self) -> dict[str, Any] | None:
        """The worker's next message, or None if it ended or went silent past the timeout."""
        ready, _, _ = select.select([self._from_worker], [], [], self.timeout)
        if not ready:
            self.timed_out = True
            if self.proc is not None:
                _kill_group(self.proc)
            return None
        line = self._from_worker.readline()
        try:
            msg: dict[str, Any] = json.loads(line) if line else {}
        except json.JSONDecodeError:
            return None
        return msg or None

    def ask(self, command: str) -> dict[str, Any] | None:
        return self.recv() if self.send(command) else None

    # -- collection ------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Wait for the worker (killing it at the timeout) and complete the row."""
        row, proc = self.row, self.proc
        if proc is None:
            return row
        for f in (self._to_worker, self._from_worker):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        try:
            left = self.timeout - (time.monotonic() - self.t_start)
            rc = proc.wait(timeout=max(left, 30.0 if self.driven else 0.0))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, self.timed_out = proc.returncode, True
        rec: dict[str, Any] | None = None
        if self.out_file.exists():
            try:
                rec = json.loads(self.out_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                rec = None
        self._cleanup()
        row["wall_s"] = time.monotonic() - self.t_start
        row["load_end"] = list(os.getloadavg())
        if self.settings.check_noise and rec is not None:
            # Sampled again at the end: a job that starts during the cell (a test run beside
            # a sweep) slows its rounds as much as one already running when it started.
            row["busy"] = [*row["busy"], *(f"{p} (at end)" for p in _busy_processes())]
        if rec is not None and rec.get("follower"):
            # Another node holds rank 0 and records the row; this node's part is in it.
            row.update(_follower=True, status=rec.get("status", "error"), error=rec.get("error"))
        elif rec is not None:
            _merge_record(row, rec, self.cell.batch_size)
            if row["busy"]:
                row["flags"] = [*row["flags"], "busy_machine"]
        elif self.timed_out:
            row.update(status="timeout", error=f"worker exceeded the {self.timeout:.0f} s cell "
                       "timeout and was killed")
        elif rc is not None and rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
            hint = " (the kernel's OOM killer sends SIGKILL)" if -rc == signal.SIGKILL else ""
            row.update(status="crashed", error=f"worker killed by {sig}{hint}")
        else:
            row.update(status="crashed", error=f"worker exited with code {rc} and no record: "
                       f"{_last_error_line(self.log_path)}")
        return row


    # -- the kernels that ran ---------------------------------------------------------------
    def wants_probe(self) -> bool:
        cell = self.cell
        # Real frameworks; the null adapter only when it emulates oneDNN (the tests' case).
        emulates = "onednn_isa" in (self.launch[2] if self.launch else {})
        # Not for a multi-node cell: its probe would be one process waiting for its peers,
        # and a node runs the kernels a one-node cell of the same build does.
        return (self.settings.kernel_probe and self.row["status"] == "ok"
                and cell.device == "cpu" and cell.mode != "peak" and self.launch is not None
                and not self.multinode
                and bool(get_info(cell.framework).env or emulates))

    def probe_kernels(self) -> None:
        """Run one step of the cell again in a probe process (``cnnbench.measure.worker --kernels``)
        and put what ran in the row's ``kernels``; a cap that did not take effect is flagged
        ``cap_ignored``. A failed probe leaves its reason there and fails nothing. A cell
        whose `probe_key` was probed already in this run (another workload, batch or repeat
        of the same build, switch, mode, precision and execution mode) gets a copy of that
        probe's record instead (``probed_in`` names the row that ran it): a probe costs a
        framework import and a build."""
        if not self.wants_probe() or self.launch is None:
            return
        cell, row = self.cell, self.row
        key = probe_key(cell)
        shared = self.settings.probed.get(key)
        if shared is not None:
            kernels = dict(shared)
        else:
            kernels = self._run_probe()
            if not kernels.get("error"):
                self.settings.probed[key] = {**kernels, "probed_in": cell.cell_id}
        reasons = cap_ignored(cell.framework, row["env"] or {}, kernels)
        if reasons:
            kernels["cap_ignored"] = reasons
            row["flags"] = [*row["flags"], "cap_ignored"]
        row["kernels"] = kernels

    def _run_probe(self) -> dict[str, Any]:
        assert self.launch is not None
        python, env, options = self.launch
        cell = self.cell
        timeout = max(120.0, self.settings.cell_timeout(cell) / 2)
        with tempfile.TemporaryDirectory(prefix="cnnbench-kernels-") as tmp:
            cell_file, out = Path(tmp) / "cell.json", Path(tmp) / "kernels.json"
            cell_file.write_text(json.dumps({"cell": {**cell.to_dict(), "options": options},
                                             "protocol": self.settings.protocol.to_dict()}))
            cmd = [python, "-m", "cnnbench.measure.worker", "--kernels", "--cell", str(cell_file),
                   "--out", str(out)]
            try:
                with open(self.log_path, "ab") as log:
                    log.write(b"\n--- kernel probe ---\n")
                    log.flush()
                    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log, env=env, cwd=tmp,
                                            start_new_session=True)
                    try:
                        proc.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        _kill_group(proc)
                kernels: dict[str, Any] = (json.loads(out.read_text(encoding="utf-8"))
                                           if out.exists() else
                                           {"error": f"probe exited {proc.returncode} without "
                                            f"a record: {_last_error_line(self.log_path)}"})
            except (OSError, json.JSONDecodeError) as exc:
                kernels = {"error": f"kernel probe failed: {_one_line(exc)}"}
        return kernels


def describe(cell: Cell, row: dict[str, Any]) -> str:
    """One line for a finished cell: its figure with the CI, or why it has none."""
    from cnnbench.core.keys import probe_peak

    peak = probe_peak(row) if row["mode"] == "peak" else None
    if row.get("follower"):
        what = (f"this node's ranks {'ran' if row['status'] == 'ok' else 'ended ' + row['status']}"
                "; the node holding rank 0 records the row")
    elif peak is not None:  # an ok GEMM probe
        what = f"GEMM peak {peak / 1e9:.1f} GFLOP/s (best round)"
    elif row["status"] == "ok":
        what = f"{row['images_per_s']:.1f} img/s [{row['ci95_low']:.1f}, {row['ci95_high']:.1f}]"
        if row.get("mfu") is not None:
            what += f" MFU {100 * row['mfu']:.1f}%"
        if row["flags"]:
            what += f" flags={','.join(row['flags'])}"
    else:
        what = f"{row['status'].upper()}: {row['error']}"
    return f"{cell.label()}: {what}"


def run_cell(cell: Cell, settings: RunSettings) -> dict[str, Any]:
    """Run one cell in a fresh worker process; always returns a complete row."""
    w = WorkerProcess(cell, settings)
    w.start()
    row = w.finish()
    w.probe_kernels()
    return row


def run_interleaved(cells: list[Cell], settings: RunSettings) -> list[dict[str, Any]]:
    """Run cells that differ only in framework, variant or execution mode side by side.

    Workers start and warm up **one at a time** (each waits, idle, for its first round), so
    ``first_step_s``, calibration and warm-up steadiness are measured on a quiet machine.
    Then the runner asks each for one timed round in turn (A B, B A, A B ...), so the
    machine's drift hits all of them alike. Each worker applies the protocol's own stopping
    rule to its own rounds (``timing.RoundBudget``: the same budget as a cell run alone) and
    says when it is done; the others go on until they are done too."""
    workers = [WorkerProcess(c, settings, driven=True) for c in cells]
    active: list[WorkerProcess] = []
    for w in workers:
        if w.start() and (w.recv() or {}).get("ready"):
            active.append(w)
    order = list(active)
    while active:
        for w in order:
            if w not in active:
                continue
            msg = w.ask("round")
            if msg is None or msg.get("done"):
                active.remove(w)  # done, or it died or hung: finish() records why
        order.reverse()
    for w in workers:
        if w.proc is not None:
            w.send("stop")
    rows = [w.finish() for w in workers]
    for w in workers:  # after every timed round, so no probe runs beside a measurement
        w.probe_kernels()
    return rows


def pending(cells: list[Cell], settings: RunSettings) -> list[Cell]:
    """What ``run_plan`` will run, in order: the GEMM probes, then the cells, less every cell
    (probes included) that the run file already records."""
    done = recorded_cells(settings.run_file)
    probes = probe_cells(cells) if settings.probe_peak else []
    return [c for c in [*probes, *cells] if c.cell_id not in done]


def run_plan(cells: list[Cell], settings: RunSettings,
             on_start: Callable[[Cell], None] | None = None,
             on_done: Callable[[Cell, dict[str, Any]], None] | None = None) -> Counter[str]:
    """Run ``pending(cells, settings)``: the probes, then the cells, appending each row as it
    ends. A resumed run reuses the probes and batch history it recorded.

    Returns a count per status of the cells (probes not counted). Rows are not kept in
    memory (the file is the record), so a long plan runs flat.
    """
    counts: Counter[str] = Counter()
    validity = Validity()
    if settings.run_file.exists():  # a resumed run: reuse its probes and batch history
        for row in iter_rows(settings.run_file, []):
            if row.get("mode") == "peak":
                validity.add_probe(row)
            elif row.get("status") == "ok" and row.get("ci95_low"):
                validity.annotate(dict(row))
            kernels = row.get("kernels")
            if kernels and not kernels.get("error") and row.get("cell_id"):
                settings.probed.setdefault(probe_key(row), {
                    **{k: v for k, v in kernels.items() if k != "cap_ignored"},
                    "probed_in": kernels.get("probed_in") or row["cell_id"]})
    # Several nodes: every cell is one torchrun job across them, which no pipe can drive.
    side_by_side = settings.interleave if settings.nnodes == 1 else "none"
    for group in _groups(pending(cells, settings), side_by_side):
        for cell in group:
            if on_start:
                on_start(cell)
        rows = (run_interleaved(group, settings) if len(group) > 1
                else [run_cell(group[0], settings)])
        for cell, row in zip(group, rows, strict=True):
            if cell.mode == "peak":
                validity.add_probe(row)
            elif row.pop("_follower", False):
                counts["follower"] += 1  # the node with rank 0 records this cell
                row["follower"] = True  # for on_done only: this row is not written
                if on_done:
                    on_done(cell, row)
                continue
            else:
                validity.annotate(row)
                counts[row["status"]] += 1
            append_row(settings.run_file, row)
            if on_done:
                on_done(cell, row)
    return counts


INTERLEAVE = ("none", "variants", "all")


def _groups(cells: list[Cell], interleave: str) -> list[list[Cell]]:
    """The cells in plan order, as groups to run side by side (see
    ``RunSettings.interleave``); a group of one runs alone, as do the probes and
    data-parallel cells."""
    if interleave not in INTERLEAVE:
        raise ValueError(f"interleave must be one of {INTERLEAVE}, not {interleave!r}")
    if interleave == "none":
        return [[c] for c in cells]
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for c in cells:
        # Data-parallel cells run alone: several processes (torchrun ranks) or devices per
        # cell are not one worker that a control pipe can drive round by round.
        # Latency cells too: a round trip over the pipe per step would sit between their steps.
        alone = c.mode in ("peak", "latency") or c.n_devices != 1
        key = (c.device, c.workload, c.mode, c.batch_size, c.precision, c.threads, c.repeat,
               c.cell_id if alone else None,
               None if interleave == "all" else (c.framework, c.exec_mode))
        groups.setdefault(key, []).append(c)
    return list(groups.values())

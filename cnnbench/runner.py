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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workloads import get_workload

from .envs import find_python, worker_env
from .plan import Cell
from .schema import SCHEMA_VERSION, append_row, iter_rows
from .timing import Protocol, ci_status
from .validity import Validity, probe_cells
from .variants import VariantSet


@dataclass
class RunSettings:
    run_id: str
    machine_id: str
    results_dir: Path
    protocol: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None  # None: derived from the budget
    python_overrides: dict[str, str] = field(default_factory=dict)
    variants: VariantSet = field(default_factory=VariantSet)
    memory_limit_mb: int = 0
    verbose: bool = False
    probe_peak: bool = True  # run the GEMM probes first and annotate MFU
    interleave: bool = False  # run cells differing only in framework/variant side by side
    check_noise: bool = True  # sample other busy processes before each cell

    @property
    def run_file(self) -> Path:
        return self.results_dir / self.machine_id / f"{self.run_id}.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.results_dir / self.machine_id / "logs" / self.run_id

    def cell_timeout(self, cell: Cell) -> float:
        if self.timeout_s:
            return self.timeout_s
        budget = float(self.protocol.get("budget_s", 20.0))
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
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": settings.run_id,
        "machine_id": settings.machine_id,
        "cell_id": cell.cell_id,
        "framework": cell.framework,
        "framework_version": None,
        "variant": cell.variant,
        "device": cell.device,
        "device_name": None,
        "n_devices": cell.n_devices,
        "workload": cell.workload,
        "mode": cell.mode,
        "batch_size": cell.batch_size,
        "precision": cell.precision,
        "exec_mode": cell.exec_mode,
        "threads": cell.threads,
        "status": "error",
        "error": None,
        "samples_s": [],
        "steps_per_round": None,
        "median_step_s": None,
        "images_per_s": None,
        "ci95_low": None,
        "ci95_high": None,
        "rel_ci": None,
        "ci_target_met": None,
        "first_step_s": None,
        "compile_s": None,
        "warmup_steps": None,
        "warmup_s": None,
        "measure_s": None,
        "budget_s": float(settings.protocol.get("budget_s", 20.0)),
        "flags": [],
        "achieved_flops_per_s": None,
        "peak_flops_per_s": None,
        "mfu": None,
        "load_start": None,
        "load_end": None,
        "busy": [],
        "repeat": cell.repeat,
        "params": params,
        "model_params": None,
        "flops_per_image": flops,
        "started_at": now_iso(),
        "wall_s": 0.0,
        "build": {},
        "env": {},
        "python": None,
        "options": dict(cell.options),
    }


def _merge_record(row: dict[str, Any], rec: dict[str, Any], batch: int) -> None:
    for k, v in rec.items():
        if k == "median_s":
            row["median_step_s"] = v
        elif k in ("ci95_low_s", "ci95_high_s"):
            continue
        elif k in row or k in ("build_s", "threads_set", "warmup_steady", "lower_s"):
            row[k] = v
    if row["status"] == "ok":
        med, lo_s, hi_s = rec["median_s"], rec["ci95_low_s"], rec["ci95_high_s"]
        row["images_per_s"] = batch / med
        row["ci95_low"] = batch / hi_s  # the slowest plausible step gives the lowest rate
        row["ci95_high"] = batch / lo_s
        if row["mode"] != "peak" and row.get("model_params") not in (None, row["params"]):
            row["flags"] = [*row["flags"], "param_count_mismatch"]


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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class WorkerProcess:
    """One cell's worker: started, optionally driven round by round, then collected."""

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

    def start(self) -> bool:
        """Spawn the worker; False (with the row's status set) when it cannot run at all."""
        cell, settings, row = self.cell, self.settings, self.row
        variant = settings.variants.get(cell.framework, cell.variant)
        if variant is None:
            row.update(status="unsupported",
                       error=f"variant {cell.variant!r} is not defined for {cell.framework}")
            return False
        overrides = dict(settings.python_overrides)
        if variant.python and cell.framework not in overrides:
            overrides[cell.framework] = variant.python
        python, how = find_python(cell.framework, overrides)
        if python is None:
            row.update(status="unavailable", error=how)
            return False
        if not Path(python).exists():
            row.update(status="unavailable", error=f"interpreter not found: {python} ({how})")
            return False
        env, env_set = worker_env(variant.env, cell.threads)
        row["env"] = env_set
        row["python"] = python
        if settings.check_noise:
            row["busy"] = _busy_processes()
        row["load_start"] = list(os.getloadavg())
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = settings.log_dir / f"{cell.cell_id}.log"
        self._tmp = tempfile.TemporaryDirectory(prefix="cnnbench-cell-")
        tmp = Path(self._tmp.name)
        cell_file, self.out_file = tmp / "cell.json", tmp / "record.json"
        cell_dict = cell.to_dict()
        # The variant's adapter options, overridden by the run's own --adapter-opt.
        cell_dict["options"] = {**variant.options, **cell.options}
        row["options"] = dict(cell_dict["options"])
        cell_file.write_text(json.dumps({"cell": cell_dict, "protocol": settings.protocol}))
        cmd = [python, "-m", "cnnbench.worker", "--cell", str(cell_file), "--out",
               str(self.out_file)]
        if settings.memory_limit_mb:
            cmd += ["--memory-limit-mb", str(settings.memory_limit_mb)]
        pass_fds: tuple[int, ...] = ()
        if self.driven:
            cmd_r, cmd_w = os.pipe()
            rep_r, rep_w = os.pipe()
            cmd += ["--control", f"{cmd_r},{rep_w}"]
            pass_fds = (cmd_r, rep_w)
        with open(self.log_path, "wb") as log:
            # A new session, so a timeout kills the worker and everything it started
            # (torch.compile and XLA spawn compiler processes).
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, cwd=tmp, start_new_session=True,
                                         pass_fds=pass_fds)
        if self.driven:
            os.close(cmd_r)
            os.close(rep_w)
            self._to_worker = os.fdopen(cmd_w, "w", encoding="utf-8")
            self._from_worker = os.fdopen(rep_r, "r", encoding="utf-8")
        return True

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
        assert self._tmp is not None
        self._tmp.cleanup()
        row["wall_s"] = time.monotonic() - self.t_start
        row["load_end"] = list(os.getloadavg())
        if rec is not None:
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


def run_cell(cell: Cell, settings: RunSettings) -> dict[str, Any]:
    """Run one cell in a fresh worker process; always returns a complete row."""
    w = WorkerProcess(cell, settings)
    w.start()
    return w.finish()


def run_interleaved(cells: list[Cell], settings: RunSettings) -> list[dict[str, Any]]:
    """Run cells that differ only in framework or variant side by side: every worker warms
    up, then the runner asks each for one timed round in turn (A B, B A, A B ...), so the
    drift of the machine hits all of them alike. Rounds stop when every CI meets the target
    or the budget (per cell) is spent; each row is that cell's own record."""
    proto = Protocol(**settings.protocol)
    workers = [WorkerProcess(c, settings, driven=True) for c in cells]
    active = [w for w in workers if w.start()]
    active = [w for w in active if (w.recv() or {}).get("ready")]
    samples: dict[int, list[float]] = {id(w): [] for w in active}
    t0 = time.monotonic()
    order = list(active)
    while active:
        for w in order:
            msg = w.recv() if w in active and w.send("round") else None
            if w in active and msg is None:
                active.remove(w)  # it died or hung: finish() records why
            elif msg is not None:
                samples[id(w)].append(float(msg["t"]))
        order.reverse()
        counts = [len(samples[id(w)]) for w in active]
        if not counts or min(counts) < proto.min_rounds:
            continue
        all_met = all(ci_status(samples[id(w)], proto)[3] for w in active)
        spent = time.monotonic() - t0 >= proto.budget_s * len(workers)
        if all_met or spent or max(counts) >= proto.max_rounds:
            break
    for w in active:
        w.send("stop")
    return [w.finish() for w in workers]


def run_plan(cells: list[Cell], settings: RunSettings,
             on_start: Callable[[Cell], None] | None = None,
             on_done: Callable[[Cell, dict[str, Any]], None] | None = None,
             skip: set[str] | None = None) -> Counter[str]:
    """Run the GEMM probes, then the cells, appending each row as it ends.

    Returns a count per status of the cells (probes not counted). Rows are not kept in
    memory (the file is the record), so a long plan runs flat.
    """
    counts: Counter[str] = Counter()
    skip = skip or set()
    validity = Validity()
    if settings.run_file.exists():  # a resumed run: reuse its probes and batch history
        for row in iter_rows(settings.run_file, []):
            if row.get("mode") == "peak":
                validity.add_probe(row)
            elif row.get("status") == "ok" and row.get("ci95_low"):
                validity.annotate(dict(row))
    probes = probe_cells(cells) if settings.probe_peak else []
    todo = [c for c in [*probes, *cells] if c.cell_id not in skip]
    for group in _groups(todo, settings.interleave):
        for cell in group:
            if on_start:
                on_start(cell)
        rows = (run_interleaved(group, settings) if len(group) > 1
                else [run_cell(group[0], settings)])
        for cell, row in zip(group, rows, strict=True):
            if cell.mode == "peak":
                validity.add_probe(row)
            else:
                validity.annotate(row)
                counts[row["status"]] += 1
            append_row(settings.run_file, row)
            if on_done:
                on_done(cell, row)
    return counts


def _groups(cells: list[Cell], interleave: bool) -> list[list[Cell]]:
    """Single cells, or with ``interleave`` the cells that differ only in framework, variant
    or execution mode (probes always run alone), in plan order."""
    if not interleave:
        return [[c] for c in cells]
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for c in cells:
        key = (c.device, c.workload, c.mode, c.batch_size, c.precision, c.threads, c.repeat,
               c.cell_id if c.mode == "peak" else None)
        groups.setdefault(key, []).append(c)
    return list(groups.values())

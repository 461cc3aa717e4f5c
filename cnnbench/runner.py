"""The runner: one worker process per cell, a timeout per cell, one appended row per cell.

A crash, hang, OOM or unsupported combination becomes that cell's status and the sweep goes
on. Rows are appended (and fsynced) as each cell ends, so an interrupted sweep loses at most
the cell in flight, and ``--resume`` skips what is already recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
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


def run_cell(cell: Cell, settings: RunSettings) -> dict[str, Any]:
    """Run one cell in a fresh worker process; always returns a complete row."""
    row = _base_row(cell, settings)
    t_start = time.monotonic()
    variant = settings.variants.get(cell.framework, cell.variant)
    if variant is None:
        row.update(status="unsupported",
                   error=f"variant {cell.variant!r} is not defined for {cell.framework}")
        return row
    overrides = dict(settings.python_overrides)
    if variant.python and cell.framework not in overrides:
        overrides[cell.framework] = variant.python
    python, how = find_python(cell.framework, overrides)
    if python is None:
        row.update(status="unavailable", error=how)
        return row
    if not Path(python).exists():
        row.update(status="unavailable", error=f"interpreter not found: {python} ({how})")
        return row
    env, env_set = worker_env(variant.env, cell.threads)
    row["env"] = env_set
    row["python"] = python
    if settings.check_noise:
        row["busy"] = _busy_processes()
    row["load_start"] = list(os.getloadavg())

    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"{cell.cell_id}.log"
    timeout = settings.cell_timeout(cell)
    with tempfile.TemporaryDirectory(prefix="cnnbench-cell-") as tmp:
        cell_file, out_file = Path(tmp) / "cell.json", Path(tmp) / "record.json"
        cell_file.write_text(json.dumps({"cell": cell.to_dict(), "protocol": settings.protocol}))
        cmd = [python, "-m", "cnnbench.worker", "--cell", str(cell_file), "--out", str(out_file)]
        if settings.memory_limit_mb:
            cmd += ["--memory-limit-mb", str(settings.memory_limit_mb)]
        with open(log_path, "wb") as log:
            # A new session, so a timeout kills the worker and everything it started
            # (torch.compile and XLA spawn compiler processes).
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, cwd=tmp, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                rc, timed_out = proc.returncode, True
        rec: dict[str, Any] | None = None
        if out_file.exists():
            try:
                rec = json.loads(out_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                rec = None
    row["wall_s"] = time.monotonic() - t_start
    row["load_end"] = list(os.getloadavg())
    if rec is not None:
        _merge_record(row, rec, cell.batch_size)
        if row["busy"]:
            row["flags"] = [*row["flags"], "busy_machine"]
    elif timed_out:
        row.update(status="timeout", error=f"worker exceeded the {timeout:.0f} s cell timeout "
                   "and was killed")
    elif rc is not None and rc < 0:
        sig = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
        hint = " (the kernel's OOM killer sends SIGKILL)" if -rc == signal.SIGKILL else ""
        row.update(status="crashed", error=f"worker killed by {sig}{hint}")
    else:
        row.update(status="crashed",
                   error=f"worker exited with code {rc} and no record: {_last_error_line(log_path)}")
    return row


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
    for cell in [*probes, *cells]:
        if cell.cell_id in skip:
            continue
        if on_start:
            on_start(cell)
        row = run_cell(cell, settings)
        if cell.mode == "peak":
            validity.add_probe(row)
        else:
            validity.annotate(row)
            counts[row["status"]] += 1
        append_row(settings.run_file, row)
        if on_done:
            on_done(cell, row)
    return counts

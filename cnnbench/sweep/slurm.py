"""The Slurm launcher: a sweep as a job array of cell groups, each task running the ordinary
runner on its node.

The submitter (``cnnbench run --launcher slurm``) keeps its state in
``<results>/slurm/<run_id>/``, which every node must see, as the results do:

* ``sweep.json``: the cells, the runner's settings, and every submission (an array job id
  and its groups of cell ids, one group per array task);
* ``tasks/<job>_<task>.json``: written by each task as it runs: its node, machine id and the
  cells it has started (so an end state can be pinned on the cell it cut short);
* ``logs/<job>_<task>.out``: the task's own output.

Each task (``python -m cnnbench.sweep.slurm task DIR SUBMISSION``) probes its node, writes
its machine.json and appends its rows to ``<results>/<its machine_id>/<run_id>.jsonl``, so two
partitions with different hardware are two machines. The submitter watches ``squeue`` and
the rows, and when a task ends in TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED, FAILED or
PREEMPTED it records the cell that task was running with that end state and Slurm's reason
(``cnnbench.sweep.slurmctl.END_STATUS``). Cells a task never reached stay unrecorded, and
``--resume`` submits exactly the cells that are neither recorded nor in a live job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.core.cells import Cell
from cnnbench.core.files import write_json_atomic
from cnnbench.core.schema import append_row, iter_rows
from cnnbench.measure.timing import Protocol
from cnnbench.plan.variants import VariantSet, load_variants_file
from cnnbench.sweep import slurmctl as slurm
from cnnbench.sweep.nodes import Nodes
from cnnbench.sweep.runner import RunSettings, _base_row, run_plan


@dataclass
class SlurmOptions:
    """What the submitter asks Slurm for (the command line's --partition ... --slurm-arg)."""

    partition: str | None = None
    time: str | None = None  # Slurm's --time, e.g. 00:30:00, per job
    gpus_per_node: int | None = None
    nodes_per_job: int = 1  # > 1: every cell of the job spans its nodes (multinode)
    cells_per_job: int = 8
    # A benchmark wants its nodes to itself; --shared-nodes lets Slurm pack jobs.
    exclusive: bool = True
    extra: list[str] = field(default_factory=list)  # more sbatch arguments, as they are
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


def state_dir(results_dir: Path, run_id: str) -> Path:
    return results_dir / "slurm" / run_id


# ------------------------------------------------------------------------- settings
# The runner's settings travel to the tasks as JSON; each task adds what only its node knows.

def settings_dict(s: RunSettings, variants_file: Path | None, opts: SlurmOptions
                  ) -> dict[str, Any]:
    return {"run_id": s.run_id, "results_dir": str(s.results_dir.resolve()),
            "machine_id": s.machine_id or None, "protocol": s.protocol.to_dict(),
            "timeout_s": s.timeout_s, "python_overrides": s.python_overrides,
            "variants_file": str(variants_file.resolve()) if variants_file else None,
            "memory_limit_mb": s.memory_limit_mb, "verbose": s.verbose,
            "probe_peak": s.probe_peak, "check_noise": s.check_noise,
            "interleave": s.interleave, "kernel_probe": s.kernel_probe,
            "nodes_per_job": opts.nodes_per_job}


def settings_from(d: dict[str, Any], machine_id: str) -> RunSettings:
    vfile = d.get("variants_file")
    return RunSettings(
        run_id=d["run_id"], machine_id=machine_id, results_dir=Path(d["results_dir"]),
        protocol=Protocol.from_dict(d["protocol"]), timeout_s=d["timeout_s"],
        python_overrides=dict(d["python_overrides"]),
        variants=VariantSet(load_variants_file(Path(vfile)) if vfile else None),
        memory_limit_mb=d["memory_limit_mb"], verbose=d["verbose"], probe_peak=d["probe_peak"],
        check_noise=d["check_noise"], interleave=d["interleave"],
        kernel_probe=d["kernel_probe"], nodes=Nodes(count=d["nodes_per_job"]))


def cell_from(d: dict[str, Any]) -> Cell:
    return Cell(**d)


# ------------------------------------------------------------------------- state

class Sweep:
    """A Slurm sweep's state file, and what can be read about it now."""

    def __init__(self, sdir: Path, data: dict[str, Any]) -> None:
        self.dir, self.data = sdir, data
        self.cells = {c["cell_id"]: cell_from(c["cell"]) for c in data["cells"]}

    @classmethod
    def new(cls, sdir: Path, cells: list[Cell], settings: dict[str, Any],
            opts: SlurmOptions) -> Sweep:
        data = {"version": 1, "settings": settings, "options": dataclasses.asdict(opts),
                "cells": [{"cell_id": c.cell_id, "cell": c.to_dict()} for c in cells],
                "submissions": []}
        return cls(sdir, data)

    @classmethod
    def load(cls, sdir: Path) -> Sweep:
        return cls(sdir, json.loads((sdir / "sweep.json").read_text(encoding="utf-8")))

    def save(self) -> None:
        write_json_atomic(self.dir / "sweep.json", self.data, indent=1)

    @property
    def run_id(self) -> str:
        return str(self.data["settings"]["run_id"])

    @property
    def results_dir(self) -> Path:
        return Path(self.data["settings"]["results_dir"])

    @property
    def options(self) -> SlurmOptions:
        return SlurmOptions(**self.data["options"])

    def tasks(self) -> list[tuple[str, list[str]]]:
        """Every array task of every submission: ("job_task", its cell ids)."""
        return [(f"{sub['job']}_{i}", group) for sub in self.data["submissions"]
                for i, group in enumerate(sub["groups"])]

    def rows(self) -> list[dict[str, Any]]:
        """This run's rows on every machine (the tasks write each node's own file)."""
        out: list[dict[str, Any]] = []
        for path in sorted(self.results_dir.glob(f"*/{self.run_id}.jsonl")):
            out.extend(r for r in iter_rows(path, []) if r.get("mode") != "peak")
        return out

    def recorded(self) -> set[str]:
        return {r["cell_id"] for r in self.rows() if r.get("cell_id")}

    def task_file(self, task: str) -> Path:
        return self.dir / "tasks" / f"{task}.json"

    def task_info(self, task: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads(self.task_file(task).read_text(encoding="utf-8"))
            return info
        except (OSError, json.JSONDecodeError):
            return None


# ------------------------------------------------------------------------- submitting

def submit(sweep: Sweep, cells: list[Cell], opts: SlurmOptions) -> str | None:
    """Submit ``cells`` as one job array (groups of at most cells_per_job, keeping the
    runner's side-by-side groups whole); its job id, or None when there is nothing to do."""
    from cnnbench.sweep.runner import _groups

    if not cells:
        return None
    interleave = sweep.data["settings"]["interleave"] if opts.nodes_per_job == 1 else "none"
    groups: list[list[str]] = []
    for side in _groups(cells, interleave):
        ids = [c.cell_id for c in side]
        if groups and len(groups[-1]) + len(ids) <= opts.cells_per_job:
            groups[-1].extend(ids)
        else:
            groups.append(ids)
    index = len(sweep.data["submissions"])
    (sweep.dir / "logs").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cnnbench.sweep.slurm", "task", str(sweep.dir.resolve()),
               str(index)]
    job = slurm.sbatch([
        f"--array=0-{len(groups) - 1}", f"--job-name=cnnbench-{sweep.run_id}",
        f"--output={sweep.dir.resolve() / 'logs' / '%A_%a.out'}", f"--chdir={Path.cwd()}",
        *opts.sbatch_args(), f"--wrap=exec {shlex.join(command)}"])
    sweep.data["submissions"].append({"job": job, "groups": groups})
    sweep.save()
    return job


# ------------------------------------------------------------------------- collecting

@dataclass
class Progress:
    pending: int = 0
    running: int = 0
    done: int = 0
    active_tasks: int = 0
    not_run: dict[str, str] = field(default_factory=dict)  # cell id -> why


def look(sweep: Sweep, recorded: set[str]) -> tuple[Progress, dict[str, slurm.JobState]]:
    """Where every cell of the sweep stands, from squeue and the rows."""
    known = slurm.states([s["job"] for s in sweep.data["submissions"]])
    p = Progress(done=len(recorded & set(sweep.cells)))
    live: set[str] = set()
    for task, ids in sweep.tasks():
        st = known.get(task)
        left = [i for i in ids if i not in recorded]
        if st is not None and st.active:
            p.active_tasks += 1
            live.update(left)
            if st.state == "PENDING":
                p.pending += len(left)
            else:
                p.running += len(left)
    for cid in sweep.cells:
        if cid not in recorded and cid not in live:
            p.not_run[cid] = "not submitted"
    return p, known


def end_rows(sweep: Sweep, known: dict[str, slurm.JobState], recorded: set[str]
             ) -> list[tuple[Path, dict[str, Any]]]:
    """Rows for the cells that tasks ended abnormally were running, with the end state and
    Slurm's reason, in the file of the task's machine; none twice."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for task, ids in sweep.tasks():
        st = known.get(task)
        if st is None or st.active or st.state not in slurm.END_STATUS:
            continue
        info = sweep.task_info(task)
        if info is None:
            continue  # it never started a cell: its cells stay unrecorded (and resubmittable)
        settings = settings_from(sweep.data["settings"], info["machine_id"])
        where = f" on {st.nodes}" if st.nodes and st.nodes != "(null)" else ""
        reason = f" ({st.reason})" if st.reason and st.reason != "None" else ""
        for cid in info.get("started", []):
            if cid in ids and cid not in recorded:
                row = _base_row(sweep.cells[cid], settings)
                row.update(status=slurm.END_STATUS[st.state], error=(
                    f"Slurm job {task} ended {st.state}{reason}{where} while this cell ran"))
                out.append((settings.run_file, row))
                recorded.add(cid)
    return out


def collect(sweep: Sweep, on_row: Callable[[Cell, dict[str, Any]], None] | None = None
            ) -> Progress:
    """Record the end states of finished tasks; then where the sweep stands."""
    recorded = sweep.recorded()
    _, known = look(sweep, recorded)
    for path, row in end_rows(sweep, known, recorded):
        append_row(path, row)
        if on_row:
            on_row(sweep.cells[row["cell_id"]], row)
    return look(sweep, sweep.recorded())[0]


def watch(sweep: Sweep, on_row: Callable[[Cell, dict[str, Any]], None],
          on_poll: Callable[[Progress], None]) -> Progress:
    """Until no task of the sweep is queued or running: report new rows and the counts."""
    seen = sweep.recorded()
    while True:
        p = collect(sweep)
        for row in sweep.rows():
            if row["cell_id"] not in seen and row["cell_id"] in sweep.cells:
                seen.add(row["cell_id"])
                on_row(sweep.cells[row["cell_id"]], row)
        on_poll(p)
        if not p.active_tasks:
            return p
        time.sleep(sweep.options.poll_s)


def counts(sweep: Sweep) -> Counter[str]:
    """Statuses of the sweep's cells as recorded (the last row of a cell counts)."""
    last = {r["cell_id"]: r["status"] for r in sweep.rows() if r["cell_id"] in sweep.cells}
    return Counter(last.values())


# ------------------------------------------------------------------------- one array task

def run_task(sdir: Path, submission: int, index: int) -> int:
    """One array task: the ordinary runner over its group of cells, on this node."""
    from cnnbench.core import machine

    sweep = Sweep.load(sdir)
    sub = sweep.data["submissions"][submission]
    ids = sub["groups"][index]
    task = f"{sub['job']}_{index}"
    mrec = machine.probe()
    mid = sweep.data["settings"]["machine_id"] or machine.machine_id(mrec)
    settings = settings_from(sweep.data["settings"], mid)
    gpus = len(mrec.get("gpus") or [])
    settings.gpu_count = gpus
    settings.gpu_reason = mrec.get("gpu_error") or (None if gpus else "NVML lists no GPU")
    if settings.nodes.count > 1:
        _join_allocation(settings.nodes, settings.run_id)
    machine.write_machine(settings.results_dir, mid, mrec)
    started: list[str] = []

    def mark(cell: Cell) -> None:
        if cell.mode != "peak":
            started.append(cell.cell_id)
            write_json_atomic(sweep.task_file(task), {
                "machine_id": mid, "host": mrec["hostname"], "started": started})

    def done(cell: Cell, row: dict[str, Any]) -> None:
        from cnnbench.sweep.progress import describe

        print(describe(cell, row), flush=True)

    write_json_atomic(sweep.task_file(task), {"machine_id": mid, "host": mrec["hostname"],
                                              "started": started})
    print(f"task {task} on {mrec['hostname']} ({mid}): {len(ids)} cells", flush=True)
    run_plan([sweep.cells[i] for i in ids], settings, on_start=mark, on_done=done)
    return 0


def _join_allocation(nodes: Nodes, run_id: str) -> None:
    """A multi-node job: its nodes and their addresses (the first hosts every cell's
    rendezvous), and what each node reports of its interconnect."""
    found = slurm.allocation()
    if found is None:
        raise SystemExit("a multi-node task must run inside its Slurm allocation")
    names, addrs = found
    nodes.count, nodes.host, nodes.addrs, nodes.srun = len(names), addrs[0], addrs, True
    nodes.rdzv_id = f"{run_id}-{os.environ.get('SLURM_JOB_ID', '0')}"
    nodes.facts = _node_facts(nodes, names)


def _node_facts(nodes: Nodes, names: list[str]) -> list[dict[str, object]]:
    """Each node's own report (``cnnbench.core.machine --node``), gathered by one srun."""
    import subprocess

    cmd = [*nodes.srun_prefix(), sys.executable, "-m", "cnnbench.core.machine", "--node"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    facts = []
    for line in r.stdout.splitlines():
        try:
            facts.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    order = {n: i for i, n in enumerate(names)}
    facts.sort(key=lambda f: order.get(str(f.get("node")), len(order)))
    if len(facts) != len(names):
        facts.append({"error": f"{len(names) - len(facts)} node(s) did not report: "
                      f"{r.stderr.strip()[-300:]}"})
    return facts


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "task":
        print("usage: python -m cnnbench.sweep.slurm task STATE_DIR SUBMISSION", file=sys.stderr)
        return 2
    index = int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    return run_task(Path(argv[1]), int(argv[2]), index)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

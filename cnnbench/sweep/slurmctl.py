"""Slurm's own commands, as the Slurm launcher uses them: ``sbatch``, ``squeue``, ``scancel``
and ``scontrol``, through their command lines (no library; they are what every cluster has).

Also what a Slurm end state means for a cell (``END_STATUS``), and where a job's ranks meet:
the first node of the allocation, addressed by the ``NodeAddr`` Slurm reaches it at (a node
name need not be a DNS name).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

# A job that ended in one of these states left the cell it was running without a record;
# the cell gets this status, with the state and Slurm's reason.
END_STATUS = {
    "TIMEOUT": "timeout",  # past its --time limit
    "DEADLINE": "timeout",
    "OUT_OF_MEMORY": "oom",  # the node's memory limit (cgroup) killed it
    "NODE_FAIL": "crashed",
    "BOOT_FAIL": "crashed",
    "FAILED": "crashed",  # the job script (our runner) exited non-zero
    "CANCELLED": "cancelled",  # scancel, by a person or an administrator
    "PREEMPTED": "cancelled",  # a job of higher priority took the nodes
}
DONE = "COMPLETED"
# Still queued or running (anything else, or a job squeue no longer knows, has ended).
ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                    "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING",
                    "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT"})


class SlurmError(RuntimeError):
    """A Slurm command failed; the message is one line."""


@dataclass(frozen=True)
class JobState:
    job: str  # "123_4": array job 123, task 4
    state: str
    reason: str
    nodes: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def missing() -> str | None:
    """Why Slurm's commands cannot be used here, or None."""
    absent = [c for c in ("sbatch", "squeue", "scancel", "scontrol") if not shutil.which(c)]
    if absent:
        return (f"Slurm's {', '.join(absent)} not found on PATH (install the Slurm client, "
                "e.g. Debian's slurm-client, on the machine that submits)")
    return None


def _run(cmd: list[str], timeout: float = 60) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmError(f"{cmd[0]}: {exc}") from None
    if r.returncode:
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        raise SlurmError(f"{' '.join(cmd[:2])} failed: {lines[-1] if lines else r.returncode}")
    return r.stdout


def sbatch(args: list[str]) -> str:
    """Submit; the job id (an array's id for --array)."""
    out = _run(["sbatch", "--parsable", *args]).strip()
    return out.split(";")[0]  # "id;cluster" on a federation


def states(job_ids: list[str]) -> dict[str, JobState]:
    """Every task of these jobs (array tasks as "id_index") that squeue still knows, ended
    ones included (until MinJobAge passes; without accounting nothing older is known)."""
    if not job_ids:
        return {}
    out = _run(["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(job_ids)}",
                "--format=%i|%T|%r|%N"])
    found: dict[str, JobState] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            found[parts[0]] = JobState(*parts)
    return found


def scancel(job_ids: list[str]) -> None:
    if job_ids:
        _run(["scancel", *job_ids])


def hostnames(nodelist: str) -> list[str]:
    """A Slurm node list ("n[1-3],gpu7") as its node names, in order."""
    return _run(["scontrol", "show", "hostnames", nodelist]).split()


def node_addrs(names: list[str]) -> list[str]:
    """The address Slurm reaches each node at (NodeAddr; its name when none is set)."""
    out = _run(["scontrol", "--oneliner", "show", "node", ",".join(names)])
    addr: dict[str, str] = {}
    for line in out.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "NodeName" in fields:
            addr[fields["NodeName"]] = fields.get("NodeAddr") or fields["NodeName"]
    return [addr.get(n, n) for n in names]


def allocation() -> tuple[list[str], list[str]] | None:
    """(node names, their addresses) of the allocation this process runs in, or None
    outside one."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist or not os.environ.get("SLURM_JOB_ID"):
        return None
    names = hostnames(nodelist)
    return names, node_addrs(names)

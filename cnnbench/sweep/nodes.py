"""How a cell's ranks on several nodes find each other: each framework's own mechanism.

* PyTorch: one torchrun per node, joined by torchrun's c10d rendezvous at the first node.
* JAX: ``jax.distributed.initialize`` with the coordinator at the first node; under Slurm it
  detects the process count and this process's id itself (SLURM_NTASKS, SLURM_PROCID);
  outside Slurm the adapter is told them (CNNBENCH_NUM_PROCESSES, CNNBENCH_PROCESS_ID).
* TensorFlow: MultiWorkerMirroredStrategy over a TF_CONFIG cluster of one worker per node;
  the adapter builds TF_CONFIG from CNNBENCH_TF_WORKERS (every worker's address, in rank
  order) and this process's index (SLURM_PROCID under Slurm, CNNBENCH_PROCESS_ID outside).

Two ways to start them: inside a Slurm allocation the runner runs on the first node and
starts every node's process with one ``srun`` per cell (``Slurm`` below); outside Slurm the
same sweep runs on every node (``cnnbench run --nnodes N --node-rank I``) and each runner
starts its own node's process (``Static``). Either way the node holding rank 0 records the
row, with every rank's samples (the round ends when the slowest rank is done).
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass, field

from cnnbench.core.cells import Cell

# Frameworks whose ranks the runner can join across nodes, and why the others cannot.
REFUSED = {
    "mxnet": "MXNet's multi-node data parallel is a dist kvstore with its own ps-lite "
             "scheduler and servers, which cnnbench does not launch (see the README)",
    "null": "the null adapter has no collectives to join ranks with",
}


@dataclass
class Nodes:
    """Where a multi-node cell's ranks meet: ``host`` (the first node) serves the
    rendezvous; ``addrs`` are every node's address in rank order (TensorFlow's workers);
    ``rank`` is this node's place (outside Slurm)."""

    count: int = 1
    host: str = ""
    addrs: list[str] = field(default_factory=list)
    port: int = 0  # the rendezvous port; outside Slurm each cell derives its own from it
    rdzv_id: str = ""
    srun: bool = False  # inside an allocation: one srun per cell starts every node's process
    rank: int | None = None  # outside Slurm: this node's index in addrs (JAX and TensorFlow)
    facts: list[dict[str, object]] = field(default_factory=list)  # each node's interconnect

    def refusal(self, cell: Cell) -> str | None:
        if cell.framework in REFUSED:
            return f"multi-node: {REFUSED[cell.framework]}"
        if cell.framework in ("jax", "tensorflow") and not self.srun:
            if self.rank is None:
                return (f"multi-node {cell.framework} outside Slurm needs this node's index: "
                        "pass --node-rank (0 on the node of --rdzv-endpoint)")
            if cell.framework == "tensorflow" and len(self.addrs) != self.count:
                return ("multi-node TensorFlow outside Slurm needs every node's address "
                        "(TF_CONFIG lists each worker): pass --node-addrs HOST,HOST,...")
        return None

    def cell_port(self, cell: Cell) -> int:
        """A port of this cell's own, the same on every node: the previous cell's servers may
        still hold theirs (TIME_WAIT) when the next one starts."""
        if self.srun:
            return self.port  # the runner picked it free just now
        offset = int(hashlib.sha1(cell.cell_id.encode()).hexdigest(), 16) % 2000
        return (self.port + 1 + offset - 1024) % (65536 - 1024) + 1024

    def env(self, cell: Cell) -> dict[str, str]:
        """Variables the adapters read to join the ranks (recorded in the row's env)."""
        port = self.cell_port(cell)
        out: dict[str, str] = {}
        if cell.framework == "jax":
            out["CNNBENCH_COORDINATOR"] = f"{self.host}:{port}"
            if not self.srun:  # under srun JAX reads SLURM_NTASKS and SLURM_PROCID itself
                out["CNNBENCH_NUM_PROCESSES"] = str(self.count)
                out["CNNBENCH_PROCESS_ID"] = str(self.rank)
        elif cell.framework == "tensorflow":
            # One port per worker: two workers may share a host (two node daemons on one).
            out["CNNBENCH_TF_WORKERS"] = ",".join(f"{a}:{port + i}"
                                                  for i, a in enumerate(self.addrs))
            if not self.srun:
                out["CNNBENCH_PROCESS_ID"] = str(self.rank)
        if self.srun:
            out["CNNBENCH_SRUN"] = "1"  # only rank 0 writes a record (the files are shared)
        return out

    def torchrun(self, cell: Cell) -> list[str]:
        """torchrun's multi-node arguments. The rendezvous id is per cell: launchers that
        disagree on it wait for each other forever, so every node derives it alike."""
        # Outside Slurm the endpoint is --rdzv-endpoint as given (torchrun reuses its port).
        endpoint = f"{self.host}:{self.cell_port(cell) if self.srun else self.port}"
        return ["--nnodes", str(self.count), "--rdzv-backend", "c10d",
                "--rdzv-endpoint", endpoint, "--rdzv-id", f"{self.rdzv_id}-{cell.cell_id}"]

    def srun_prefix(self) -> list[str]:
        """srun over the whole allocation, one task per node. --kill-on-bad-exit ends the
        other ranks (waiting in a collective) when one fails."""
        return ["srun", f"--nodes={self.count}", f"--ntasks={self.count}",
                "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--overlap",
                "--export=ALL"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {endpoint!r}")
    return host, int(port)

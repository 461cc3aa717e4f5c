"""The body of a two-node Slurm job (test_slurm_multinode.py submits it): for each framework,
one srun over the allocation starts step_rank.py on every node with exactly the launch the
runner gives a multi-node cell (cnnbench.sweep.nodes.Nodes: srun's arguments, torchrun's
rendezvous at the first node, JAX's coordinator, TensorFlow's workers).

    python -m tests.slurm.step_job OUT_DIR pytorch=PY jax=PY tensorflow=PY
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cnnbench.core.cells import Cell
from cnnbench.plan.envs import worker_env
from cnnbench.sweep import slurmctl as slurm
from cnnbench.sweep.nodes import Nodes, free_port

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    found = slurm.allocation()
    assert found is not None, "run me inside a Slurm allocation"
    names, addrs = found
    failed = []
    for pair in argv[1:]:
        fw, python = pair.split("=", 1)
        nodes = Nodes(count=len(names), host=addrs[0], addrs=addrs, port=free_port(),
                      rdzv_id=f"step-{os.environ['SLURM_JOB_ID']}", srun=True)
        cell = Cell(fw, "default", "cpu", "lenet5", "train", 8, "fp32", "default", 1)
        (out / fw).mkdir(parents=True, exist_ok=True)
        env, _ = worker_env({}, 1)
        env.update(nodes.env(cell))
        torchrun = (["-m", "torch.distributed.run", "--nproc-per-node", "1",
                     *nodes.torchrun(cell)] if fw == "pytorch" else [])
        cmd = [*nodes.srun_prefix(), python, *torchrun, str(HERE / "step_rank.py"),
               "--framework", fw, "--out", str(out / fw)]
        print(" ".join(cmd), flush=True)
        r = subprocess.run(cmd, env=env, timeout=240)
        if r.returncode:
            failed.append(f"{fw}: exit {r.returncode}")
    print("; ".join(failed) or "all ranks done", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

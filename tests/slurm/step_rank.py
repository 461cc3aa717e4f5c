"""One data-parallel SGD step of LeNet-5 as one rank of a multi-node job, joined the way the
runner joins a multi-node cell's ranks (cnnbench.sweep.nodes): started by step_job.py through
srun, under torchrun for PyTorch.

    python tests/slurm/step_rank.py --framework jax --out DIR

Each rank is handed the fixture's whole batch and feeds its own rows (the adapters shard);
it saves its replica's weights (``r0:{key}``), the global batch's loss, and how many
processes took part, as ``DIR/rank{R}.npz``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: our packages are at the root
    sys.path.insert(0, str(ROOT))


def main() -> int:
    import numpy as np

    from adapters import get_info, load_adapter
    from adapters.base import BuildOptions
    from workloads import get_workload
    from workloads.reference import init_weights

    p = argparse.ArgumentParser()
    p.add_argument("--framework", required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    adapter = load_adapter(a.framework)
    adapter.setup_devices("cpu")  # joins the other ranks
    adapter.setup(1)
    fx = np.load(ROOT / "tests" / "fixtures" / "sgd_step_lenet5.npz")
    spec = get_workload("lenet5")
    model = adapter.build(spec, init_weights(spec, seed=0), BuildOptions(
        device="cpu", mode="train", lr=float(fx["lr"]), momentum=float(fx["momentum"]),
        exec_mode=get_info(a.framework).default_exec_mode))
    loss = adapter.train_step(model, fx["x"], fx["y"])
    rank, world = _rank_world(a.framework, adapter)
    if a.framework == "pytorch":  # its train_step returns the rank's own shard's loss
        import torch

        t = torch.tensor([loss], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        loss = float(t.item()) / world
    # This rank's own copy (PyTorch's replica_weights gathers every rank's, in rank order).
    replicas = adapter.replica_weights(model)
    mine = replicas[rank] if len(replicas) == world else replicas[0]
    out = {"loss": np.float64(loss), "processes": np.int64(world)}
    out.update({f"r0:{k}": v for k, v in mine.items()})
    np.savez(a.out / f"rank{rank}.npz", **out)
    if a.framework == "jax":
        import jax

        jax.distributed.shutdown()  # together: process 0 hosts the coordination service
    sys.stdout.flush()
    os._exit(0)


def _rank_world(framework: str, adapter: object) -> tuple[int, int]:
    if framework == "pytorch":
        import torch

        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    if framework == "jax":
        import jax

        return jax.process_index(), jax.process_count()
    from adapters.base import tf_workers

    workers = tf_workers()
    assert workers is not None, "TF_CONFIG names no cluster"
    return workers


if __name__ == "__main__":
    sys.exit(main())

"""One data-parallel SGD step per workload, in a process of its own (the conformance suite's
data-parallel check runs this with the framework's launcher and environment).

    python tests/conformance/dp_step.py --framework jax --device 'cpu*2' --out OUT.npz
    torchrun --standalone --nproc-per-node 2 tests/conformance/dp_step.py --framework pytorch ...

For each workload: build it on the device set from canonical weights, take one step on the
fixture's batch (the global batch) and save every replica's weights (``r{i}:{key}``), the
loss, and, for comparison, one single-device step on the same global batch (``single:{key}``,
taken in the same process: on rank 0 under torchrun, outside the process group).
Imports numpy, the framework (through its adapter) and our packages only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script (torchrun): our packages are at the root
    sys.path.insert(0, str(ROOT))


def main() -> int:
    import numpy as np

    from adapters import get_info, load_adapter
    from adapters.base import BuildOptions, dist_env
    from workloads import get_workload
    from workloads.reference import init_weights

    p = argparse.ArgumentParser()
    p.add_argument("--framework", required=True)
    p.add_argument("--device", default="cpu*2")
    p.add_argument("--workloads", default="lenet5,cifar10_tutorial,resnet20")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--exec-mode", default=None, help="default: the adapter's default")
    p.add_argument("--single", action="store_true", help="also take the one-device step")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    fixtures = ROOT / "tests" / "fixtures"
    adapter = load_adapter(a.framework)
    exec_mode = a.exec_mode or get_info(a.framework).default_exec_mode
    adapter.setup_devices(a.device)
    adapter.setup(None)
    dist = dist_env()
    rank = dist[0] if dist else 0
    out: dict[str, np.ndarray] = {}
    for name in a.workloads.split(","):
        fx = np.load(fixtures / f"sgd_step_{name}.npz")
        spec = get_workload(name)
        weights = init_weights(spec, seed=0)

        def opts(device: str, lr: float = float(fx["lr"]),
                 momentum: float = float(fx["momentum"])) -> BuildOptions:
            return BuildOptions(device=device, mode="train", lr=lr, momentum=momentum,
                                dtype=a.dtype, exec_mode=exec_mode)

        model = adapter.build(spec, weights, opts(a.device))
        out[f"{name}/loss"] = np.float64(adapter.train_step(model, fx["x"], fx["y"]))
        replicas = adapter.replica_weights(model)
        out[f"{name}/replicas"] = np.int64(len(replicas))
        for i, w in enumerate(replicas):
            for k, v in w.items():
                out[f"{name}/r{i}:{k}"] = v
        if a.single and rank == 0:
            if a.framework == "pytorch":
                adapter._ranks, saved = None, adapter._ranks  # type: ignore[attr-defined]
            one = adapter.build(spec, weights, opts("cpu"))
            adapter.train_step(one, fx["x"], fx["y"])
            if a.framework == "pytorch":
                adapter._ranks = saved  # type: ignore[attr-defined]
            for k, v in adapter.export_weights(one).items():
                out[f"{name}/single:{k}"] = v
    if rank == 0:
        np.savez(a.out, **out)
    sys.stdout.flush()
    os._exit(0)  # skip framework teardown (some hang in atexit handlers)


if __name__ == "__main__":
    sys.exit(main())

"""One data-parallel SGD step of LeNet-5 as one of several JAX processes, joined by JAX's own
launcher (test_multinode_jax.py starts two on 127.0.0.1):

    CNNBENCH_COORDINATOR=127.0.0.1:PORT CNNBENCH_NUM_PROCESSES=2 CNNBENCH_PROCESS_ID=0 \\
        python tests/conformance/multiworker_step_jax.py --out OUT.npz

Every process builds the model on device ``cpu`` (one host device of its own) and is handed
the fixture's whole batch; the adapter's mesh spans both processes' devices and each process
feeds only its own rows. Saves this process's replica weights (``r{i}:{key}``), the loss, and
what JAX saw (processes, global and local devices): without the last, two processes that
never joined would each step on the whole batch and pass the weight checks.
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

    from adapters import load_adapter
    from adapters.base import BuildOptions
    from workloads import get_workload
    from workloads.reference import init_weights

    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    adapter = load_adapter("jax")
    adapter.setup_devices("cpu")  # joins the other processes, before any backend exists
    adapter.setup(1)  # the processes share the machine's cores

    import jax

    fx = np.load(ROOT / "tests" / "fixtures" / "sgd_step_lenet5.npz")
    spec = get_workload("lenet5")
    model = adapter.build(spec, init_weights(spec, seed=0), BuildOptions(
        device="cpu", mode="train", lr=float(fx["lr"]), momentum=float(fx["momentum"]),
        exec_mode="jit"))
    out = {"loss": np.float64(adapter.train_step(model, fx["x"], fx["y"])),
           "processes": np.int64(jax.process_count()),
           "devices": np.int64(jax.device_count()),
           "local_devices": np.int64(jax.local_device_count())}
    replicas = adapter.replica_weights(model)
    out["replicas"] = np.int64(len(replicas))
    for i, w in enumerate(replicas):
        out.update({f"r{i}:{k}": v for k, v in w.items()})
    np.savez(a.out, **out)
    # Leave together: process 0 hosts the coordination service, and a peer that outlives it
    # is told its coordinator died.
    jax.distributed.shutdown()
    sys.stdout.flush()
    os._exit(0)  # skip the rest of the teardown, as dp_step.py does


if __name__ == "__main__":
    sys.exit(main())

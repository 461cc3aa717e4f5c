"""One data-parallel SGD step of LeNet-5 as one worker of a TensorFlow cluster, joined by
TF_CONFIG and MultiWorkerMirroredStrategy (test_multinode_tf.py starts two on 127.0.0.1):

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]},
                "task": {"type": "worker", "index": 0}}' \\
        python tests/conformance/multiworker_step_tf.py --out OUT.npz

Every worker builds the model on device ``cpu`` and is handed the fixture's whole batch, with
the other workers' rows of x set to NaN: a worker that fed more than its own rows, or the
wrong ones, ends with NaN weights. Saves this worker's replica weights (``r{i}:{key}``), the
loss, and what TensorFlow saw (workers in the cluster, replicas in sync): without the last,
workers that never joined would each step on their half alone, and the weight check would
catch that only through the NaN rows.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: our packages are at the root
    sys.path.insert(0, str(ROOT))

BARRIER_MS = 60_000


def main() -> int:
    import numpy as np

    from adapters import load_adapter
    from adapters.base import BuildOptions, tf_workers
    from workloads import get_workload
    from workloads.reference import init_weights

    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    workers = tf_workers()
    if workers is None:
        p.error("TF_CONFIG must name a cluster of two or more workers")
    index, n = workers
    adapter = load_adapter("tensorflow")
    adapter.setup_devices("cpu")
    adapter.setup(1)  # the workers share the machine's cores; this joins the cluster

    import tensorflow as tf
    from tensorflow.python.eager import context

    fx = np.load(ROOT / "tests" / "fixtures" / "sgd_step_lenet5.npz")
    x = np.array(fx["x"])
    per = len(x) // n
    for other in range(n):
        if other != index:
            x[other * per:(other + 1) * per] = np.nan
    spec = get_workload("lenet5")
    model = adapter.build(spec, init_weights(spec, seed=0), BuildOptions(
        device="cpu", mode="train", lr=float(fx["lr"]), momentum=float(fx["momentum"]),
        exec_mode="graph"))
    strategy = model.strategy
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), strategy
    out = {"loss": np.float64(adapter.train_step(model, x, fx["y"])),
           "workers": np.int64(strategy.cluster_resolver.cluster_spec().num_tasks("worker")),
           "task_index": np.int64(strategy.cluster_resolver.task_id),
           "replicas_in_sync": np.int64(strategy.num_replicas_in_sync)}
    replicas = adapter.replica_weights(model)
    out["replicas"] = np.int64(len(replicas))
    for i, w in enumerate(replicas):
        out.update({f"r{i}:{k}": v for k, v in w.items()})
    np.savez(a.out, **out)
    # Leave together: worker 0 hosts the coordination service, and a peer still in a
    # collective when it goes is told its peer died. Both have saved by now, so a barrier
    # that fails (a peer gone early) changes nothing the test reads.
    try:
        context.context().wait_at_barrier("multiworker_step_tf_done", BARRIER_MS)
    except tf.errors.OpError as exc:
        print(f"exit barrier: {exc}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # TF's teardown of the cluster's server can hang; skip it, as dp_step.py does


if __name__ == "__main__":
    sys.exit(main())

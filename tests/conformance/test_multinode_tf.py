"""Beyond one process: TensorFlow's MultiWorkerMirroredStrategy, joined through TF_CONFIG.

Two workers on 127.0.0.1, one CPU device each, each with TF_CONFIG naming both and its own
index, take one SGD step of LeNet-5 on the fixture's batch (multiworker_step_tf.py). Each is
handed the whole batch with the other worker's rows poisoned with NaN, so only a worker that
feeds exactly its own rows ends with finite weights. Both must hold the same weights
afterwards, those must be the fixture's single-device step on the global batch, and the
loss the global batch's, within test_data_parallel's tolerance. Workers wait for peers that
never come (the cluster join and every collective), so both run under a timeout and are
killed with their process groups.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.test_data_parallel import HERE
from tests.conformance.test_multinode import (
    _free_port,
    assert_one_device_step,
    run_together,
)

pytestmark = pytest.mark.conformance

TIMEOUT_S = 120
N = 2


def _env(addresses: list[str], index: int) -> dict[str, str]:
    config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                TF_CONFIG=json.dumps(config))


def _run_workers(tmp_path: Path) -> list[dict[str, np.ndarray]]:
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(N)]
    jobs = [([sys.executable, str(HERE / "multiworker_step_tf.py"),
              "--out", str(tmp_path / f"w{i}.npz")], _env(addresses, i)) for i in range(N)]
    run_together(jobs, tmp_path, f"the {N} TensorFlow workers", TIMEOUT_S)
    return [dict(np.load(tmp_path / f"w{i}.npz")) for i in range(N)]


def test_two_workers_step_as_one_device_on_the_global_batch(framework: str,
                                                            tmp_path: Path) -> None:
    if framework != "tensorflow":
        pytest.skip(f"TensorFlow's TF_CONFIG workers; this run is {framework}'s")
    outs = _run_workers(tmp_path)
    for i, out in enumerate(outs):
        seen = {k: int(out[k]) for k in ("workers", "task_index", "replicas_in_sync", "replicas")}
        # Proof that the step ran across both: otherwise each stepped on its half alone.
        assert seen == {"workers": N, "task_index": i, "replicas_in_sync": N, "replicas": 1}, i
    assert_one_device_step(outs, "worker")

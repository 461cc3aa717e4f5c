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

from tests.conformance.fixture_step import FIXTURES
from tests.conformance.test_data_parallel import FP32_TOL, HERE
from tests.conformance.test_multinode import _free_port, run_together
from workloads.reference import max_rel_error

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
    mine = [{k[3:]: v for k, v in out.items() if k.startswith("r0:")} for out in outs]
    fx = np.load(FIXTURES / "sgd_step_lenet5.npz")
    assert set(mine[0]) == {k[2:] for k in fx.files if k.startswith("w:")}
    for i, w in enumerate(mine):
        bad = sorted(k for k, v in w.items() if not np.isfinite(v).all())
        assert not bad, f"worker {i} fed another worker's (NaN) rows: {bad} not finite"
    for k, v in mine[0].items():
        np.testing.assert_array_equal(mine[1][k], v, err_msg=k)
    worst = max(max_rel_error(mine[0][k], fx[f"w:{k}"]) for k in mine[0])
    assert worst <= FP32_TOL, f"two workers vs the one-device step differ by {worst:.2e}"
    # The loss is the global batch's (the mean over both workers), not this worker's half.
    for i, out in enumerate(outs):
        err = max_rel_error(out["loss"], fx["loss"])
        assert err <= FP32_TOL, f"worker {i}: loss {float(out['loss'])} vs {float(fx['loss'])}"

"""Beyond one machine: PyTorch DDP across two "nodes" joined by torchrun's c10d rendezvous.

Two launcher processes on 127.0.0.1, one rank each, take one data-parallel step of LeNet-5
and must agree on the replica weights. Launchers whose rendezvous ids differ wait for each
other forever without a word, so both run under a timeout with one fresh id.

The other frameworks' launchers are tested in files of their own: JAX's
``jax.distributed.initialize`` in test_multinode_jax.py, TensorFlow's ``TF_CONFIG`` with
``MultiWorkerMirroredStrategy`` in test_multinode_tf.py. The runner launches all three
across nodes (tests/slurm: by hand and through Slurm); MXNet's dist kvstore is documented in
the README only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.fixture_step import FIXTURES
from tests.conformance.test_data_parallel import FP32_TOL, HERE, replicas
from workloads.reference import max_rel_error

pytestmark = pytest.mark.conformance

TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_together(jobs: list[tuple[list[str], dict[str, str]]], logs: Path, what: str,
                 timeout_s: float = TIMEOUT_S) -> None:
    """Start every (command, environment) at once, each in its own process group with its
    log in ``logs``/{i}.log, and wait for all under one timeout. Peers that never meet wait
    silently, so what is left at the timeout is killed with its group and the test fails;
    so it does, with the end of every log, unless each exits 0."""
    procs = []
    for i, (cmd, env) in enumerate(jobs):
        log = open(logs / f"{i}.log", "wb")  # closed below
        procs.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=log,
                                       stdin=subprocess.DEVNULL, start_new_session=True), log))
    try:
        for p, _ in procs:
            p.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not finish within {timeout_s} s (logs in {logs})")
    finally:
        for p, log in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
            log.close()
    tails = [(logs / f"{i}.log").read_text(errors="replace")[-2000:] for i in range(len(jobs))]
    assert [p.returncode for p, _ in procs] == [0] * len(jobs), tails


def assert_one_device_step(outs: list[dict[str, np.ndarray]], who: str) -> None:
    """Each process's saved replica weights (``r0:{key}``) and loss, from one LeNet-5 step
    on its part of the fixture's batch: all finite (a process that stepped on rows not its
    own, poisoned with NaN where a test does so, is not), identical across processes, and
    the fixture's one-device step on the global batch within FP32_TOL; every loss is the
    global batch's, not the process's own part of it."""
    mine = [{k[3:]: v for k, v in out.items() if k.startswith("r0:")} for out in outs]
    fx = np.load(FIXTURES / "sgd_step_lenet5.npz")
    assert set(mine[0]) == {k[2:] for k in fx.files if k.startswith("w:")}
    for i, w in enumerate(mine):
        bad = sorted(k for k, v in w.items() if not np.isfinite(v).all())
        assert not bad, f"{who} {i} stepped on rows not its own: {bad} not finite"
    for k, v in mine[0].items():
        np.testing.assert_array_equal(mine[1][k], v, err_msg=k)
    worst = max(max_rel_error(mine[0][k], fx[f"w:{k}"]) for k in mine[0])
    assert worst <= FP32_TOL, f"two {who}s vs the one-device step differ by {worst:.2e}"
    for i, out in enumerate(outs):
        err = max_rel_error(out["loss"], fx["loss"])
        assert err <= FP32_TOL, f"{who} {i}: loss {float(out['loss'])} vs {float(fx['loss'])}"


def test_two_nodes_agree_on_replica_weights(framework: str, tmp_path: Path) -> None:
    if framework != "pytorch":
        pytest.skip(f"torchrun's multi-node launch is PyTorch's; this run is {framework}'s")
    port, rid = _free_port(), f"cnnbench-test-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    jobs = [([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
              "--nproc-per-node", "1", "--rdzv-backend", "c10d",
              "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", rid,
              str(HERE / "dp_step.py"), "--framework", "pytorch", "--device", "cpu",
              "--workloads", "lenet5", "--out", str(tmp_path / f"node{node}.npz")], env)
            for node in range(2)]
    run_together(jobs, tmp_path, "the two launchers")
    # The rank-0 process writes the file; which node it lands on is the rendezvous' choice.
    files = [f for f in (tmp_path / "node0.npz", tmp_path / "node1.npz") if f.exists()]
    assert len(files) == 1, files
    reps = replicas(dict(np.load(files[0])), "lenet5")
    assert len(reps) == 2
    for k, v in reps[0].items():
        np.testing.assert_array_equal(reps[1][k], v, err_msg=k)

"""Multi-node cells on the real Slurm of conftest.py: two nodes (two slurmd daemons on this
host), one task each, for PyTorch (torchrun per node, c10d rendezvous at the first node),
JAX (jax.distributed.initialize reading Slurm's task count and id) and TensorFlow
(MultiWorkerMirroredStrategy over TF_CONFIG built from Slurm's node addresses).

* One SGD step of LeNet-5 across the two nodes, launched exactly as the runner launches a
  multi-node cell (step_job.py), equals the one-device step on the global batch
  (``assert_one_device_step``). LeNet-5 has no batch norm: with it, PyTorch and TensorFlow
  normalise each replica's shard, and the step is not the global batch's.
* A ResNet-20 training cell per framework through ``cnnbench run --launcher slurm
  --nodes-per-job 2``: ok, on two nodes, every rank's samples kept, each round the slowest
  rank's, each node's report in the row; MXNet recorded unsupported with the reason.

Both start at once (the nodes are shared) and need the framework environments: a missing one
is skipped, or fails under CNNBENCH_REQUIRE_FRAMEWORKS=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from cnnbench.plan.envs import find_python
from tests.conformance.test_multinode import assert_one_device_step
from tests.slurm.cluster import LocalSlurm
from tests.slurm.conftest import ROOT, cnnbench_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("timeout_sweep")]
MULTI = ("pytorch", "jax", "tensorflow")


def _pythons() -> dict[str, str]:
    found, missing = {}, []
    for fw in MULTI:
        py, why = find_python(fw, {})
        if py:
            found[fw] = py
        else:
            missing.append(why)
    if missing and os.environ.get("CNNBENCH_REQUIRE_FRAMEWORKS") == "1":
        pytest.fail("framework environments missing: " + "; ".join(missing))
    if not found:
        pytest.skip("no framework environment: " + "; ".join(missing))
    return found


@pytest.fixture(scope="module")
def jobs(cluster: LocalSlurm, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, Any]]:
    """Both submissions, running side by side: the step job and the sweep."""
    pythons = _pythons()
    d = tmp_path_factory.mktemp("multinode")
    step = subprocess.Popen(
        ["sbatch", "--wait", "--nodes=2", "--ntasks-per-node=1", f"--output={d / 'step.out'}",
         f"--chdir={ROOT}", "--time=5", "--wrap",
         f"exec {sys.executable} -m tests.slurm.step_job {d / 'step'} "
         + " ".join(f"{fw}={py}" for fw, py in pythons.items())],
        cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = open(d / "sweep.txt", "w")  # closed below
    sweep = subprocess.Popen(cnnbench_cmd(
        "run", "--launcher", "slurm", "--nodes-per-job", "2", "--shared-nodes",
        "--frameworks", ",".join([*pythons, "mxnet"]), "--workloads", "resnet20",
        "--modes", "train", "--batch-sizes", "8", "--repeat", "1", "--budget", "1",
        "--no-probe", "--no-progress", "--results-dir", str(d), "--run-id", "mn"),
        cwd=ROOT, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield {"dir": d, "step": step, "sweep": sweep, "pythons": pythons}
    finally:
        for p in (step, sweep):
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()


def test_two_nodes_step_as_one_device_on_the_global_batch(jobs: dict[str, Any]) -> None:
    d = jobs["dir"]
    out, _ = jobs["step"].communicate(timeout=300)
    assert jobs["step"].returncode == 0, out + (d / "step.out").read_text()[-3000:]
    for fw in jobs["pythons"]:
        outs = [dict(np.load(d / "step" / fw / f"rank{r}.npz")) for r in (0, 1)]
        for out_ in outs:  # proof that both joined: else each stepped on the whole batch
            assert int(out_["processes"]) == 2, fw
        assert_one_device_step(outs, f"{fw} node")


def test_two_node_resnet20_cells_keep_every_rank(jobs: dict[str, Any]) -> None:
    d = jobs["dir"]
    assert jobs["sweep"].wait(timeout=400) == 0, (d / "sweep.txt").read_text()
    (f,) = d.glob("*/mn.jsonl")
    got = {r["framework"]: r for r in map(json.loads, f.read_text().splitlines())}
    assert got["mxnet"]["status"] == "unsupported"
    assert "dist kvstore" in got["mxnet"]["error"]
    for fw in jobs["pythons"]:
        row = got[fw]
        assert row["status"] == "ok", f"{fw}: {row['error']}"
        assert (row["n_nodes"], row["replicas"], row["per_device_batch"]) == (2, 2, 4), fw
        ranks = row["replica_samples_s"]
        assert len(ranks) == 2 and all(len(r) == len(row["samples_s"]) for r in ranks), fw
        # A round lasts until the slowest rank is done.
        np.testing.assert_allclose(row["samples_s"], np.max(ranks, axis=0), rtol=1e-6)
        assert [n["node"] for n in row["nodes"]] == ["n1", "n2"], row["nodes"]
        assert all("nics" in n for n in row["nodes"])

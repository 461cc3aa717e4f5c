"""Multi-node cells without Slurm: `cnnbench run --nnodes 2` started by hand on each "node"
(two runners on 127.0.0.1), for PyTorch (torchrun's c10d rendezvous), JAX (the coordinator at
--rdzv-endpoint's host, --node-rank as the process id) and TensorFlow (TF_CONFIG from
--node-addrs). The node of rank 0 records each cell, with both ranks' samples; the other
node records none. Needs the framework environments (skipped without them, failed under
CNNBENCH_REQUIRE_FRAMEWORKS=1)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.test_multinode import _free_port, run_together
from tests.slurm.test_slurm_multinode import _pythons

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("timeout_sweep")]
ROOT = Path(__file__).resolve().parents[2]


def test_two_runners_join_each_cell_and_rank_0_records_it(tmp_path: Path) -> None:
    import os

    pythons = _pythons()
    endpoint = f"127.0.0.1:{_free_port()}"
    jobs = [([sys.executable, "-m", "cnnbench", "run", "--nnodes", "2", "--node-rank", str(i),
              "--rdzv-endpoint", endpoint, "--node-addrs", "127.0.0.1,127.0.0.1",
              "--frameworks", ",".join(pythons), "--workloads", "lenet5", "--modes", "train",
              "--repeat", "1", "--budget", "0.5", "--no-probe", "--no-progress",
              "--results-dir", str(tmp_path / f"node{i}"), "--run-id", "s",
              "--machine-id", "m"], dict(os.environ)) for i in (0, 1)]
    run_together(jobs, tmp_path, "the two runners", timeout_s=300)
    got = {}
    for node in (0, 1):
        f = tmp_path / f"node{node}/m/s.jsonl"
        for row in map(json.loads, f.read_text().splitlines() if f.exists() else []):
            assert row["framework"] not in got, f"{row['framework']} recorded twice"
            got[row["framework"]] = (node, row)
    assert sorted(got) == sorted(pythons)
    for fw, (node, row) in got.items():
        # torchrun's rendezvous picks the node of rank 0; the others' is --node-rank 0.
        assert node == 0 or fw == "pytorch", f"{fw} recorded on node {node}"
        assert row["status"] == "ok", row["error"]
        assert (row["n_nodes"], row["replicas"]) == (2, 2), row["framework"]
        ranks = row["replica_samples_s"]
        assert len(ranks) == 2, row["framework"]
        np.testing.assert_allclose(row["samples_s"], np.max(ranks, axis=0), rtol=1e-6)

"""Beyond one process: JAX's own multi-controller launcher (``jax.distributed.initialize``).

Two processes on 127.0.0.1, one CPU device each, joined through the variables the JAX adapter
reads (CNNBENCH_COORDINATOR, CNNBENCH_NUM_PROCESSES, CNNBENCH_PROCESS_ID), take one SGD step
of LeNet-5 on the fixture's batch with the mesh over both processes' devices, each feeding
its half (multiworker_step_jax.py). Both must hold the same weights afterwards, and those
must be the fixture's single-device step on the global batch within test_data_parallel's
tolerance. Processes that disagree on the setup wait for each other (JAX's own timeout is
minutes), so both run under a timeout and are killed with their process groups.
"""

from __future__ import annotations

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

TIMEOUT_S = 90
N = 2


def _env(coordinator: str, process_id: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               CNNBENCH_COORDINATOR=coordinator, CNNBENCH_NUM_PROCESSES=str(N),
               CNNBENCH_PROCESS_ID=str(process_id))
    # One host device per process: a device count left in XLA_FLAGS by an earlier
    # test in this session (cpu*2) would give each process two.
    flags = env.get("XLA_FLAGS", "").split()
    env["XLA_FLAGS"] = " ".join(f for f in flags
                                if not f.startswith("--xla_force_host_platform_device_count"))
    return env


def _run_processes(tmp_path: Path) -> list[dict[str, np.ndarray]]:
    coordinator = f"127.0.0.1:{_free_port()}"
    jobs = [([sys.executable, str(HERE / "multiworker_step_jax.py"),
              "--out", str(tmp_path / f"p{i}.npz")], _env(coordinator, i)) for i in range(N)]
    run_together(jobs, tmp_path, f"the {N} JAX processes", TIMEOUT_S)
    return [dict(np.load(tmp_path / f"p{i}.npz")) for i in range(N)]


def test_two_processes_step_as_one_device_on_the_global_batch(framework: str,
                                                              tmp_path: Path) -> None:
    if framework != "jax":
        pytest.skip(f"JAX's multi-process launcher; this run is {framework}'s")
    outs = _run_processes(tmp_path)
    for i, out in enumerate(outs):
        seen = {k: int(out[k]) for k in ("processes", "devices", "local_devices", "replicas")}
        # Proof that the step ran across both: otherwise each process stepped on all of it.
        assert seen == {"processes": N, "devices": N, "local_devices": 1, "replicas": 1}, i
    assert_one_device_step(outs, "process")

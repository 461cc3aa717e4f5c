"""The real Slurm the tests submit to (tests/slurm/cluster.py): started once per session,
torn down at its end. Where it cannot start (not root, packages absent) the tests are skipped
with the reason, except under ``CNNBENCH_REQUIRE_SLURM=1`` (tox -e slurm, so CI), where that
is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm.cluster import LocalSlurm, missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalSlurm]:
    why = missing()
    if why:
        if os.environ.get("CNNBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(f"no local Slurm: {why}")
        pytest.skip(f"no local Slurm: {why}")
    # Not under pytest's temporary folders: they are private to root, and munged (run as its
    # own user) must reach its key and socket.
    root = Path(tempfile.mkdtemp(prefix="cnnbench-slurm-"))
    c = LocalSlurm(root)
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(c.conf)  # for the Slurm commands the tests run themselves
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


def cnnbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnbench", *args]


def cnnbench(cluster: LocalSlurm, *args: str, timeout: float = 300
             ) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cnnbench_cmd(*args), cwd=ROOT, env=cluster.env, capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    print(r.stdout[-4000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="session")
def timeout_sweep(cluster: LocalSlurm, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A one-cell sweep whose cell hangs in a job of --time 1 (one minute), started as early
    as the session's first Slurm test: Slurm ends a job at its limit only on its next periodic
    check (the TIMEOUT came 60-90 s after the start here), so it runs beside the others, on a
    shared node, and test_time_limit.py (last) collects it."""
    from tests.slurm.test_slurm_sweep import FAST, HANG

    d = tmp_path_factory.mktemp("timeout")
    (d / "v.toml").write_text(HANG)
    log = open(d / "out.txt", "w")  # closed below
    proc = subprocess.Popen(cnnbench_cmd(
        "run", "--launcher", "slurm", "--time", "1", "--shared-nodes", *FAST,
        "--workloads", "lenet5", "--variants", "hang", "--variants-file", str(d / "v.toml"),
        "--repeat", "1", "--results-dir", str(d), "--run-id", "t1"),
        cwd=ROOT, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc, d
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

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

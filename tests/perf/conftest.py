"""Benchmarks of the harness itself (pytest-benchmark), run by `tox -e perf`."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--framework") or "null")

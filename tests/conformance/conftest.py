"""The adapter conformance suite: the same tests for every adapter, run inside that
framework's environment (``pytest tests/conformance --framework NAME``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def framework(request: pytest.FixtureRequest) -> str:
    name = request.config.getoption("--framework")
    if not name:
        pytest.skip("conformance tests need --framework NAME (run them through tox)")
    return str(name)


@pytest.fixture(scope="session")
def adapter(framework: str):
    from adapters import load_adapter

    return load_adapter(framework)

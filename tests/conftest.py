"""Shared pytest options. Imports nothing heavier than numpy: it also runs inside framework
environments for the conformance suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--framework", action="store", default=None,
                     help="adapter the conformance suite checks (pytorch, null, ...)")

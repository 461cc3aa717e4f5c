"""Keep the README true: its schema table, workload table and commands match the code."""

from __future__ import annotations

from pathlib import Path

from adapters import ADAPTERS
from cnnbench.schema import REQUIRED
from workloads import get_workload, list_workloads

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_schema_field_is_documented() -> None:
    for field in REQUIRED:
        assert f"`{field}`" in README, field


def test_workload_table_matches_specs() -> None:
    for name in list_workloads():
        assert f"| `{name}` |" in README
        assert f"{get_workload(name).params:,}" in README


def test_commands_and_ci_agree() -> None:
    assert "python3 -m pip install tox && python3 -m tox -e bench" in README
    assert "python3 -m pip install tox && python3 -m tox\n" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("python3 -m tox")


def test_every_adapter_has_a_tox_env_and_is_in_the_default_lists() -> None:
    tox = (ROOT / "tox.ini").read_text()
    for info in ADAPTERS.values():
        if info.env:
            assert f"[testenv:{info.env}]" in tox
            assert info.env in tox.split("env_list =", 1)[1].splitlines()[0]

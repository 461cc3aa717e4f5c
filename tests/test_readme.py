"""Keep the README true: its schema table, workload table and commands match the code."""

from __future__ import annotations

from pathlib import Path

from adapters import ADAPTERS
from cnnbench.core.schema import FIELDS, markdown_table
from workloads import get_workload, list_workloads

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _readme_schema_rows() -> list[str]:
    """The field names of the README's schema table, in order (not just anywhere)."""
    section = README.split("## Result schema", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    return [ln.split("`", 2)[1] for ln in rows]


def test_schema_table_is_the_schema() -> None:
    assert _readme_schema_rows() == [f.name for f in FIELDS]
    assert markdown_table() in README, "regenerate it with `python -m cnnbench.core.schema`"


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

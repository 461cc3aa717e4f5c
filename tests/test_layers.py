"""The import graph of `cnnbench/`, `adapters/` and `workloads/`: no cycle, no import up a floor.

Every import counts, wherever it is written: at the top, inside a function (a lazy import is
still a dependency) and under ``if TYPE_CHECKING:``. The floors are ARCHITECTURE.md's table,
and a test checks that the table there says what `FLOORS` says here. The checker is tested on
a small package in a temporary folder, so that this test can fail.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workloads", "adapters", "cnnbench")

# module or package -> (floor, group). An import may point down a floor, or sideways within
# one group; never up, never to another group of the same floor, except the pairs in SIDEWAYS.
# A key that is a prefix of another key (the `cnnbench` package itself) stands for its own
# `__init__` only, so a new sub-package of `cnnbench` must be given a floor here.
FLOORS: dict[str, tuple[int, str]] = {
    "workloads": (0, "workloads"),
    "cnnbench": (0, "cnnbench"),  # its __init__: the version, nothing else
    "cnnbench.core": (1, "core"),
    "adapters": (1, "adapters"),
    "cnnbench.measure": (2, "measure"),
    "cnnbench.plan": (3, "plan"),
    "cnnbench.analyse": (4, "analyse"),
    "cnnbench.sweep": (5, "sweep"),  # the tuner's halving decides with the analysis
    "cnnbench.report": (5, "report"),
    "cnnbench.commands": (6, "top"),
    "cnnbench.cli": (6, "top"),
    "cnnbench.__main__": (6, "top"),
}
SIDEWAYS = {("adapters", "core")}  # the adapters use the core's types and ISA ladder


# ------------------------------------------------------------------ the checker


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages under ``root``."""
    out: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement may refer to, most specific first per name."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join([*pkg, base] if base else pkg)
    return [f"{base}.{a.name}" for a in node.names] + [base]


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """module -> the modules of ``packages`` it imports. ``from p import x`` points at
    ``p.x`` when that is a module, else at ``p``; ``import a.b.c`` at the longest existing
    prefix of ``a.b.c``."""
    mods = modules(root, packages)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _imported(node, m, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                # from p import x, y: each of p.x, p.y that is a module, else p itself
                subs = [n for n in names[:-1] if n in mods]
                names = subs if len(subs) == len(names) - 1 else [*subs, names[-1]]
            for n in names:
                parts = n.split(".")
                hit = next((".".join(parts[:i]) for i in range(len(parts), 0, -1)
                            if ".".join(parts[:i]) in mods), None)
                if hit is not None and hit != m:
                    graph[m].add(hit)
    return graph


def floor_of(module: str, floors: Mapping[str, tuple[int, str]]) -> tuple[int, str] | None:
    """The floor of the longest key naming ``module`` or a package holding it; a key that is
    a prefix of another key names only its own module."""
    best = None
    for k in floors:
        owns_parts = not any(o.startswith(k + ".") for o in floors)
        if module == k or (owns_parts and module.startswith(k + ".")):
            if best is None or len(k) > len(best):
                best = k
    return floors[best] if best is not None else None


def upward_imports(graph: Mapping[str, set[str]], floors: Mapping[str, tuple[int, str]],
                   sideways: AbstractSet[tuple[str, str]] = frozenset()) -> list[str]:
    """One line per import that points up a floor, or across to another group of its floor,
    and per module on no floor."""
    bad = []
    for m in sorted(graph):
        if floor_of(m, floors) is None:
            bad.append(f"{m} is on no floor: give it one in ARCHITECTURE.md and FLOORS")
    for a in sorted(graph):
        fa = floor_of(a, floors)
        for b in sorted(graph[a]):
            fb = floor_of(b, floors)
            if fa is None or fb is None:
                continue
            if fb[0] > fa[0]:
                bad.append(f"{a} (floor {fa[0]}, {fa[1]}) imports {b} (floor {fb[0]}, {fb[1]}): up")
            elif fb[0] == fa[0] and fb[1] != fa[1] and (fa[1], fb[1]) not in sideways:
                bad.append(f"{a} ({fa[1]}) imports {b} ({fb[1]}): across floor {fa[0]}")
    return bad


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Import cycles, one at a time (graphlib names one per pass; its edges are then cut
    so that the next pass finds another), each as [a, b, ..., a] in import order."""
    g = {m: set(deps) for m, deps in graph.items()}
    found: list[list[str]] = []
    while True:
        try:
            graphlib.TopologicalSorter(g).prepare()
            return found
        except graphlib.CycleError as exc:
            cyc = list(reversed(exc.args[1]))  # graphlib lists it against the arrows
            found.append(cyc)
            for a, b in itertools.pairwise(cyc):
                g[a].discard(b)


# ------------------------------------------------------------------ the tree


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, PACKAGES)


def test_no_import_points_up_a_floor(graph: dict[str, set[str]]) -> None:
    bad = upward_imports(graph, FLOORS, SIDEWAYS)
    assert not bad, "imports against the floors of ARCHITECTURE.md:\n" + "\n".join(bad)


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_graph_sees_lazy_and_type_checking_imports(graph: dict[str, set[str]]) -> None:
    """A sanity check that the walk is not blind: imports inside functions count."""
    assert "cnnbench.sweep.runner" in graph["cnnbench.commands.run"]  # inside run()
    assert "cnnbench.core.cells" in graph["cnnbench.plan.estimate"]
    assert "workloads.registry" in graph["workloads"]  # relative: from .registry import ...


def test_architecture_md_names_the_same_floors() -> None:
    """ARCHITECTURE.md's floors table lists every key of FLOORS on its floor, and nothing else."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Floors", 1)[1].split("\n## ", 1)[0]
    doc: dict[str, int] = {}
    for row in section.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", row)
        if m:
            for name in re.findall(r"`([\w.]+)`", m.group(2)):
                doc[name] = int(m.group(1))
    assert doc == {k: f for k, (f, _) in FLOORS.items()}
    rule = re.search(r"`sweep` and `analyse` never import each other", section)
    assert rule and ("sweep", "analyse") not in SIDEWAYS and ("analyse", "sweep") not in SIDEWAYS


# ------------------------------------------------------------------ the checker can fail


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


TOY_FLOORS = {"base": (0, "base"), "app": (1, "app"), "app.left": (1, "left"),
              "app.right": (1, "right")}


def test_the_checker_finds_a_planted_upward_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "base/__init__.py": "",
        "base/util.py": "def f():\n    from app.main import g  # lazy, still an edge\n",
        "app/__init__.py": "",
        "app/main.py": "from base.util import f\n\ndef g():\n    pass\n",
    })
    g = import_graph(tmp_path, ("base", "app"))
    assert g["app.main"] == {"base.util"} and g["base.util"] == {"app.main"}
    assert upward_imports(g, {"base": (0, "base"), "app": (1, "app")}) == [
        "base.util (floor 0, base) imports app.main (floor 1, app): up"]


def test_the_checker_finds_a_type_checking_import_across_a_floor(tmp_path: Path) -> None:
    _write(tmp_path, {
        "app/__init__.py": "",
        "app/left/__init__.py": "",
        "app/left/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                         "    from ..right import b\n",
        "app/right/__init__.py": "",
        "app/right/b.py": "",
        "app/loose.py": "",  # under the prefix key `app`, which has parts of its own
    })
    g = import_graph(tmp_path, ("app",))
    assert g["app.left.a"] == {"app.right.b"}
    assert upward_imports(g, TOY_FLOORS) == [
        "app.loose is on no floor: give it one in ARCHITECTURE.md and FLOORS",
        "app.left.a (left) imports app.right.b (right): across floor 1"]
    assert "app.left.a" not in " ".join(upward_imports(g, TOY_FLOORS, {("left", "right")}))


def test_the_checker_finds_a_planted_cycle(tmp_path: Path) -> None:
    _write(tmp_path, {
        "base/__init__.py": "from base import a\n",
        "base/a.py": "import base.b\n",
        "base/b.py": "from base.c import x\n",
        "base/c.py": "def x():\n    from . import a\n",
        "base/d.py": "from base import a, b\n",  # imports into the cycle: not part of it
    })
    g = import_graph(tmp_path, ("base",))
    assert g["base.d"] == {"base.a", "base.b"}
    (cyc,) = cycles(g)
    assert cyc[0] == cyc[-1] and sorted(cyc[:-1]) == ["base.a", "base.b", "base.c"]
    assert all(b in g[a] for a, b in itertools.pairwise(cyc))  # in import order
    assert cycles({m: set() for m in g}) == []

"""The section registry: a section is one module that registers its builder with ``@section``.

Like timm's ``register_model``: ``@section("memory", "Peak memory", order=85)`` on a function
``build(inp: Inputs, sec: Section) -> None`` that fills ``sec``. The report imports every
module of this package (``load_all``), so adding a section is adding one file. ``order``
places it among the others (the thirteen built-in sections use 10, 20, ..., 130).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnbench.report.htmlkit import Section

if TYPE_CHECKING:
    from cnnbench.report.sections.base import Inputs

Builder = Callable[["Inputs", Section], None]


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    order: float
    build: Builder

    def render(self, inp: Inputs) -> Section:
        sec = Section(self.id, self.title)
        self.build(inp, sec)
        return sec


_REGISTRY: dict[str, Entry] = {}


def section(id: str, title: str, *, order: float) -> Callable[[Builder], Builder]:
    """Register ``build`` as the section ``id`` with heading ``title``."""

    def register(build: Builder) -> Builder:
        old = _REGISTRY.get(id)
        # The same function registered again (its module imported anew) replaces itself.
        if old is not None and _name(old.build) != _name(build):
            raise ValueError(f"two report sections with the id {id!r}: "
                             f"{_name(old.build)} and {_name(build)}")
        _REGISTRY[id] = Entry(id, title, order, build)
        return build

    return register


def _name(build: Builder) -> str:
    return f"{build.__module__}.{build.__qualname__}"


def load_all() -> list[Entry]:
    """Import every module of this package, then the registered sections in order."""
    import cnnbench.report.sections as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.id))


def section_ids() -> tuple[str, ...]:
    """Every section's HTML id, in the report's order."""
    return tuple(e.id for e in load_all())

"""A registry of workloads in the style of timm's `register_model` / `list_models`.

Specs are built lazily (VGG-16's graph is cheap, but there is no reason to build all six to
look up one) and cached.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from functools import cache

from .spec import WorkloadSpec

_FACTORIES: dict[str, Callable[[], WorkloadSpec]] = {}


class UnknownWorkload(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register_workload(fn: Callable[[], WorkloadSpec]) -> Callable[[], WorkloadSpec]:
    name = fn.__name__
    if name in _FACTORIES:
        raise ValueError(f"workload {name!r} registered twice")
    _FACTORIES[name] = fn
    return fn


def list_workloads(pattern: str | None = None, tag: str | None = None) -> list[str]:
    """Names in registration order, filtered by a glob pattern and/or a tag."""
    names = [n for n in _FACTORIES if pattern is None or fnmatch.fnmatch(n, pattern)]
    if tag is not None:
        names = [n for n in names if tag in get_workload(n).tags]
    return names


@cache
def get_workload(name: str) -> WorkloadSpec:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownWorkload(
            f"unknown workload {name!r} (known: {', '.join(_FACTORIES)})"
        ) from None
    spec = factory()
    if spec.name != name:
        raise ValueError(f"factory {name!r} returned spec named {spec.name!r}")
    return spec

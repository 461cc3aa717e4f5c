"""Framework adapters, one module each, and the static table that names them.

Nothing here imports a framework: an adapter module is imported only inside its own worker
process, started with the interpreter of that framework's environment (einops' backends and
Keras 3 do the same, because a framework may be missing, heavy or broken). The table below
is what the core plans with; the worker re-checks every combination against the adapter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .table import ADAPTERS, FRAMEWORKS, AdapterInfo, UnknownAdapter, get_info

if TYPE_CHECKING:
    from .base import Adapter

__all__ = ["ADAPTERS", "FRAMEWORKS", "AdapterInfo", "UnknownAdapter", "get_info", "load_adapter"]


def load_adapter(name: str) -> Adapter:
    """Import the adapter module (and so its framework). Only the worker calls this."""
    module = importlib.import_module(get_info(name).module)
    adapter: Adapter = module.ADAPTER
    return adapter

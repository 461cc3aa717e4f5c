"""Framework-neutral CNN workloads: specs, a registry, canonical weights and a NumPy oracle.

Importing this package imports numpy and nothing else.
"""

from . import zoo as _zoo  # noqa: F401  (registers the standard workloads)
from .registry import UnknownWorkload, get_workload, list_workloads, register_workload
from .spec import GraphBuilder, Layer, ParamInfo, SpecError, Step, WorkloadSpec

__all__ = [
    "GraphBuilder",
    "Layer",
    "ParamInfo",
    "SpecError",
    "Step",
    "UnknownWorkload",
    "WorkloadSpec",
    "get_workload",
    "list_workloads",
    "register_workload",
]

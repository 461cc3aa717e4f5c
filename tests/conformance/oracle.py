"""The canonical weights and the oracle's logits of each registered workload, computed once
per test process and shared by the tests that compare a forward pass against the oracle.

A conformance run asks for the same (workload, seed) weights and the same oracle logits in
several tests: the shared suite's un-jitted/eager check, each framework's compiled or jitted
check, the parameter count and the weight round trip. VGG-16's weights (138M values) take
about 5 s of CPU to draw and its float64 oracle forward pass about 8 s; the six workloads
together about 18 s, for each repetition. The arrays are the same ones the tests would have
made (same spec, seed and batch); every caller gets its own copy of the weights, because an
adapter may share memory with them (``torch.from_numpy``) and a training step writes there.
"""

from __future__ import annotations

import functools

import numpy as np

from workloads import WorkloadSpec, get_workload
from workloads.reference import forward, init_weights, synthetic_batch

Weights = dict[str, np.ndarray]


@functools.lru_cache(maxsize=2)  # VGG-16's are 0.55 GB: keep few
def _weights(name: str, seed: int) -> Weights:
    w = init_weights(get_workload(name), seed=seed)
    for v in w.values():
        v.flags.writeable = False
    return w


def canonical(name: str, seed: int = 0) -> tuple[WorkloadSpec, Weights]:
    """(the registered spec, a private copy of its canonical weights for ``seed``)."""
    return get_workload(name), {k: v.copy() for k, v in _weights(name, seed).items()}


@functools.cache
def _logits(name: str, seed: int, batch: int, batch_seed: int) -> tuple[np.ndarray, np.ndarray]:
    spec = get_workload(name)
    x, _ = synthetic_batch(spec, batch, seed=batch_seed)
    return x, forward(spec, _weights(name, seed), x)


def oracle_logits(name: str, seed: int = 0, batch: int = 2, batch_seed: int = 1
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(the fixed input batch, the oracle's float64 inference logits for it), both copies
    (small): an adapter may take the batch's memory as its own tensor."""
    x, ref = _logits(name, seed, batch, batch_seed)
    return x.copy(), ref.copy()

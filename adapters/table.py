"""The static table of adapters: their names, modules, environments, execution modes,
precisions and device kinds. Standard library only: the core plans with it, and
``adapters.base`` reads it without importing the package that loads adapters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    module: str
    env: str  # the tox environment that holds the framework (None-like "" = this interpreter)
    exec_modes: tuple[str, ...]
    default_exec_mode: str
    precisions: tuple[str, ...]
    device_kinds: tuple[str, ...]  # "cpu", "gpu"
    description: str


ADAPTERS: dict[str, AdapterInfo] = {
    "null": AdapterInfo(
        "null", "adapters.null", "", ("eager", "compiled"), "eager", ("fp32", "bf16", "fp16"),
        ("cpu", "gpu"), "no framework: measures the harness itself; fault injection for tests",
    ),
    "pytorch": AdapterInfo(
        "pytorch", "adapters.pytorch", "pytorch", ("eager", "compiled"), "eager",
        ("fp32", "bf16", "fp16", "tf32"), ("cpu", "gpu"),
        "PyTorch (eager or torch.compile; bf16 autocast on CPU, fp16/bf16 AMP on CUDA)",
    ),
    "tensorflow": AdapterInfo(
        "tensorflow", "adapters.tensorflow", "tensorflow", ("eager", "graph", "xla"), "graph",
        ("fp32", "bf16", "fp16"), ("cpu", "gpu"),
        "TensorFlow/Keras (eager, tf.function graph, or XLA; mixed_bfloat16 / mixed_float16)",
    ),
    "jax": AdapterInfo(
        "jax", "adapters.jax", "jax", ("jit", "eager"), "jit", ("fp32", "bf16"), ("cpu", "gpu"),
        "JAX with Flax and optax (jitted steps with donated state; bf16 compute)",
    ),
    "mxnet": AdapterInfo(
        "mxnet", "adapters.mxnet", "mxnet", ("eager", "hybrid"), "hybrid", ("fp32", "fp16"),
        ("cpu", "gpu"),
        "MXNet 1.9.1 / Gluon (imperative or hybridized with static_alloc/static_shape)",
    ),
}

# The frameworks a default sweep runs: every real adapter (not the null one).
FRAMEWORKS = tuple(name for name in ADAPTERS if name != "null")


class UnknownAdapter(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_info(name: str) -> AdapterInfo:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UnknownAdapter(
            f"unknown framework {name!r} (known: {', '.join(ADAPTERS)})"
        ) from None

"""The JAX adapter against a plain hand-written Flax training loop, side by side.

    .tox/jax/bin/python tests/perf/handloop_jax.py [--rounds 10] [--mode train]

Both run ResNet-20 at batch 32 in this one process: the adapter's time_steps (spec -> Flax
linen module, its own PyTorch-convention batch norm, an AOT-compiled jitted step) and what a
JAX user would write by hand (flax.linen Conv/BatchNorm/Dense, optax.sgd, one jax.jit step
with donated state). Rounds are interleaved (A, B, A, B, ...) so that the noise of a shared
machine hits both alike; the figure is the median of the per-round images/s, and the ratio
is adapter / hand loop (> 1: the adapter is faster).
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sidebyside import compare, parse_args, resnet20_suite  # noqa: E402  (this folder)

from adapters import load_adapter  # noqa: E402

ADAPTER = load_adapter("jax")  # before anything touches a backend: setup() sets the threads

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402


class ResNet20(nn.Module):
    """ResNet-20 (option-A shortcuts) as one writes it in Flax: NHWC, padding 1 everywhere."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        bn = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        conv = partial(nn.Conv, kernel_size=(3, 3), padding=1, use_bias=False)
        x = nn.relu(bn()(conv(16)(x)))
        in_c = 16
        for stage, out_c in enumerate((16, 32, 64), start=1):
            for block in range(3):
                stride = 2 if stage > 1 and block == 0 else 1
                y = nn.relu(bn()(conv(out_c, strides=stride)(x)))
                y = bn()(conv(out_c)(y))
                if stride != 1 or in_c != out_c:
                    extra = out_c - in_c
                    x = jnp.pad(x[:, ::stride, ::stride, :],
                                ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
                x = nn.relu(y + x)
                in_c = out_c
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


def hand_loop(x_nchw: np.ndarray, y: np.ndarray, mode: str):
    net = ResNet20()
    x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1))
    labels = jnp.asarray(y, dtype=jnp.int32)
    variables = net.init(jax.random.key(0), x, train=False)
    tx = optax.sgd(0.01, momentum=0.9)
    state: Any = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    @partial(jax.jit, donate_argnums=0)
    def train_step(state, x, y):
        params, stats, opt_state = state

        def loss_fn(params):
            logits, upd = net.apply({"params": params, "batch_stats": stats}, x, train=True,
                                    mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd

        (loss, upd), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), upd["batch_stats"], opt_state), loss

    @jax.jit
    def infer_step(params, stats, x):
        return net.apply({"params": params, "batch_stats": stats}, x, train=False)

    def time_steps(n: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(n):
            if mode == "train":
                state, out = train_step(state, x, labels)
            else:
                out = infer_step(state[0], state[1], x)
        jax.block_until_ready((state, out))
        return time.perf_counter() - t0

    return time_steps


def main() -> None:
    args = parse_args(__doc__.split("\n")[0], ("jit", "eager"))
    model, x, y, suite = resnet20_suite(ADAPTER, args.mode, args.exec_mode, args.batch,
                                        args.threads)
    print("adapter compile:", {k: round(v, 3) for k, v in ADAPTER.prepare_facts(model).items()})
    compare(suite, hand_loop(x, y, args.mode), args.batch, args.steps, args.rounds)


if __name__ == "__main__":
    main()

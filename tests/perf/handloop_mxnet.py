"""The MXNet adapter against a plain hand-written Gluon loop, side by side.

    .tox/mxnet/bin/python tests/perf/handloop_mxnet.py [--rounds 10] [--mode train]

Both run ResNet-20 at batch 32 in this one process: the adapter's time_steps (spec ->
SpecNet, hybridized) and what a Gluon user would write by hand (a HybridBlock ResNet-20,
hybridize(static_alloc=True, static_shape=True), SoftmaxCrossEntropyLoss, gluon.Trainer SGD,
step(batch_size)). Rounds are interleaved (A, B, A, B, ...) so that the noise of a shared
machine hits both alike; the figure is the median of the per-round images/s, and the ratio is
adapter / hand loop (> 1: the adapter is faster).

MXNet sizes its OpenMP pool from OMP_NUM_THREADS when it is imported (without it, half the
visible CPUs), so --threads is applied to the environment before the import.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sidebyside import compare, parse_args, resnet20_suite  # noqa: E402  (this folder)

ARGS = parse_args(__doc__.split("\n")[0], ("hybrid", "eager"))
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)  # must precede the import of mxnet

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

from adapters import load_adapter  # noqa: E402


class BasicBlock(gluon.HybridBlock):
    """Two 3x3 convs with batch norm; option-A shortcut (subsample, zero channels)."""

    def __init__(self, in_c: int, out_c: int, stride: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, out_c - in_c
        with self.name_scope():
            self.conv1 = nn.Conv2D(out_c, 3, stride, 1, use_bias=False, in_channels=in_c)
            self.bn1 = nn.BatchNorm(in_channels=out_c)
            self.conv2 = nn.Conv2D(out_c, 3, 1, 1, use_bias=False, in_channels=out_c)
            self.bn2 = nn.BatchNorm(in_channels=out_c)

    def hybrid_forward(self, F, x):  # type: ignore[no-untyped-def]
        # F.Activation as GluonCV writes it: it runs on oneDNN, F.relu does not.
        y = F.Activation(self.bn1(self.conv1(x)), act_type="relu")
        y = self.bn2(self.conv2(y))
        if self.stride != 1 or self.extra:
            s = self.stride
            x = F.slice(x, begin=(None,) * 4, end=(None,) * 4, step=(1, 1, s, s))
            half = F.zeros_like(F.slice_axis(x, axis=1, begin=0, end=self.extra // 2))
            x = F.concat(half, x, half, dim=1)
        return F.Activation(y + x, act_type="relu")


class ResNet20(gluon.HybridBlock):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        with self.name_scope():
            self.body = nn.HybridSequential()
            self.body.add(nn.Conv2D(16, 3, 1, 1, use_bias=False, in_channels=3),
                          nn.BatchNorm(in_channels=16), nn.Activation("relu"))
            in_c = 16
            for stage, out_c in enumerate((16, 32, 64), start=1):
                for block in range(3):
                    self.body.add(BasicBlock(in_c, out_c, 2 if stage > 1 and block == 0 else 1))
                    in_c = out_c
            self.body.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.fc = nn.Dense(classes, in_units=64)

    def hybrid_forward(self, F, x):  # type: ignore[no-untyped-def]
        return self.fc(self.body(x))


def hand_loop(x_np, y_np, mode: str, hybrid: bool):  # type: ignore[no-untyped-def]
    ctx = mx.cpu()
    net = ResNet20()
    net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
        loss_fn.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01,
                                                          "momentum": 0.9})
    x = mx.nd.array(x_np, ctx=ctx)
    y = mx.nd.array(y_np, ctx=ctx)
    batch = x.shape[0]

    def time_steps(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            if mode == "train":
                with autograd.record():
                    loss = loss_fn(net(x), y)
                loss.backward()
                trainer.step(batch)
            else:
                net(x)
        mx.nd.waitall()
        return time.perf_counter() - t0

    return time_steps


def main() -> None:
    args = ARGS
    _, x, y, suite = resnet20_suite(load_adapter("mxnet"), args.mode, args.exec_mode,
                                    args.batch, args.threads)
    compare(suite, hand_loop(x, y, args.mode, args.exec_mode == "hybrid"), args.batch,
            args.steps, args.rounds)


if __name__ == "__main__":
    main()

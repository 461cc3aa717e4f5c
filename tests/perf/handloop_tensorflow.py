"""The TensorFlow adapter against a plain hand-written Keras 3 loop, side by side.

    .tox/tensorflow/bin/python tests/perf/handloop_tensorflow.py [--rounds 10] [--mode train]

Both run ResNet-20 at batch 32 on 2 threads in this one process: the adapter's time_steps
(spec -> raw TF ops, tf.function) and what a TF user would write by hand (Keras 3 layers,
keras.optimizers.SGD, a GradientTape step in tf.function). Rounds are interleaved, in
alternating order (A B, B A, A B, ...), so that the noise of a shared machine hits both
alike; the figure is the median of the per-round images/s, and the ratio is adapter / hand
loop (> 1: the adapter is faster).

On a shared 2-core machine one run proves little: at 2 threads single runs gave ratios from
0.89 to 1.03 (the two share every convolution kernel, ~80% of the step); at 1 thread, which
other processes disturb less, they agreed within 1%. Repeat it, and compare --threads 1.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sidebyside import compare, parse_args, resnet20_suite  # noqa: E402  (this folder)

from adapters import load_adapter  # noqa: E402

ADAPTER = load_adapter("tensorflow")  # first: it quiets TF's logging before TF's import

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


def keras_resnet20(num_classes: int = 10) -> keras.Model:
    """ResNet-20 (option-A shortcuts) as one writes it in Keras: 'same' padding where it is
    symmetric (stride 1), explicit ZeroPadding2D before the stride-2 convs."""
    bn = dict(momentum=0.9, epsilon=1e-5)  # PyTorch's momentum 0.1 in Keras' convention
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    x = layers.ReLU()(layers.BatchNormalization(**bn)(x))
    in_c = 16
    for stage, out_c in enumerate((16, 32, 64), start=1):
        for block in range(3):
            stride = 2 if stage > 1 and block == 0 else 1
            if stride == 2:
                y = layers.ZeroPadding2D(1)(x)
                y = layers.Conv2D(out_c, 3, strides=2, padding="valid", use_bias=False)(y)
            else:
                y = layers.Conv2D(out_c, 3, padding="same", use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization(**bn)(y))
            y = layers.Conv2D(out_c, 3, padding="same", use_bias=False)(y)
            y = layers.BatchNormalization(**bn)(y)
            if stride != 1 or in_c != out_c:
                extra = out_c - in_c
                pad = [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]
                x = layers.Lambda(lambda t, p=pad, s=stride: tf.pad(t[:, ::s, ::s, :], p))(x)
            x = layers.ReLU()(layers.Add()([y, x]))
            in_c = out_c
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(num_classes)(x))


def hand_loop(x_nchw, y, mode: str, exec_mode: str):
    model = keras_resnet20()
    opt = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    xt = tf.constant(x_nchw.transpose(0, 2, 3, 1).copy())
    yt = tf.constant(y)

    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def infer_step(x):
        return model(x, training=False)

    if exec_mode != "eager":
        train_step = tf.function(train_step, jit_compile=exec_mode == "xla")
        infer_step = tf.function(infer_step, jit_compile=exec_mode == "xla")

    def time_steps(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            out = train_step(xt, yt) if mode == "train" else infer_step(xt)
        out.numpy()
        return time.perf_counter() - t0

    return time_steps


def main() -> None:
    args = parse_args(__doc__.split("\n")[0], ("graph", "xla", "eager"))
    _, x, y, suite = resnet20_suite(ADAPTER, args.mode, args.exec_mode, args.batch,
                                    args.threads)
    compare(suite, hand_loop(x, y, args.mode, args.exec_mode), args.batch, args.steps,
            args.rounds)


if __name__ == "__main__":
    main()

"""Padding decisions every adapter shares, written once and free of any framework.

The spec pads explicitly, as (top, bottom, left, right), and max-pools pad with -inf.
Frameworks' convolutions and pools take only symmetric (h, w) padding, so each adapter asks
here what the native op can take and what must be padded explicitly before it; the thin
wrapper that does the explicit pad stays in the adapter, in its framework's own ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Pad = tuple[int, int, int, int]  # (top, bottom, left, right), as the spec writes it


@dataclass(frozen=True)
class Padding:
    """How to pad one conv or pool: `native` goes into the op, `explicit` (if any) before it."""

    native: tuple[int, int]  # symmetric (h, w) padding the op takes itself
    explicit: Pad | None  # padding to apply before the op, or None


def symmetric(pad: Pad) -> bool:
    return pad[0] == pad[1] and pad[2] == pad[3]


def for_conv(pad: Pad) -> Padding:
    """Symmetric padding goes into the convolution (one oneDNN/cuDNN op), the rest before it."""
    if symmetric(pad):
        return Padding((pad[0], pad[2]), None)
    return Padding((0, 0), pad)


def for_maxpool(pad: Pad, kernel: tuple[int, int]) -> Padding:
    """Native max-pools pad with -inf as the spec says, but only symmetrically and by at most
    half the window (PyTorch refuses more; MXNet and oneDNN follow the same rule)."""
    if symmetric(pad) and pad[0] <= kernel[0] // 2 and pad[2] <= kernel[1] // 2:
        return Padding((pad[0], pad[2]), None)
    return Padding((0, 0), pad)


def pairs(pad: Pad) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)): the (low, high) pairs of XLA and NumPy."""
    pt, pb, pl, pr = pad
    return ((pt, pb), (pl, pr))


def same_pads(hw: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]) -> Pad:
    """What TensorFlow's 'SAME' pads for this input size: (total // 2, rest) per axis, which is
    asymmetric at stride 2 on even inputs."""
    out: list[int] = []
    for size, k, s in zip(hw, kernel, stride, strict=True):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        out += [total // 2, total - total // 2]
    return (out[0], out[1], out[2], out[3])


def ceil_mode_pad(pad: Pad, kernel: tuple[int, int], stride: tuple[int, int],
                  hw: tuple[int, ...]) -> tuple[int, int] | None:
    """The symmetric pool padding for which the "full" (ceil) output convention gives the
    spec's windows, or None. Windows start at i*stride - pad and are clipped to the input,
    which is what -inf padding does, so only the window count must agree (extra padding only
    at the bottom/right, as in TF-style pools)."""
    pt, pb, pl, pr = pad
    out = []
    for size, k, s, p0, p1 in ((hw[0], kernel[0], stride[0], pt, pb),
                               (hw[1], kernel[1], stride[1], pl, pr)):
        if p0 > p1 or 2 * p0 > k:
            return None
        want = (size + p0 + p1 - k) // s + 1
        if math.ceil((size + 2 * p0 - k) / s) + 1 != want:
            return None
        out.append(p0)
    return out[0], out[1]

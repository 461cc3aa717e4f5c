"""Framework-neutral workload specs: a small declarative layer graph.

A spec is written once and every adapter translates it, so "the same network in four
frameworks" is true by construction and checked by the NumPy oracle (`reference.py`).

Conventions every adapter must follow (the README repeats them):

* Activations are NCHW in the spec. An adapter may use NHWC inside, but `flatten` is
  defined in C-major (C, H, W) order, so an NHWC adapter must transpose before it flattens.
* Padding is always explicit, as (top, bottom, left, right). Frameworks' "same" padding is
  asymmetric at stride 2 in TensorFlow and symmetric in PyTorch, so it is never used.
* Max-pool padding is -inf; average pooling takes no padding.
* Batch norm carries its own `eps` and `momentum`; `momentum` is the weight of the *new*
  batch statistic (PyTorch's convention). Keras' momentum is `1 - momentum`.
* LRN uses TensorFlow's definition: x / (bias + alpha * sum_{|d|<=depth_radius} x_d^2)^beta.
  PyTorch's `LocalResponseNorm(size=2r+1, alpha=alpha*size, beta, k=bias)` is the same.
* Canonical weights: conv OIHW (I = in_channels / groups), dense (out, in), batch norm
  `weight` (gamma), `bias` (beta), `running_mean`, `running_var`. Keys are "layer/param".

Only numpy may be imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

OPS = (
    "conv2d",
    "batchnorm",
    "relu",
    "relu6",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "lrn",
    "flatten",
    "dense",
    "dropout",
    "add",
    "pad_channels",
)


class SpecError(ValueError):
    """A workload spec is not well formed."""


@dataclass(frozen=True)
class Layer:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParamInfo:
    key: str  # "layer/param"
    shape: tuple[int, ...]
    trainable: bool  # running statistics are buffers, not parameters


@dataclass(frozen=True)
class Step:
    """One layer of a spec's schedule: run `layer` on `inputs`, then drop `free`."""

    layer: Layer
    inputs: tuple[str, ...]
    free: tuple[str, ...]  # activations no later layer reads (never the spec's output)


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    description: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    layers: tuple[Layer, ...]
    default_batch: int
    published_params: int
    published_macs: float | None  # multiply-adds per image from the literature, if any
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        shapes = self.shapes()  # validates the graph
        out = shapes[self.layers[-1].name]
        if out != (self.num_classes,):
            raise SpecError(f"{self.name}: output shape {out} != ({self.num_classes},)")

    @property
    def output(self) -> str:
        return self.layers[-1].name

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def consumers(self) -> dict[str, int]:
        """How many layers read each output; lets executors free activations early."""
        count: dict[str, int] = {}
        for layer in self.layers:
            for src in layer.inputs:
                count[src] = count.get(src, 0) + 1
        return count

    def schedule(self) -> tuple[Step, ...]:
        """The layers in execution order, each with the activations that may be freed after
        it (the last read of each), so every executor keeps only what is still needed."""
        return self._schedule

    @cached_property
    def _schedule(self) -> tuple[Step, ...]:
        # cached_property writes the instance __dict__ directly, so it works on a frozen
        # dataclass; the spec's fields (and so its equality) are unchanged.
        remaining = self.consumers()
        steps = []
        for layer in self.layers:
            free = []
            for s in layer.inputs:
                remaining[s] -= 1
                if remaining[s] == 0:
                    free.append(s)
            steps.append(Step(layer, layer.inputs, tuple(free)))
        return tuple(steps)

    # ----------------------------------------------------------------- shapes
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-image output shape of every layer (and of "input")."""
        shapes: dict[str, tuple[int, ...]] = {"input": tuple(self.input_shape)}
        for layer in self.layers:
            if layer.name in shapes:
                raise SpecError(f"{self.name}: duplicate layer name {layer.name!r}")
            if layer.op not in OPS:
                raise SpecError(f"{self.name}: unknown op {layer.op!r} in {layer.name!r}")
            missing = [s for s in layer.inputs if s not in shapes]
            if missing:
                raise SpecError(f"{self.name}: {layer.name!r} reads undefined {missing}")
            ins = [shapes[s] for s in layer.inputs]
            shapes[layer.name] = _infer_shape(layer, ins)
        return shapes

    # ------------------------------------------------------------- parameters
    def param_infos(self) -> Iterator[ParamInfo]:
        shapes = self.shapes()
        for layer in self.layers:
            a = layer.attrs
            if layer.op == "conv2d":
                cin = shapes[layer.inputs[0]][0]
                kh, kw = a["kernel"]
                yield ParamInfo(
                    f"{layer.name}/weight", (a["out_channels"], cin // a["groups"], kh, kw), True
                )
                if a["bias"]:
                    yield ParamInfo(f"{layer.name}/bias", (a["out_channels"],), True)
            elif layer.op == "dense":
                fin = shapes[layer.inputs[0]][0]
                yield ParamInfo(f"{layer.name}/weight", (a["out_features"], fin), True)
                if a["bias"]:
                    yield ParamInfo(f"{layer.name}/bias", (a["out_features"],), True)
            elif layer.op == "batchnorm":
                c = shapes[layer.inputs[0]][0]
                yield ParamInfo(f"{layer.name}/weight", (c,), True)
                yield ParamInfo(f"{layer.name}/bias", (c,), True)
                yield ParamInfo(f"{layer.name}/running_mean", (c,), False)
                yield ParamInfo(f"{layer.name}/running_var", (c,), False)

    @property
    def params(self) -> int:
        """Trainable parameters, counted analytically from the graph."""
        total = 0
        for p in self.param_infos():
            if p.trainable:
                n = 1
                for d in p.shape:
                    n *= d
                total += n
        return total

    @property
    def macs_per_image(self) -> int:
        """Multiply-adds of conv and dense layers for one image (forward)."""
        shapes = self.shapes()
        macs = 0
        for layer in self.layers:
            a = layer.attrs
            out = shapes[layer.name]
            if layer.op == "conv2d":
                cin = shapes[layer.inputs[0]][0]
                kh, kw = a["kernel"]
                macs += out[0] * out[1] * out[2] * (cin // a["groups"]) * kh * kw
            elif layer.op == "dense":
                macs += shapes[layer.inputs[0]][0] * out[0]
        return macs

    @property
    def flops_per_image(self) -> int:
        """Forward FLOPs per image: multiply-adds x 2 (conv and dense layers only)."""
        return 2 * self.macs_per_image

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "params": self.params,
            "flops_per_image": self.flops_per_image,
            "macs_per_image": self.macs_per_image,
            "published_params": self.published_params,
            "published_macs": self.published_macs,
            "default_batch": self.default_batch,
            "layers": len(self.layers),
            "tags": list(self.tags),
        }


def _conv_out(size: int, k: int, s: int, p0: int, p1: int) -> int:
    out = (size + p0 + p1 - k) // s + 1
    if out <= 0:
        raise SpecError(f"window {k} stride {s} does not fit input {size} padded ({p0},{p1})")
    return out


def _infer_shape(layer: Layer, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    op, a = layer.op, layer.attrs
    want_inputs = 2 if op == "add" else 1
    if len(ins) != want_inputs:
        raise SpecError(f"{layer.name}: {op} takes {want_inputs} input(s), got {len(ins)}")
    x = ins[0]
    spatial_ops = ("conv2d", "batchnorm", "maxpool", "avgpool", "lrn", "global_avgpool",
                   "flatten", "pad_channels")
    if op in spatial_ops and len(x) != 3:
        if not (op == "batchnorm" and len(x) == 1):
            raise SpecError(f"{layer.name}: {op} needs a (C, H, W) input, got {x}")
    if op in ("conv2d", "maxpool", "avgpool"):
        kh, kw = a["kernel"]
        sh, sw = a["stride"]
        pt, pb, pl, pr = a["padding"]
        oh, ow = _conv_out(x[1], kh, sh, pt, pb), _conv_out(x[2], kw, sw, pl, pr)
        if op == "conv2d":
            g = a["groups"]
            if x[0] % g or a["out_channels"] % g:
                raise SpecError(f"{layer.name}: channels not divisible by groups={g}")
            return (a["out_channels"], oh, ow)
        if op == "avgpool" and any(a["padding"]):
            raise SpecError(f"{layer.name}: avgpool takes no padding (count_include_pad differs)")
        return (x[0], oh, ow)
    if op in ("batchnorm", "relu", "relu6", "lrn", "dropout"):
        return x
    if op == "global_avgpool":
        return (x[0],)
    if op == "flatten":
        return (x[0] * x[1] * x[2],)
    if op == "dense":
        if len(x) != 1:
            raise SpecError(f"{layer.name}: dense needs a flat input, got {x}")
        return (a["out_features"],)
    if op == "add":
        if ins[0] != ins[1]:
            raise SpecError(f"{layer.name}: add of mismatched shapes {ins[0]} and {ins[1]}")
        return x
    if op == "pad_channels":
        s = a["stride"]
        return (x[0] + a["before"] + a["after"], -(-x[1] // s), -(-x[2] // s))
    raise SpecError(f"{layer.name}: no shape rule for {op}")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pad4(p: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    if isinstance(p, int):
        return (p, p, p, p)
    if len(p) == 2:
        return (p[0], p[0], p[1], p[1])
    return (int(p[0]), int(p[1]), int(p[2]), int(p[3]))


class GraphBuilder:
    """Writes a layer list tersely; each method returns the new layer's name."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.last = "input"
        self._counts: dict[str, int] = {}

    def _add(self, op: str, name: str | None, inputs: tuple[str, ...] | None, **attrs: Any) -> str:
        if name is None:
            n = self._counts.get(op, 0)
            self._counts[op] = n + 1
            name = f"{op}{n}"
        self.layers.append(Layer(name, op, inputs if inputs is not None else (self.last,), attrs))
        self.last = name
        return name

    def conv(self, out_channels: int, kernel: int | tuple[int, int], stride: int = 1,
             padding: int | tuple[int, ...] = 0, groups: int = 1, bias: bool = True,
             name: str | None = None, src: str | None = None) -> str:
        return self._add("conv2d", name, (src,) if src else None, out_channels=out_channels,
                         kernel=_pair(kernel), stride=_pair(stride), padding=_pad4(padding),
                         groups=groups, bias=bias)

    def bn(self, eps: float = 1e-5, momentum: float = 0.1, name: str | None = None,
           src: str | None = None) -> str:
        return self._add("batchnorm", name, (src,) if src else None, eps=eps, momentum=momentum)

    def relu(self, name: str | None = None, src: str | None = None) -> str:
        return self._add("relu", name, (src,) if src else None)

    def relu6(self, name: str | None = None, src: str | None = None) -> str:
        return self._add("relu6", name, (src,) if src else None)

    def maxpool(self, kernel: int, stride: int, padding: int | tuple[int, ...] = 0,
                name: str | None = None) -> str:
        return self._add("maxpool", name, None, kernel=_pair(kernel), stride=_pair(stride),
                         padding=_pad4(padding))

    def avgpool(self, kernel: int, stride: int, name: str | None = None) -> str:
        return self._add("avgpool", name, None, kernel=_pair(kernel), stride=_pair(stride),
                         padding=(0, 0, 0, 0))

    def global_avgpool(self, name: str | None = None) -> str:
        return self._add("global_avgpool", name, None)

    def lrn(self, depth_radius: int, bias: float, alpha: float, beta: float,
            name: str | None = None) -> str:
        return self._add("lrn", name, None, depth_radius=depth_radius, bias=bias, alpha=alpha,
                         beta=beta)

    def flatten(self, name: str | None = None) -> str:
        return self._add("flatten", name, None)

    def dense(self, out_features: int, bias: bool = True, name: str | None = None) -> str:
        return self._add("dense", name, None, out_features=out_features, bias=bias)

    def dropout(self, rate: float, name: str | None = None) -> str:
        return self._add("dropout", name, None, rate=rate)

    def classifier(self, widths: tuple[int, ...], names: tuple[str, ...],
                   dropout: float = 0.0) -> str:
        """Flatten, then dense layers with a ReLU (and dropout, if given) between each two;
        the last one gives the logits."""
        self.flatten()
        for i, (width, name) in enumerate(zip(widths, names, strict=True)):
            if i:
                self.relu()
                if dropout:
                    self.dropout(dropout)
            self.dense(width, name=name)
        return self.last

    def add(self, a: str, b: str, name: str | None = None) -> str:
        return self._add("add", name, (a, b))

    def pad_channels(self, stride: int, before: int, after: int, src: str,
                     name: str | None = None) -> str:
        return self._add("pad_channels", name, (src,), stride=stride, before=before, after=after)

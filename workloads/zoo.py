"""The six standard workloads, each written once as a spec.

Published parameter and multiply-add counts are what `tests/test_workloads.py` checks the
analytic counts against; the sources are given per workload.
"""

from __future__ import annotations

from typing import Any

from .registry import register_workload
from .spec import GraphBuilder, WorkloadSpec


@register_workload
def lenet5() -> WorkloadSpec:
    """LeNet-5 for 28x28 MNIST: the first conv pads 2 so the net sees 32x32 as in LeCun 1998.

    ReLU and max-pooling replace tanh and subsampling, as in every modern rendition.
    """
    g = GraphBuilder()
    g.conv(6, 5, padding=2, name="conv1")
    g.relu()
    g.maxpool(2, 2)
    g.conv(16, 5, name="conv2")
    g.relu()
    g.maxpool(2, 2)
    g.classifier((120, 84, 10), ("fc1", "fc2", "fc3"))
    return WorkloadSpec("lenet5", "LeNet-5 (MNIST, 28x28 padded to 32 by conv1)", (1, 28, 28), 10,
                        tuple(g.layers), default_batch=64, published_params=61_706,
                        published_macs=None, tags=("small", "mnist"))


@register_workload
def cifar10_tutorial() -> WorkloadSpec:
    """The classic TensorFlow CIFAR-10 tutorial CNN (tensorflow/models tutorials/image/cifar10).

    Its convs and pools use TF 'SAME' padding: 5x5 stride 1 pads 2 on each side, and the
    3x3/2 max-pools on even inputs pad 0 before and 1 after. LRN: depth_radius=4, bias=1,
    alpha=0.001/9, beta=0.75.
    """
    g = GraphBuilder()
    lrn: dict[str, Any] = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
    g.conv(64, 5, padding=2, name="conv1")
    g.relu()
    g.maxpool(3, 2, padding=(0, 1, 0, 1), name="pool1")
    g.lrn(**lrn, name="norm1")
    g.conv(64, 5, padding=2, name="conv2")
    g.relu()
    g.lrn(**lrn, name="norm2")
    g.maxpool(3, 2, padding=(0, 1, 0, 1), name="pool2")
    g.classifier((384, 192, 10), ("local3", "local4", "softmax_linear"))
    return WorkloadSpec("cifar10_tutorial", "TensorFlow CIFAR-10 tutorial CNN (24x24 crops)",
                        (3, 24, 24), 10, tuple(g.layers), default_batch=128,
                        published_params=1_068_298, published_macs=None,
                        tags=("small", "cifar10"))


@register_workload
def resnet20() -> WorkloadSpec:
    """ResNet-20 for CIFAR-10 (He et al. 2016, section 4.2) with option-A shortcuts:
    identity, or stride-2 subsampling plus zero-padded channels. 0.27M parameters."""
    g = GraphBuilder()
    g.conv(16, 3, padding=1, bias=False, name="conv1")
    g.bn(name="bn1")
    x = g.relu(name="relu1")
    in_c = 16
    for stage, out_c in enumerate((16, 32, 64), start=1):
        for block in range(3):
            stride = 2 if stage > 1 and block == 0 else 1
            p = f"layer{stage}.{block}"
            g.conv(out_c, 3, stride=stride, padding=1, bias=False, name=f"{p}.conv1", src=x)
            g.bn(name=f"{p}.bn1")
            g.relu(name=f"{p}.relu1")
            g.conv(out_c, 3, padding=1, bias=False, name=f"{p}.conv2")
            y = g.bn(name=f"{p}.bn2")
            if stride != 1 or in_c != out_c:
                extra = out_c - in_c
                x = g.pad_channels(stride, extra // 2, extra - extra // 2, src=x,
                                   name=f"{p}.shortcut")
            x = g.relu(name=f"{p}.relu2", src=g.add(y, x, name=f"{p}.add"))
            in_c = out_c
    g.global_avgpool(name="avgpool")
    g.dense(10, name="fc")
    return WorkloadSpec("resnet20", "ResNet-20 (CIFAR-10, option-A shortcuts)", (3, 32, 32), 10,
                        tuple(g.layers), default_batch=128, published_params=269_722,
                        published_macs=None, tags=("small", "cifar10", "residual"))


@register_workload
def resnet50() -> WorkloadSpec:
    """ResNet-50 v1.5 (torchvision's layout: the stride sits in the 3x3 conv of a bottleneck).
    25,557,032 parameters and 4.09 G multiply-adds at 224x224."""
    g = GraphBuilder()
    g.conv(64, 7, stride=2, padding=3, bias=False, name="conv1")
    g.bn(name="bn1")
    g.relu(name="relu")
    x = g.maxpool(3, 2, padding=1, name="maxpool")
    in_c = 64
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            out_c = width * 4
            p = f"layer{stage}.{block}"
            g.conv(width, 1, bias=False, name=f"{p}.conv1", src=x)
            g.bn(name=f"{p}.bn1")
            g.relu(name=f"{p}.relu1")
            g.conv(width, 3, stride=stride, padding=1, bias=False, name=f"{p}.conv2")
            g.bn(name=f"{p}.bn2")
            g.relu(name=f"{p}.relu2")
            g.conv(out_c, 1, bias=False, name=f"{p}.conv3")
            y = g.bn(name=f"{p}.bn3")
            if stride != 1 or in_c != out_c:
                g.conv(out_c, 1, stride=stride, bias=False, name=f"{p}.downsample.0", src=x)
                x = g.bn(name=f"{p}.downsample.1")
            in_c = out_c
            x = g.relu(name=f"{p}.relu3", src=g.add(y, x, name=f"{p}.add"))
    g.global_avgpool(name="avgpool")
    g.dense(1000, name="fc")
    return WorkloadSpec("resnet50", "ResNet-50 v1.5 (ImageNet)", (3, 224, 224), 1000,
                        tuple(g.layers), default_batch=32, published_params=25_557_032,
                        published_macs=4.09e9, tags=("imagenet", "residual"))


@register_workload
def vgg16() -> WorkloadSpec:
    """VGG-16 (configuration D, no batch norm): 138,357,544 parameters, 15.5 G multiply-adds."""
    g = GraphBuilder()
    cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
           512, 512, 512, "M")
    i = 0
    for v in cfg:
        if v == "M":
            g.maxpool(2, 2)
        else:
            g.conv(int(v), 3, padding=1, name=f"features.conv{i}")
            g.relu()
            i += 1
    g.classifier((4096, 4096, 1000), ("classifier.0", "classifier.3", "classifier.6"),
                 dropout=0.5)
    return WorkloadSpec("vgg16", "VGG-16 (ImageNet, configuration D)", (3, 224, 224), 1000,
                        tuple(g.layers), default_batch=16, published_params=138_357_544,
                        published_macs=15.5e9, tags=("imagenet",))


@register_workload
def mobilenet_v2() -> WorkloadSpec:
    """MobileNetV2 1.0 (Sandler et al. 2018; torchvision's layout): 3,504,872 parameters and
    0.30 G multiply-adds at 224x224. Depthwise convs are grouped convs with groups=channels."""
    g = GraphBuilder()
    g.conv(32, 3, stride=2, padding=1, bias=False, name="features.0.conv")
    g.bn(name="features.0.bn")
    x = g.relu6(name="features.0.relu")
    in_c = 32
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))
    idx = 1
    for t, c, n, s in settings:
        for k in range(n):
            stride = s if k == 0 else 1
            p = f"features.{idx}"
            hidden = in_c * t
            y = x
            if t != 1:
                g.conv(hidden, 1, bias=False, name=f"{p}.expand", src=y)
                g.bn(name=f"{p}.expand_bn")
                y = g.relu6(name=f"{p}.expand_relu")
            g.conv(hidden, 3, stride=stride, padding=1, groups=hidden, bias=False,
                   name=f"{p}.dw", src=y)
            g.bn(name=f"{p}.dw_bn")
            g.relu6(name=f"{p}.dw_relu")
            g.conv(c, 1, bias=False, name=f"{p}.project")
            y = g.bn(name=f"{p}.project_bn")
            if stride == 1 and in_c == c:
                y = g.add(y, x, name=f"{p}.add")
            x = y
            in_c = c
            idx += 1
    g.conv(1280, 1, bias=False, name="features.18.conv", src=x)
    g.bn(name="features.18.bn")
    g.relu6(name="features.18.relu")
    g.global_avgpool(name="avgpool")
    g.dropout(0.2, name="classifier.0")
    g.dense(1000, name="classifier.1")
    return WorkloadSpec("mobilenet_v2", "MobileNetV2 1.0 (ImageNet)", (3, 224, 224), 1000,
                        tuple(g.layers), default_batch=32, published_params=3_504_872,
                        published_macs=0.30e9, tags=("imagenet", "residual", "depthwise"))

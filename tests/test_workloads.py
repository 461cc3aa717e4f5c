"""Workload specs: exact parameter counts, FLOPs near the published multiply-adds, registry."""

from __future__ import annotations

import pytest

from workloads import (
    GraphBuilder,
    SpecError,
    UnknownWorkload,
    WorkloadSpec,
    get_workload,
    list_workloads,
)

TABLE = {
    "lenet5": ((1, 28, 28), 10, 61_706),
    "cifar10_tutorial": ((3, 24, 24), 10, 1_068_298),
    "resnet20": ((3, 32, 32), 10, 269_722),
    "resnet50": ((3, 224, 224), 1000, 25_557_032),
    "vgg16": ((3, 224, 224), 1000, 138_357_544),
    "mobilenet_v2": ((3, 224, 224), 1000, 3_504_872),
}
PUBLISHED_MACS = {"resnet50": 4.09e9, "vgg16": 15.5e9, "mobilenet_v2": 0.30e9}


def test_registry_lists_the_six_in_order() -> None:
    assert list_workloads() == list(TABLE)


@pytest.mark.parametrize("name", list(TABLE))
def test_shape_classes_and_exact_params(name: str) -> None:
    spec = get_workload(name)
    shape, classes, params = TABLE[name]
    assert spec.input_shape == shape
    assert spec.num_classes == classes
    assert spec.params == params == spec.published_params


@pytest.mark.parametrize("name", list(PUBLISHED_MACS))
def test_flops_within_one_percent_of_published_macs(name: str) -> None:
    spec = get_workload(name)
    assert spec.flops_per_image == 2 * spec.macs_per_image
    assert abs(spec.macs_per_image / PUBLISHED_MACS[name] - 1) < 0.01


def test_small_workload_flops_by_hand() -> None:
    # LeNet-5: conv1 28*28*6*25, conv2 10*10*16*150, fc 400*120 + 120*84 + 84*10.
    macs = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert get_workload("lenet5").macs_per_image == macs


def test_filters() -> None:
    assert list_workloads("resnet*") == ["resnet20", "resnet50"]
    assert set(list_workloads(tag="small")) == {"lenet5", "cifar10_tutorial", "resnet20"}
    assert list_workloads("nothing*") == []


def test_unknown_workload_message() -> None:
    with pytest.raises(UnknownWorkload, match="unknown workload 'resnet18'"):
        get_workload("resnet18")


def test_spec_validation_rejects_bad_graphs() -> None:
    g = GraphBuilder()
    g.conv(4, 3, padding=1)
    g.add("conv2d0", "input")  # 4 channels + 1 channel
    with pytest.raises(SpecError, match="mismatched"):
        WorkloadSpec("bad", "", (1, 8, 8), 10, tuple(g.layers), 1, 0, None)
    g = GraphBuilder()
    g.conv(4, 9)  # 9x9 window on 8x8 input
    with pytest.raises(SpecError, match="does not fit"):
        WorkloadSpec("bad", "", (1, 8, 8), 10, tuple(g.layers), 1, 0, None)
    g = GraphBuilder()
    g.flatten()
    g.dense(3)
    with pytest.raises(SpecError, match="output shape"):
        WorkloadSpec("bad", "", (1, 8, 8), 10, tuple(g.layers), 1, 0, None)


def test_explicit_padding_and_bn_conventions_are_recorded() -> None:
    spec = get_workload("cifar10_tutorial")
    pool = spec.layer("pool1")
    assert pool.attrs["padding"] == (0, 1, 0, 1)  # TF 'SAME' at stride 2: pad after only
    bn = get_workload("resnet50").layer("bn1")
    assert bn.attrs == {"eps": 1e-5, "momentum": 0.1}

from __future__ import annotations

import pytest

from adapters import UnknownAdapter
from cnnbench.plan import PlanError, expand, normalize_device
from workloads import UnknownWorkload, get_workload


def test_expansion_is_the_full_product() -> None:
    cells = expand(["null"], ["lenet5", "resnet20"], modes=["train", "infer"],
                   batch_sizes=[8, 16], precisions=["fp32", "bf16"], exec_modes=["eager"],
                   devices=["cpu"], variants=["default"], threads=[1, 2])
    assert len(cells) == 2 * 2 * 2 * 2 * 2
    assert len({c.cell_id for c in cells}) == len(cells)


def test_default_batch_and_exec_mode_come_from_workload_and_adapter() -> None:
    cells = expand(["null"], ["lenet5", "resnet50"])
    assert {c.batch_size for c in cells if c.workload == "lenet5"} == {
        get_workload("lenet5").default_batch}
    assert {c.exec_mode for c in cells} == {"eager"}
    assert {c.mode for c in cells} == {"train", "infer"}


def test_cell_ids_are_stable_and_readable() -> None:
    a = expand(["null"], ["lenet5"], batch_sizes=[4])[0]
    b = expand(["null"], ["lenet5"], batch_sizes=[4])[0]
    assert a.cell_id == b.cell_id
    assert a.cell_id.startswith("null-default-cpu-lenet5-train-b4-fp32-eager")


def test_devices_are_normalized() -> None:
    assert normalize_device("cuda:1") == "gpu:1"
    assert normalize_device("GPU") == "gpu:0"
    assert normalize_device("gpu:0,1") == "gpu:0,1"
    cell = expand(["null"], ["lenet5"], devices=["gpu:0,1"])[0]
    assert cell.n_devices == 2
    with pytest.raises(PlanError, match="bad device"):
        normalize_device("tpu:0")


@pytest.mark.parametrize("kwargs, error", [
    ({"frameworks": ["caffe"]}, UnknownAdapter),
    ({"workloads": ["alexnet"]}, UnknownWorkload),
    ({"modes": ["eval"]}, PlanError),
    ({"batch_sizes": [0]}, PlanError),
    ({"batch_sizes": [-3]}, PlanError),
    ({"precisions": ["int8"]}, PlanError),
    ({"exec_modes": ["turbo"]}, PlanError),
    ({"threads": [0]}, PlanError),
])
def test_bad_input_is_refused(kwargs, error) -> None:
    args = {"frameworks": ["null"], "workloads": ["lenet5"]}
    args.update(kwargs)
    with pytest.raises(error):
        expand(**args)

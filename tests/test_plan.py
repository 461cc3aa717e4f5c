from __future__ import annotations

import pytest

from adapters import UnknownAdapter
from cnnbench.core.cells import PlanError, normalize_device
from cnnbench.plan.expand import expand
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
    assert normalize_device("gpu:1+0") == "gpu:0+1"
    assert normalize_device("cuda:0+1") == "gpu:0+1"
    assert normalize_device("gpu:0,1") == "gpu:0+1"  # the Python API's old spelling
    assert normalize_device("gpu:3+3") == "gpu:3"
    assert normalize_device("cpu*2") == "cpu*2"
    assert normalize_device("CPU*1") == "cpu"
    assert normalize_device("gpu:all") == "gpu:all"
    for bad in ("tpu:0", "1", "cpu*0", "cpu*", "gpu:0+", "gpu:a", "cpu:2"):
        with pytest.raises(PlanError, match="bad device"):
            normalize_device(bad)


def test_device_sets_count_and_label_their_devices() -> None:
    cells = {c.device: c for c in expand(["null"], ["lenet5"], modes=["train"], batch_sizes=[8],
                                         devices=["cpu", "cpu*2", "gpu:0+1", "gpu:all"])}
    assert {d: c.n_devices for d, c in cells.items()} == {
        "cpu": 1, "cpu*2": 2, "gpu:0+1": 2, "gpu:all": 0}
    assert cells["cpu*2"].simulated and not cells["gpu:0+1"].simulated
    assert len({c.cell_id for c in cells.values()}) == 4
    # gpu:all is the machine's GPUs when the plan knows them
    got = expand(["null"], ["lenet5"], modes=["train"], devices=["gpu:all"], gpu_count=3)
    assert got[0].device == "gpu:0+1+2" and got[0].n_devices == 3


def test_weak_scaling_keeps_the_per_device_batch_and_strong_the_global_batch() -> None:
    cells = expand(["null"], ["lenet5"], modes=["train"], batch_sizes=[16],
                   devices=["cpu", "cpu*2"], scalings=["weak", "strong"])
    got = {(c.device, c.scaling): (c.batch_size, c.per_device_batch) for c in cells}
    assert got == {("cpu", None): (16, 16), ("cpu*2", "weak"): (32, 16),
                   ("cpu*2", "strong"): (16, 8)}
    # one-device cells keep the ids they had before device sets existed
    one = expand(["null"], ["lenet5"], modes=["train"], batch_sizes=[16])[0]
    assert one.cell_id == next(c for c in cells if c.device == "cpu").cell_id
    with pytest.raises(PlanError, match="unknown scaling"):
        expand(["null"], ["lenet5"], scalings=["gustafson"])


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

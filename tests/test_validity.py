"""Peak, MFU and plausibility flags; repeats and their spread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.plan.expand import expand
from cnnbench.plan.probes import probe_cells
from cnnbench.sweep.validity import Validity

ROOT = Path(__file__).resolve().parent.parent


def probe_row(gflops_best: float, **kw):
    n = 1024
    flops = 2 * n**3
    row = {"machine_id": "m", "device": "cpu", "threads": 2, "precision": "fp32", "mode": "peak",
           "status": "ok", "flops_per_image": flops,
           "samples_s": [flops / (gflops_best * 1e9), 2 * flops / (gflops_best * 1e9)]}
    row.update(kw)
    return row


def cell_row(ips: float, batch: int = 32, mode: str = "infer", **kw):
    row = {"machine_id": "m", "device": "cpu", "threads": 2, "precision": "fp32", "mode": mode,
           "status": "ok", "framework": "pytorch", "variant": "default", "workload": "w",
           "exec_mode": "eager", "batch_size": batch, "flops_per_image": 1e9,
           "images_per_s": ips, "ci95_low": ips * 0.98, "ci95_high": ips * 1.02, "flags": []}
    row.update(kw)
    return row


def test_peak_is_the_best_round_of_the_best_probe() -> None:
    v = Validity()
    v.add_probe(probe_row(50))
    v.add_probe(probe_row(80))
    v.add_probe(probe_row(200, status="error"))
    assert v.peaks[("m", "cpu", 2, "fp32")] == pytest.approx(80e9)


def test_mfu_counts_train_as_three_forwards() -> None:
    v = Validity()
    v.add_probe(probe_row(100))
    infer, train = cell_row(10), cell_row(10, mode="train")
    v.annotate(infer)
    v.annotate(train)
    assert infer["achieved_flops_per_s"] == pytest.approx(10e9)
    assert infer["mfu"] == pytest.approx(0.1)
    assert train["mfu"] == pytest.approx(0.3)
    assert infer["flags"] == [] and train["flags"] == []


def test_above_peak_and_missing_peak_are_flagged() -> None:
    v = Validity()
    v.add_probe(probe_row(100))
    fast = cell_row(150)
    v.annotate(fast)
    assert "above_peak" in fast["flags"] and fast["mfu"] > 1
    other = cell_row(1, precision="bf16")
    v.annotate(other)
    assert "no_peak" in other["flags"] and other["mfu"] is None


def test_time_that_shrinks_with_batch_is_flagged_either_order() -> None:
    v = Validity()
    v.add_probe(probe_row(1000))
    small, big = cell_row(100, batch=8), cell_row(1000, batch=64)  # 80 ms vs 64 ms per step
    v.annotate(small)
    v.annotate(big)
    assert "time_not_growing" in big["flags"] and "time_not_growing" not in small["flags"]
    v2 = Validity()
    v2.add_probe(probe_row(1000))
    big2, small2 = cell_row(1000, batch=64), cell_row(100, batch=8)
    v2.annotate(big2)
    v2.annotate(small2)
    assert "time_not_growing" in small2["flags"]
    ok = Validity()
    a, b = cell_row(100, batch=8), cell_row(150, batch=16)  # 80 ms -> 107 ms: grows
    ok.annotate(a)
    ok.annotate(b)
    assert "time_not_growing" not in b["flags"]


def test_cells_that_differ_only_in_adapter_options_are_not_compared() -> None:
    """NCHW at batch 8 and NHWC at batch 64 are two cells, not one that failed to grow."""
    v = Validity()
    v.annotate(cell_row(100, batch=8, options={"memory_format": "contiguous"}))
    nhwc = cell_row(1000, batch=64, options={"memory_format": "channels_last"})
    v.annotate(nhwc)
    assert "time_not_growing" not in nhwc["flags"]
    same = cell_row(1000, batch=64, options={"memory_format": "contiguous"})
    v.annotate(same)
    assert "time_not_growing" in same["flags"]


def test_one_probe_per_framework_device_threads_precision() -> None:
    cells = expand(["null"], ["lenet5", "resnet20"], precisions=["fp32", "bf16"], threads=[1, 2])
    probes = probe_cells(cells)
    assert len(probes) == 4
    assert {p.mode for p in probes} == {"peak"} and {p.batch_size for p in probes} == {1024}


def test_repeat_runs_each_cell_in_fresh_processes_and_report_shows_spread(tmp_path: Path) -> None:
    res, html = tmp_path / "results", tmp_path / "index.html"
    r = subprocess.run(
        [sys.executable, "-m", "cnnbench", "run", "--frameworks", "null", "--workloads", "lenet5",
         "--modes", "infer", "--batch-sizes", "4", "--budget", "0.2", "--repeat", "3",
         "--adapter-opt", "step_s=0.0005", "--results-dir", str(res), "--machine-id", "m",
         "--run-id", "rep", "--no-progress", "--report", str(html)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (res / "m" / "rep.jsonl").read_text().splitlines()]
    cells = [x for x in rows if x["mode"] != "peak"]
    assert [x["repeat"] for x in cells] == [0, 1, 2]
    assert len({x["cell_id"] for x in cells}) == 3
    assert len({x["wall_s"] for x in cells}) == 3
    text = html.read_text()
    assert "spread %" in text and "Measured peaks" in text


def test_machine_ids_tell_apart_one_cpu_model_with_and_without_avx512() -> None:
    """Cloud VMs of one model string come in both kinds; their results must not share a
    folder. An AVX2-only machine keeps the id it had before extensions were in it."""
    from cnnbench.core.machine import machine_id

    avx2 = ["sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c"]
    rec = {"hostname": "vm", "cpu": {"model": "AMD EPYC", "logical_cores": 2, "isa": avx2},
           "memory_bytes": 23 << 30, "gpus": []}
    wide = {**rec, "cpu": {**rec["cpu"], "isa": [*avx2, "avx512f", "avx512_vnni"]}}
    old = {**rec, "cpu": {k: v for k, v in rec["cpu"].items() if k != "isa"}}
    assert machine_id(rec) == machine_id(old) == "vm-793cd1"
    assert machine_id(wide) != machine_id(rec)
    assert machine_id(wide).startswith("vm-")

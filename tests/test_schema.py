from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cnnbench.core.schema import (
    REQUIRED,
    SCHEMA_VERSION,
    SchemaError,
    append_row,
    blank_row,
    dumps_row,
    iter_rows,
    result_files,
)


def make_row(**kw):
    row = {k: None for k in REQUIRED}
    row.update(schema_version=SCHEMA_VERSION, run_id="r1", machine_id="m", cell_id="c",
               framework="null", status="ok", samples_s=[0.1, 0.2], flags=[], build={}, env={},
               options={}, images_per_s=float("nan"))
    row.update(kw)
    return row


def test_round_trip_and_pandas(tmp_path: Path) -> None:
    p = tmp_path / "m" / "r1.jsonl"
    append_row(p, make_row(cell_id="a"))
    append_row(p, make_row(cell_id="b", status="timeout", error="slow"))
    problems: list[str] = []
    rows = list(iter_rows(p, problems))
    assert [r["cell_id"] for r in rows] == ["a", "b"] and not problems
    assert rows[0]["images_per_s"] is None  # NaN is stored as null
    df = pd.read_json(p, lines=True)
    assert list(df["status"]) == ["ok", "timeout"]
    assert set(REQUIRED) <= set(df.columns)


def test_damaged_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    good = dumps_row(make_row(cell_id="a"))
    p.write_text(good + "\n{not json\n" + good.replace('"a"', '"b"') + "\n" + good[:40])
    problems: list[str] = []
    rows = list(iter_rows(p, problems))
    assert [r["cell_id"] for r in rows] == ["a", "b"]
    assert len(problems) == 2
    assert "corrupt line" in problems[0] and ":2:" in problems[0]
    assert "truncated last line" in problems[1]


def test_newer_schema_is_refused_older_is_filled(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    newer = make_row(schema_version=SCHEMA_VERSION + 1)
    older = {"schema_version": 1, "cell_id": "x", "status": "ok"}
    p.write_text(json.dumps(newer) + "\n" + json.dumps(older) + "\n")
    problems: list[str] = []
    rows = list(iter_rows(p, problems))
    assert len(rows) == 1 and rows[0]["flags"] is None
    assert "newer than this cnnbench" in problems[0]


def test_bad_rows_are_not_written() -> None:
    with pytest.raises(SchemaError):
        dumps_row({"status": "ok"})
    with pytest.raises(SchemaError):
        dumps_row(make_row(status="great"))


# ------------------------------------------------------------------- GPU facts (machine.json)


class _FakeNVML:
    """Two GPUs joined by NVLink, a binding that lacks some queries (they raise)."""

    NVML_NVLINK_MAX_LINKS = 4
    NVML_P2P_CAPS_INDEX_NVLINK = 3
    NVML_P2P_STATUS_OK = 0

    class _Mem:
        total = 80 * 2**30

    class _Pci:
        busId = b"00000000:17:00.0"

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str: return "560.35.03"
    def nvmlSystemGetCudaDriverVersion_v2(self) -> int: return 12060
    def nvmlDeviceGetCount(self) -> int: return 2
    def nvmlDeviceGetHandleByIndex(self, i: int) -> int: return i
    def nvmlDeviceGetMemoryInfo(self, h: int) -> object: return self._Mem()
    def nvmlDeviceGetName(self, h: int) -> bytes: return b"NVIDIA H100 80GB HBM3"
    def nvmlDeviceGetUUID(self, h: int) -> str: return f"GPU-{h}"
    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]: return (9, 0)
    def nvmlDeviceGetPciInfo(self, h: int) -> object: return self._Pci()
    def nvmlDeviceGetNvLinkState(self, h: int, link: int) -> int: return int(link < 2)
    def nvmlDeviceGetP2PStatus(self, a: int, b: int, cap: int) -> int: return 0

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    def nvmlDeviceGetTopologyCommonAncestor(self, a: int, b: int) -> int:
        raise AssertionError("not asked when NVLink answers")


def test_gpu_facts_from_nvml_with_missing_queries(monkeypatch) -> None:
    from cnnbench.core import machine

    monkeypatch.setattr(machine, "_smi_topology", lambda: {"0-1": "NV2"})
    rec = machine._gpus(_FakeNVML())
    assert rec["driver"] == "560.35.03" and rec["cuda_driver"] == "12.6"
    g = rec["gpus"][0]
    assert g["name"] == "NVIDIA H100 80GB HBM3" and g["memory_bytes"] == 80 * 2**30
    assert g["compute_capability"] == "9.0" and g["pci_bus_id"] == "00000000:17:00.0"
    assert g["nvlinks_active"] == 2 and g["power_limit_w"] is None
    assert rec["interconnect"] == "NVLink" and rec["gpu_pairs"] == {"0-1": "NVLink"}
    assert rec["topology_smi"] == {"0-1": "NV2"}


def test_gpu_facts_pcie_and_failures_never_raise() -> None:
    from cnnbench.core import machine

    class PCIe(_FakeNVML):
        def nvmlDeviceGetP2PStatus(self, a: int, b: int, cap: int) -> int: return 4
        def nvmlDeviceGetTopologyCommonAncestor(self, a: int, b: int) -> int: return 30

    rec = machine._gpus(PCIe())
    assert rec["interconnect"] == "PCIe" and rec["gpu_pairs"]["0-1"].startswith("PHB")

    class NoInit(_FakeNVML):
        def nvmlInit(self) -> None:
            raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    rec = machine._gpus(NoInit())
    assert rec["gpus"] == [] and "NVML unavailable" in rec["gpu_error"]

    class NoGPU(_FakeNVML):
        def nvmlDeviceGetCount(self) -> int: return 0

    rec = machine._gpus(NoGPU())
    assert rec["gpus"] == [] and rec["gpu_error"] == "NVML lists no GPU"


def test_topo_matrix_is_parsed() -> None:
    from cnnbench.core.machine import parse_topo_matrix

    text = ("\tGPU0\tGPU1\tGPU2\tCPU Affinity\tNUMA Affinity\n"
            "GPU0\t X \tNV4\tSYS\t0-31\t0\n"
            "GPU1\tNV4\t X \tPIX\t0-31\t0\n"
            "GPU2\tSYS\tPIX\t X \t32-63\t1\n")
    assert parse_topo_matrix(text) == {"0-1": "NV4", "0-2": "SYS", "1-2": "PIX"}


def test_result_files_names_each_file_once(tmp_path: Path) -> None:
    f = tmp_path / "res" / "m" / "r.jsonl"
    append_row(f, blank_row(run_id="r", machine_id="m", cell_id="c"))
    paths = [tmp_path / "res", f.parent, f, tmp_path / "res" / "m" / ".." / "m"]
    assert result_files(paths) == [f]
    problems: list[str] = []
    assert result_files(paths, problems=problems) == [f]
    assert len(problems) == 1 and "read once" in problems[0], problems

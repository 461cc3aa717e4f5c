"""Many distinct cells for the report's scale tests (issue 11, "The report scales").

``measured_row`` runs one real null-adapter cell through the CLI; ``write_many`` copies that
row N times as N distinct cells: the workload cycles through the registry and the batch size
grows, so every copy has its own cell key and cell_id. The raw ``samples_s`` are kept, each
scaled with the batch and a fixed per-cell factor, and every statistic derived from them is
rescaled alike, so a row stays consistent with its samples.

How many rounds the null cell times depends on how busy the machine is (8 on a quiet one,
about 80 on a loaded one), and the size of the results with it; ``rounds`` fixes it by
repeating the measured rounds whole, which keeps their median and so every statistic.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cnnbench.core.cells import Cell
from cnnbench.core.schema import dumps_row
from workloads import get_workload, list_workloads

ROOT = Path(__file__).resolve().parents[1]


def measured_row(tmp: Path, budget: float = 0.5) -> tuple[dict[str, Any], str]:
    """One ok row of the null adapter (lenet5 inference, batch 8), measured by the real CLI,
    and its machine record (machine.json's text)."""
    res = tmp / "measured"
    r = subprocess.run([sys.executable, "-m", "cnnbench", "run", "--repeat", "1",
                        "--frameworks", "null", "--workloads", "lenet5", "--modes", "infer",
                        "--batch-sizes", "8",
                        "--threads", "2", "--budget", str(budget), "--no-probe",
                        "--no-noise-check", "--no-progress", "--results-dir", str(res),
                        "--machine-id", "scale-box", "--run-id", "one"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [json.loads(x) for x in (res / "scale-box" / "one.jsonl").read_text().splitlines()]
    (ok,) = [x for x in rows if x["status"] == "ok"]
    return ok, (res / "scale-box" / "machine.json").read_text()


def copies(template: dict[str, Any], n: int, rounds: int | None = None) -> Any:
    """N rows of N distinct cells, from one measured row (a generator: O(1) memory), with
    about ``rounds`` timed rounds each (the measured ones repeated whole; None: as measured)."""
    measured = list(template["samples_s"])
    if rounds:
        measured *= max(1, rounds // len(measured))
    names = list_workloads()
    specs = {w: get_workload(w) for w in names}
    b0 = int(template["batch_size"])
    t0 = datetime.fromisoformat(template["started_at"])
    for i in range(n):
        w, batch = names[i % len(names)], 1 + i // len(names)
        # Steps take longer with the batch, and each cell differs a little from its neighbours.
        f = batch / b0 * (1.0 + 0.5 * ((i * 7919) % 101) / 100)
        row = dict(template, workload=w, batch_size=batch, params=specs[w].params,
                   flops_per_image=specs[w].flops_per_image,
                   started_at=(t0 + timedelta(seconds=i)).isoformat(timespec="seconds"))
        row["samples_s"] = [s * f for s in measured]
        row["median_step_s"] = template["median_step_s"] * f
        for k in ("images_per_s", "ci95_low", "ci95_high"):
            # images/s = batch / step time: the batch grows by batch/b0, the step by f
            row[k] = template[k] * (batch / b0) / f
        row["cell_id"] = Cell(row["framework"], row["variant"], row["device"], w, row["mode"],
                              batch, row["precision"], row["exec_mode"], row["threads"],
                              dict(row["options"] or {}), int(row["repeat"])).cell_id
        yield row


def write_many(results: Path, template: dict[str, Any], machine: str, n: int,
               rounds: int | None = None) -> Path:
    """``results/<machine>/many.jsonl`` with N distinct cells (``rounds``: see ``copies``),
    and the machine record."""
    mdir = results / str(template["machine_id"])
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "machine.json").write_text(machine)
    path = mdir / "many.jsonl"
    import orjson  # a core dependency; json.dumps would make 100,000 rows take minutes

    with open(path, "wb") as f:
        for i, row in enumerate(copies(template, n, rounds)):
            # The first row goes through the schema's own writer (which validates it); the
            # rest differ only in values, and orjson writes the same JSON.
            f.write(dumps_row(row).encode() if i == 0 else orjson.dumps(row))
            f.write(b"\n")
    return path

"""What ran: the software and variants per machine, and each device's measured GEMM peak.
Pure functions from result rows to records and DataFrames; no HTML."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cnnbench.core.keys import peak_key, probe_peak


def peaks(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The measured GEMM peak per machine, device, threads and precision (the best probe):
    ``machine``, ``device``, ``threads``, ``precision``, ``framework``, ``flops`` and the
    probe's matrix size ``n``, ordered by key."""
    probes = df[(df["status"] == "ok") & (df["mode"] == "peak")]
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in probes.to_dict("records"):
        r = {str(k): v for k, v in row.items()}
        flops = probe_peak(r)
        if flops is None:
            continue
        key = peak_key(r)
        if key not in best or flops > best[key]["flops"]:
            best[key] = {"machine": r["machine_id"], "device": r["device"],
                         "threads": r["threads"], "precision": r["precision"],
                         "framework": r["framework"], "flops": flops, "n": int(r["batch_size"])}
    return [best[k] for k in sorted(best, key=str)]


def onednn_state(build: Any) -> str:
    """'on 3.4.1', 'off', or '' where the row's build does not say."""
    if not isinstance(build, dict):
        return ""
    o = build.get("onednn")
    if isinstance(o, dict):
        return f"{'on' if o.get('enabled') else 'off'} {o.get('version') or ''}".strip()
    return ""


def software(df: pd.DataFrame) -> pd.DataFrame:
    """Per machine, framework, variant, version and Python: the ok cells, oneDNN's state and
    the median budget in seconds (``machine_id``, ..., ``cells``, ``onednn``, ``budget_s``)."""
    ok = df[df["status"] == "ok"]
    return (ok.assign(onednn=ok["build"].map(onednn_state))
            .groupby(["machine_id", "framework", "variant", "framework_version", "python"],
                     dropna=False)
            .agg(cells=("cell_id", "size"), onednn=("onednn", "first"),
                 budget_s=("budget_s", "median")).reset_index())

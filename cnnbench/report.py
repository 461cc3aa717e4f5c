"""The HTML report: pandas tables and matplotlib charts, rebuilt entirely from JSON Lines.

Self-contained (charts are embedded PNG data URIs, styles inline), and every string taken
from results goes through Jinja2's autoescaping, so a shared results file cannot inject
markup or script.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .files import write_atomic
from .prices import Price, price_for
from .schema import REQUIRED, iter_rows, result_files
from .validity import options_key, peak_key, probe_peak

# What makes two rows the same cell: everything in its cell_id except the repeat index.
# Adapter options are a dict, so they take part as their canonical JSON (options_key).
# The report's sections, in order: (HTML id, heading). Each is a <section id=...> with an <h2>;
# a section without data says so in one line, it is never left out.
SECTIONS = (
    ("summary", "Summary"),
    ("throughput", "Throughput"),
    ("speedup", "Speedup"),
    ("modes", "Execution mode and precision"),
    ("builds", "What a build for your CPU buys you"),
    ("threads", "Thread scaling"),
    ("scaling", "Data-parallel scaling"),
    ("machines", "Machines compared"),
    ("buyers", "Buyer's view"),
    ("claims", "The seeds' claims checked"),
    ("method", "Method"),
    ("not-run", "Cells that did not run"),
    ("problems", "Problems reading results"),
)
SECTION_IDS = tuple(s for s, _ in SECTIONS)

KEY = ["machine_id", "framework", "variant", "device", "workload", "mode", "batch_size",
       "precision", "exec_mode", "threads", "options_key"]


def load_results(paths: list[Path]) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, Any]]]:
    """(all rows as a DataFrame, problems met while reading, machine records by id)."""
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    machines: dict[str, dict[str, Any]] = {}
    for f in result_files(paths):
        rows.extend(iter_rows(f, problems))
        mfile = f.parent / "machine.json"
        if mfile.is_file() and str(mfile) not in machines:
            try:
                rec = json.loads(mfile.read_text(encoding="utf-8"))
                if isinstance(rec, dict):
                    machines[str(mfile)] = rec
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                problems.append(f"{mfile}: unreadable machine record ({exc})")
    df = pd.DataFrame(rows, columns=list(REQUIRED)) if rows else pd.DataFrame(columns=list(REQUIRED))
    by_id = {str(m.get("machine_id")): m for m in machines.values()}
    return df, problems, by_id


def latest_ok(df: pd.DataFrame) -> pd.DataFrame:
    """The newest ok row per cell key, with how many ok runs (repeats) that key has and the
    spread of their images/s: (max - min) / median."""
    ok = df[(df["status"] == "ok") & (df["mode"] != "peak")].copy()
    if ok.empty:
        return ok
    ok["threads"] = ok["threads"].fillna(0).astype(int)
    ok["options_key"] = ok["options"].map(options_key)
    ok = ok.sort_values("started_at")
    grouped = ok.groupby(KEY, dropna=False)["images_per_s"]
    stats = pd.DataFrame({
        "runs": grouped.size(),
        "spread": (grouped.max() - grouped.min()) / grouped.median(),
    })
    last = ok.groupby(KEY, dropna=False).tail(1).set_index(KEY)
    last = last.join(stats).reset_index()
    return last.sort_values(["machine_id", "device", "workload", "mode", "framework"])


def peaks(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The measured GEMM peak per machine, device, threads and precision (best probe)."""
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
                         "framework": r["framework"], "flops": flops,
                         "gflops": _fmt(flops / 1e9), "n": int(r["batch_size"])}
    return [best[k] for k in sorted(best, key=str)]


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _chart(ok: pd.DataFrame, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ok.assign(group=ok["workload"] + " / " + ok["mode"] + " / b"
                       + ok["batch_size"].astype(int).astype(str))
    labels = list(dict.fromkeys(groups["group"]))
    series = list(dict.fromkeys(groups["framework"] + " " + groups["precision"] + " "
                                + groups["exec_mode"] + " " + groups["variant"]))
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(labels) * max(1, len(series)) ** 0.5 + 1.5))
    height = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        sub = groups[(groups["framework"] + " " + groups["precision"] + " " + groups["exec_mode"]
                      + " " + groups["variant"]) == s]
        ys, xs, lo, hi = [], [], [], []
        for _, r in sub.iterrows():
            ys.append(labels.index(r["group"]) + i * height)
            xs.append(r["images_per_s"])
            lo.append(r["images_per_s"] - r["ci95_low"])
            hi.append(r["ci95_high"] - r["images_per_s"])
        ax.barh(ys, xs, height=height, xerr=[lo, hi], label=_short(s), capsize=2)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(labels))], [_short(x) for x in labels])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("images/s (median, 95% CI; log scale)")
    ax.set_title(_short(title, 90))
    ax.legend(fontsize="small", loc="best")
    ax.grid(axis="x", which="both", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any, spec: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return format(v, spec)


def price_performance(ok: pd.DataFrame, prices: list[Price]) -> list[dict[str, Any]]:
    """Best images/s per machine, device, workload and mode, per purchase and rental dollar."""
    out: list[dict[str, Any]] = []
    if ok.empty or not prices:
        return out
    best = ok.sort_values("images_per_s").groupby(
        ["machine_id", "device", "workload", "mode"], sort=True).tail(1)
    for _, r in best.sort_values(["workload", "mode", "images_per_s"],
                                 ascending=[True, True, False]).iterrows():
        p = price_for(str(r["machine_id"]), prices)
        if p is None:
            continue
        out.append({
            "machine": r["machine_id"], "label": p.label, "device": r["device"],
            "workload": r["workload"], "mode": r["mode"], "framework": r["framework"],
            "ips": _fmt(r["images_per_s"]),
            "per_k_usd": _fmt(r["images_per_s"] / p.price_usd * 1000) if p.price_usd else "",
            "per_usd_rent": _fmt(r["images_per_s"] * 3600 / p.hourly_usd, ".0f")
            if p.hourly_usd else "",
        })
    return out


def build_context(df: pd.DataFrame, problems: list[str], machines: dict[str, dict[str, Any]],
                  prices: list[Price] | None = None) -> dict[str, Any]:
    ok = latest_ok(df)
    table = []
    for _, r in ok.iterrows():
        table.append({
            "machine": r["machine_id"], "device": r["device"], "device_name": r["device_name"],
            "framework": r["framework"], "version": r["framework_version"],
            "variant": r["variant"], "workload": r["workload"], "mode": r["mode"],
            "batch": int(r["batch_size"]), "precision": r["precision"],
            "exec_mode": r["exec_mode"], "threads": int(r["threads"]) or "",
            "ips": _fmt(r["images_per_s"]), "lo": _fmt(r["ci95_low"]),
            "hi": _fmt(r["ci95_high"]), "rel_ci": _fmt(100 * (r["rel_ci"] or 0), ".1f"),
            "flags": ", ".join(r["flags"] or []), "runs": int(r["runs"]),
            "spread": _fmt(100 * r["spread"], ".1f") if r["runs"] > 1 else "",
            "mfu": _fmt(100 * r["mfu"], ".1f") if r.get("mfu") is not None else "",
            "first_step": _fmt(r["first_step_s"], ".2f"),
        })
    charts = []
    for (mid, dev), sub in ok.groupby(["machine_id", "device"], sort=True):
        charts.append({"title": f"{mid} {dev}", "uri": _chart(sub, f"Throughput on {mid}, {dev}")})
    failed = df[df["status"] != "ok"].sort_values("started_at", na_position="last")
    failures = [{k: ("" if r[k] is None else r[k]) for k in
                 ("run_id", "framework", "variant", "device", "workload", "mode", "batch_size",
                  "precision", "exec_mode", "status", "error")} for _, r in failed.iterrows()]
    machine_rows = []
    for mid, m in sorted(machines.items()):
        cpu = m.get("cpu") or {}
        machine_rows.append({
            "id": mid, "cpu": cpu.get("model"), "cores": cpu.get("logical_cores"),
            "isa": " ".join(cpu.get("isa") or []),
            "memory": _fmt((m.get("memory_bytes") or 0) / 2**30, ".1f"),
            "gpus": ", ".join(str(g.get("name")) for g in m.get("gpus") or []) or "none",
            "driver": m.get("driver") or "", "os": m.get("os"), "python": m.get("python"),
        })
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_rows": len(df), "n_ok": int((df["status"] == "ok").sum()) if len(df) else 0,
        "runs": sorted(set(df["run_id"].dropna())) if len(df) else [],
        "table": table, "charts": charts, "failures": failures, "problems": problems,
        "machines": machine_rows, "value": price_performance(ok, prices or []),
        "peaks": peaks(df),
    }


def render(context: dict[str, Any]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("cnnbench", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    return env.get_template("report.html.j2").render(**context)


def write_report(paths: list[Path], output: Path, prices: list[Price] | None = None) -> Path:
    """Read results, render, and write exactly one file: ``output`` (atomically)."""
    df, problems, machines = load_results([Path(p) for p in paths])
    html = render(build_context(df, problems, machines, prices))
    return write_atomic(Path(output), html)

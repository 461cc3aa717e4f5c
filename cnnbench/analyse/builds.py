"""What a build for your CPU buys you: every variant and alternative build against `default`.

Pure functions from result rows (the DataFrame ``report.load_results`` gives) to pandas
DataFrames, for the report's section of the same name; no HTML, no I/O. Every ratio comes
from the comparison layer (``analysis.compare_cells``), so a gain whose interval crosses 1.0
reads "no clear difference" here as everywhere.

A row of ``build_gains`` says, for one machine / device / framework / workload / mode (and
batch, precision, execution mode, threads): how fast the variant ran against the default
build, with the 95% interval, which kernels actually ran (the kernel probe's ISA), which
build version ran it (an alternative build is another version: such a comparison is across
versions and says so), and whether it is a user's own build (`custom`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd

from cnnbench.analyse.claims import beside_build_row
from cnnbench.analyse.compare import Comparison, cell_samples, compare_cells
from cnnbench.core.keys import LADDER_CHART, VARIANT_GROUP
from cnnbench.measure.kernels import JAX_NOTE
from cnnbench.plan.variants import LADDER, onednn_enabled

BASELINE = "default"
LADDER_ORDER = {lv.name: i for i, lv in enumerate(LADDER)}


def kernel_isa(kernels: Any) -> str:
    """The ISA of the kernels that ran, from a row's ``kernels``: 'oneDNN avx2; ATen AVX2'
    ('' where no probe ran)."""
    if not isinstance(kernels, dict):
        return ""
    parts = []
    onednn = kernels.get("onednn") or {}
    if onednn.get("executions"):
        top = onednn.get("top_isa")
        parts.append(f"oneDNN {top}" if top else
                     f"oneDNN isa-neutral (up to {onednn.get('dispatch_isa') or '?'})")
    if kernels.get("cpu_capability"):
        parts.append(f"ATen {kernels['cpu_capability']}")
    if kernels.get("inductor_vec_isa"):
        parts.append(f"inductor {kernels['inductor_vec_isa']}")
    xla = kernels.get("xla") or {}
    if xla:
        caps = xla.get("xla_cpu_max_isa") or []
        parts.append(f"XLA {','.join(c for c in caps if c) or 'native'}")
    if not parts and kernels.get("steps") and not kernels.get("error"):
        return "no oneDNN primitive ran"  # the probe ran: e.g. a build without oneDNN
    return "; ".join(parts)


def jax_note(kernels: Any = None) -> str:
    """Why JAX's ladder is flat: the cap reaches only XLA's generated code; with the probe's
    counts where there are some."""
    xla = (kernels or {}).get("xla") if isinstance(kernels, dict) else None
    if not xla or not xla.get("convolutions"):
        return JAX_NOTE
    widths = "/".join(sorted(xla.get("prefer_vector_width") or {}, key=int)) or "n/a"
    return (f"{JAX_NOTE} (this step: {xla['convolutions']} convolutions in precompiled "
            f"kernels; generated code at {widths}-bit vectors)")


def jax_row_note(kernels: Any = None) -> str:
    """The short form of ``jax_note`` for one row of a table that states the note once."""
    xla = (kernels or {}).get("xla") if isinstance(kernels, dict) else None
    if not xla or not xla.get("convolutions"):
        return "XLA's cap reaches only its generated code"
    widths = "/".join(sorted(xla.get("prefer_vector_width") or {}, key=int)) or "n/a"
    return (f"XLA's cap reaches only its generated code ({widths}-bit vectors); "
            f"{xla['convolutions']} convolutions ran precompiled kernels")


def _latest(rows: pd.DataFrame) -> pd.Series:
    """The newest of ``rows``, preferring one whose kernels were probed: a later run with
    ``--no-kernel-probe`` (a scaling sweep) measures the same cell without saying what ran."""
    rows = rows.sort_values("started_at")
    probed = rows["kernels"].map(lambda k: isinstance(k, dict) and bool(k)) if (
        "kernels" in rows) else pd.Series(False, index=rows.index)
    return (rows[probed] if probed.any() else rows).iloc[-1]


def _onednn_switched(default_build: Any, build: Any) -> str | None:
    """A note where the variant runs oneDNN and the default build does not, or the reverse:
    TensorFlow's ladder turns oneDNN on to cap it, and TensorFlow leaves it off by default on
    CPUs without AVX512_VNNI/BF16 or AMX, so there the ratio is oneDNN's kernels against
    Eigen's as much as one ISA against another."""
    base, this = onednn_enabled(default_build), onednn_enabled(build)
    if base is None or this is None or base == this:
        return None
    return (f"oneDNN {'on' if this else 'off'} here, {'on' if base else 'off'} in the default "
            "build: the ratio includes oneDNN against the default's own kernels")


def _version(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


_COLUMNS = [*VARIANT_GROUP, "variant", "variant_kind", "isa_level", "status", "ratio", "low", "high",
            "significant", "verdict", "text", "baseline_ips", "contender_ips", "runs_baseline",
            "runs_contender", "kernel_isa", "default_kernel_isa", "cap_ignored", "build_version",
            "default_version", "across_versions", "custom", "note", "claim_ratio", "claim",
            "claim_text"]


def _not_defined(v: pd.DataFrame) -> bool:
    """Rows of a variant the runner found no definition of for their framework: it records
    them `unsupported` before resolving the variant, so they have no `variant_kind`."""
    kind = v["variant_kind"] if "variant_kind" in v else pd.Series(None, index=v.index)
    return bool(kind.isna().all() and (v["status"] == "unsupported").all())


def build_gains(df: pd.DataFrame, by_run: bool = False, **options: Any) -> pd.DataFrame:
    """Every variant and alternative build against ``default`` in the same group (see
    ``VARIANT_GROUP``), one row each, ladder levels in ladder order. Variants that did not run
    (``unsupported``, ``unavailable``...) get a row with their status and reason as ``text``
    and no ratio. ``by_run``: compare only within one run (sweep), so a variant meets the
    default measured beside it rather than every default run pooled (which covers
    between-process noise but, with two or three runs, gives very wide intervals).
    ``options`` go to ``compare_cells`` (e.g. ``threshold``)."""
    group = [*VARIANT_GROUP, "run_id"] if by_run else VARIANT_GROUP
    columns = [*group, *_COLUMNS[len(VARIANT_GROUP):]]
    if df.empty:
        return pd.DataFrame(columns=columns)
    rows = df[(df["mode"] != "peak") & df["variant"].notna()].copy()
    rows["threads"] = rows["threads"].fillna(0).astype(int)
    samples = cell_samples(df, [*group, "variant"])
    records: list[dict[str, Any]] = []
    for gkey, g in rows.groupby(group, dropna=False, sort=True):
        base = g[(g["variant"] == BASELINE) & (g["status"] == "ok")]
        if base.empty:
            continue
        base_last, base_runs = _latest(base), samples.get((*gkey, BASELINE))
        for variant, v in g[g["variant"] != BASELINE].groupby("variant", sort=False):
            if _not_defined(v):
                continue  # another framework's variant (intel-tensorflow for PyTorch): no row
            ok = v[v["status"] == "ok"].sort_values("started_at")
            last = _latest(ok if not ok.empty else v)
            rec = _gain_row(dict(zip(group, gkey, strict=True)), variant, last, base_last)
            c = _gain_compare(rec, last, base_runs, samples.get((*gkey, variant)), options)
            _gain_notes(rec, last, base_last, c)
            records.append(rec)
    out = pd.DataFrame(records, columns=columns)
    if out.empty:
        return out
    out["_order"] = out["isa_level"].map(LADDER_ORDER).fillna(len(LADDER_ORDER))
    out = out.sort_values([*group, "_order", "variant"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _gain_row(rec: dict[str, Any], variant: Any, last: Any,
              base_last: Any) -> dict[str, Any]:
    """A build's row before its comparison: what it is, its ISA level and kernels, and the
    versions of it and of the default build."""
    raw_flags = last.get("flags")
    flags: list[Any] = raw_flags if isinstance(raw_flags, list) else []
    rec.update(
        variant=variant, variant_kind=last.get("variant_kind"),
        isa_level=last.get("isa_level"), status=last["status"],
        kernel_isa=kernel_isa(last.get("kernels")),
        default_kernel_isa=kernel_isa(base_last.get("kernels")),
        cap_ignored="cap_ignored" in flags,
        build_version=_version(last.get("framework_version")),
        default_version=_version(base_last.get("framework_version")),
        custom=last.get("variant_kind") == "custom", ratio=math.nan, low=math.nan,
        high=math.nan, significant=False, verdict=None, baseline_ips=math.nan,
        contender_ips=math.nan, runs_baseline=0, runs_contender=0, note="")
    rec["across_versions"] = bool(rec["build_version"] and rec["default_version"]
                                  and rec["build_version"] != rec["default_version"])
    return rec


def _gain_compare(rec: dict[str, Any], last: Any, base_runs: Any,
                  cont_runs: Any, options: dict[str, Any]) -> Comparison | None:
    """The build against the default (fills the ratio, interval and images/s), or the
    reason there is none as ``text``."""
    if last["status"] != "ok" or not base_runs or not cont_runs:
        rec["text"] = f"{last['status']}: {last.get('error') or 'no samples'}"
        return None
    c = compare_cells(base_runs, cont_runs, **options)
    batch = float(rec["batch_size"])
    rec.update(ratio=c.ratio, low=c.low, high=c.high, significant=c.significant,
               verdict=c.verdict, text=c.text(), runs_baseline=c.runs_baseline,
               runs_contender=c.runs_contender, note=c.note,
               baseline_ips=c.baseline.images_per_s(batch)[0],
               contender_ips=c.contender.images_per_s(batch)[0])
    return c


def _gain_notes(rec: dict[str, Any], last: Any, base_last: Any,
                c: Comparison | None) -> None:
    """What the reader must know beside the ratio (versions, oneDNN switched, JAX's own
    code generation), and the seed's claim beside the row."""
    notes = [rec["note"]] if rec["note"] else []
    if rec["across_versions"]:
        notes.append(f"across versions: {rec['build_version']} vs {rec['default_version']}")
    switched = _onednn_switched(base_last.get("build"), last.get("build"))
    if switched:
        notes.append(switched)
    if rec["framework"] == "jax" and rec["isa_level"]:
        notes.append(jax_row_note(last.get("kernels")))
    rec["note"] = "; ".join(notes)
    rec["claim_ratio"], rec["claim"], rec["claim_text"] = beside_build_row(
        str(rec["framework"]), str(rec["mode"]), rec["variant_kind"], c, switched is not None)


def with_variants(df: pd.DataFrame) -> pd.DataFrame:
    """The cell rows of the groups (``VARIANT_GROUP``) where a variant other than the
    default build was run: what ``build_gains`` compares."""
    rows = df[(df["mode"] != "peak") & df["variant"].notna()] if not df.empty else df
    if rows.empty:
        return rows
    rows = rows.assign(threads=rows["threads"].fillna(0).astype(int))
    has_variant = (rows["variant"] != BASELINE).groupby(
        [rows[c] for c in VARIANT_GROUP], dropna=False, sort=False).transform("any")
    return rows[has_variant]


def ladders(gains: pd.DataFrame, limit: int) -> Iterator[tuple[pd.DataFrame, list[str],
                                                                dict[str, str]]]:
    """The ISA ladder rows of ``build_gains`` per machine, device, workload, batch, precision
    and threads (the first ``limit`` groups): (rows, the levels in ladder order, the levels
    this CPU lacks with why)."""
    lad = gains[gains["isa_level"].notna() & gains["isa_level"].isin(list(LADDER_ORDER))]
    for i, (_, sub) in enumerate(lad.groupby(LADDER_CHART, sort=True)):
        if i >= limit:
            return
        levels = sorted(set(sub["isa_level"]), key=LADDER_ORDER.__getitem__)
        missing = {lv: "not on this CPU" for lv in levels
                   if not (sub[sub["isa_level"] == lv]["status"] != "unsupported").any()}
        yield sub, levels, missing


def isa_matrix(df: pd.DataFrame, cpu_flags: set[str] | frozenset[str]) -> pd.DataFrame:
    """CPU extensions x builds: for each (framework, variant) that ran, the oneDNN kernel ISA
    that ran, the ATen set, and which of the CPU's extensions the binary's own code was not
    built for (TensorFlow's feature guard) or was (MXNet's features); ``cpu_flags`` is the
    machine's (machine.json ``cpu.flags``)."""
    ok = df[(df["status"] == "ok") & (df["mode"] != "peak")]
    extensions = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                  "amx_tile"]
    records = []
    for (fw, variant), g in ok.groupby(["framework", "variant"], sort=True):
        last = g.sort_values("started_at").iloc[-1]
        raw_build = last.get("build")
        build: dict[str, Any] = raw_build if isinstance(raw_build, dict) else {}
        rec: dict[str, Any] = {"framework": fw, "variant": variant,
                               "version": _version(last.get("framework_version")),
                               "kernels": kernel_isa(last.get("kernels"))}
        missing = {str(m).lower() for m in build.get("cpu_feature_guard_missing") or []}
        compiled = {str(c).lower() for c in build.get("compiled_for") or []}
        for ext in extensions:
            if ext not in cpu_flags:
                rec[ext] = "not on CPU"
            elif missing:
                rec[ext] = "not compiled for" if ext.replace("_", "") in {
                    m.replace("_", "") for m in missing} else "compiled for"
            elif compiled:
                rec[ext] = "compiled for" if ext.replace("_", "") in {
                    c.replace("_", "") for c in compiled} else "not compiled for"
            else:
                rec[ext] = "on CPU"
        records.append(rec)
    return pd.DataFrame(records, columns=["framework", "variant", "version", "kernels",
                                          *extensions])


__all__ = ["BASELINE", "build_gains", "isa_matrix", "jax_note", "jax_row_note",
           "kernel_isa", "ladders", "with_variants"]

"""The seeds' claims, defined once, and the cells of these results that answer each, like
with like.

``CLAIMS`` is the one table of what the seeds claim: their ratios and their absolute figures.
The builds table (``builds``), the scaling charts (``scaling``) and the report's section
(``sections.claims``) all read it. The functions below choose, for each claim, cells that
differ only in what the claim is about, and compare them through ``analysis.compare_cells``
(a ratio with its 95% interval from the raw samples). Pure functions from result rows to
text and DataFrames; no HTML, no I/O.

Like with like, claim by claim:

* **GPU over CPU**: one GPU (``gpu:N``, never a device set) against the CPU at the same
  framework, variant, workload, mode, batch, precision, execution mode and adapter options;
  the CPU of the GPU's own machine where it has one. Both machines are named.
* **Absolute figures**: this CPU's (and GPU's) images/s with its interval against the seed's,
  with what is not like for like (the seed's model and input pipeline).
* **A TensorFlow built for the CPU**: two cells that differ *only* in the build (an
  alternative or custom build against the stock one, with oneDNN in the same state) or
  *only* in the ISA level (the stock build capped to x86-64-v3 against x86-64-v2, oneDNN on
  in both). TensorFlow leaves oneDNN off by default on CPUs without AVX512_VNNI/BF16 or AMX
  and its ladder forces it on, so its default against a capped level would measure the
  oneDNN switch, not the instruction set: that pair is never used.
* **Two GPUs over one**: training with weak scaling on hardware GPUs (``scaling``'s table),
  never simulated devices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cnnbench.analyse import compare as an
from cnnbench.core.cells import device_count
from cnnbench.core.keys import BUILD_PAIR, CROSS_DEVICE, KEY
from cnnbench.plan.variants import LADDER, LEVELS, onednn_enabled, top_level


@dataclass(frozen=True)
class SeedFigure:
    """An absolute figure a seed gives: ``ips`` images/s on ``name``, a ``device`` of kind
    "cpu" or "gpu", in ``mode``."""

    device: str
    name: str
    ips: float
    mode: str = "train"


@dataclass(frozen=True)
class Claim:
    """One claim of the seeds: its text, which of our cells answer it, the seed's ratio per
    mode (the faster thing over the slower one) and its absolute figures."""

    key: str
    text: str
    compared: str
    ratios: tuple[tuple[str, float], ...]
    framework: str | None = None  # None: any framework
    workload: str | None = None
    figures: tuple[SeedFigure, ...] = ()
    unlike: str = ""  # what is not like for like between the seed's figures and ours
    devices: int = 1  # devices of the claim's contender (two GPUs: 2)

    def ratio(self, mode: str) -> float | None:
        return dict(self.ratios).get(mode)

    def seed(self, mode: str) -> str:
        r = self.ratio(mode)
        return f"seed: {r:g}×" if r is not None else ""


CIFAR10_DEMO = Claim(
    "cifar10-demo",
    "The TensorFlow CIFAR-10 demo trains at 770 img/s on an i7 and 2,200 img/s on a GTX 1080 "
    "Ti: about 2.9× GPU over CPU.",
    "TensorFlow cifar10_tutorial training: one GPU against the CPU at the same batch, "
    "precision and execution mode; this CPU's (and GPU's) img/s against the seed's",
    (("train", 2.9),), "tensorflow", "cifar10_tutorial",
    (SeedFigure("cpu", "i7", 770.0), SeedFigure("gpu", "GTX 1080 Ti", 2200.0)),
    "the seed timed the tutorial's own script, which reads and distorts real CIFAR-10 images "
    "in its input pipeline, on the TensorFlow of its day; here the same network trains on "
    "synthetic images already in memory")
# The seeds do not name their production model. ResNet-50 is the registry's production
# network (ImageNet's 224x224 inputs, 25.6 M parameters, 8.2 GFLOP an image forward), the
# class of model that a desktop CPU trains at tens of images a second, as the seed's 19 and 25
# img/s do; VGG-16 is older and four times the work.
PRODUCTION_MODEL = Claim(
    "production-model",
    "A production model runs about 25× faster on a GPU than on the CPU, which trains it at "
    "19 img/s (an i5) and 25 img/s (an i7).",
    "ResNet-50 (standing in for the unnamed production model) training, else inference: one "
    "GPU against the CPU at the same framework, batch, precision and execution mode; this "
    "CPU's training img/s against the seed's i5 and i7",
    (("train", 25.0), ("infer", 25.0)), None, "resnet50",
    (SeedFigure("cpu", "i5", 19.0), SeedFigure("cpu", "i7", 25.0)),
    "the seed's production model is not named and ran with its own input pipeline; "
    "ResNet-50 stands in for it here, on synthetic images already in memory")
TWO_GPUS = Claim(
    "two-gpus",
    "Two GPUs train at about 1.5× one (\"the more cards, the lower the ratio\").",
    "training with weak scaling (the same batch per GPU) on 2 hardware GPUs against 1, the "
    "same cell otherwise (simulated devices are not GPUs)",
    (("train", 1.5),), devices=2)
TF_BUILD = Claim(
    "tf-build",
    "A TensorFlow built with SSE4/AVX/AVX2/FMA trains about 30% faster and predicts about 2× "
    "faster than the stock build.",
    "TensorFlow cells that differ in one thing only: the build (an alternative or custom "
    "build against the stock one, oneDNN in the same state in both), or the ISA level (the "
    "stock build capped to x86-64-v3, AVX2 and FMA, against x86-64-v2, SSE4.2, oneDNN on in "
    "both); ResNet-20 (else any workload), training and inference",
    (("train", 1.3), ("infer", 2.0)), "tensorflow")
CLAIMS: tuple[Claim, ...] = (CIFAR10_DEMO, PRODUCTION_MODEL, TWO_GPUS, TF_BUILD)

NOT_MEASURED = "not measured on this machine"
MAX_LINES = 4  # machines (or curves) one answer lists


def fw(name: Any) -> str:
    return an.FRAMEWORK_NAMES.get(str(name), str(name))


def mode_name(mode: Any) -> str:
    return an.MODE_NAMES.get(str(mode), str(mode))


# ------------------------------------------------------------------- the builds table


def beside_build_row(framework: str, mode: str, variant_kind: Any,
                     cmp: an.Comparison | None, onednn_switched: bool) -> tuple[float, str | None, str]:
    """The seed's build claim beside one row of the builds table (a variant over the
    default build): (the seed's ratio, the claim, both figures in one direction: the build
    for the CPU over the stock one). An ISA-capped row reads the default over it, an
    alternative or custom build reads itself over the default; a configuration variant
    (oneDNN on/off, a layout) is no build for the CPU and gets nothing."""
    ratio = TF_BUILD.ratio(mode) if framework == TF_BUILD.framework else None
    if ratio is None or variant_kind not in ("isa", "build", "custom"):
        return math.nan, None, ""
    seed = f"{TF_BUILD.seed(mode)} ({mode_name(mode)})"
    if cmp is None:
        return ratio, TF_BUILD.text, seed
    ours = (f"default over this capped build: {cmp.inverted().text()}" if variant_kind == "isa"
            else f"this build over the default: {cmp.text()}")
    text = f"{ours}; {seed}"
    if onednn_switched:
        text += " — not like for like: oneDNN is on in one, off in the other (see the note)"
    return ratio, TF_BUILD.text, text


# ------------------------------------------------------------------- helpers


def _single_gpu(device: Any) -> bool:
    d = str(device)
    return d.startswith("gpu:") and device_count(d) == 1


def _recs(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(rec[k] for k in KEY)


def _where(rec: Mapping[str, Any]) -> str:
    """'box gpu:0 (NVIDIA H200)', 'box CPU (AMD EPYC)': the machine and its device."""
    dev = str(rec["device"])
    where = f"{rec['machine_id']} {'CPU' if dev == 'cpu' else dev}"
    name = rec.get("device_name")
    return f"{where} ({name})" if isinstance(name, str) and name and name not in (dev, "cpu") \
        else where


def _config(rec: Mapping[str, Any]) -> str:
    """'TensorFlow default graph b32 fp32' (and adapter options where there are some)."""
    opts = rec.get("options_key")
    return (f"{fw(rec['framework'])} {rec['variant']} {rec['exec_mode']} "
            f"b{int(rec['batch_size'])} {rec['precision']}"
            + (f" {opts}" if opts and opts != "{}" else ""))


def _ips(v: Any) -> str:
    v = float(v)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def against_figure(ips: float, low: float, high: float, figure: float) -> str:
    """A cell's images/s over a seed's figure, the interval the cell's own: 'no clear
    difference' where that interval holds the seed's figure."""
    return an.format_ratio(ips / figure, low / figure, high / figure,
                           not low <= figure <= high)


def _samples(df: pd.DataFrame, cells: pd.DataFrame) -> dict[Any, list[np.ndarray]]:
    """The raw runs of ``cells`` only (a claim compares a handful of cells)."""
    if cells.empty or df.empty:
        return {}
    sub = df[df["workload"].isin(set(cells["workload"])) & df["framework"].isin(
        set(cells["framework"]))]
    return an.cell_samples(sub, KEY)


# ------------------------------------------------------------------- GPU against CPU


def gpu_over_cpu(cells: pd.DataFrame, samples: Mapping[Any, Sequence[np.ndarray]],
                 claim: Claim, mode: str) -> str:
    """The fastest single-GPU cell that has a CPU cell at the same settings, over that CPU
    cell (its own machine's where there is one), with the seed's ratio."""
    sel = cells[(cells["workload"] == claim.workload) & (cells["mode"] == mode)]
    gpus = sel[sel["device"].map(_single_gpu)].sort_values("ips", ascending=False)
    if gpus.empty:
        sets = sorted({str(d) for d in sel["device"] if str(d).startswith("gpu")})
        return (f"GPU over CPU: not measured (no single-GPU cell of {claim.workload} "
                f"{mode_name(mode)}" + (f"; {', '.join(sets)} are device sets, not one GPU"
                                        if sets else "") + ")")
    cpu_by: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c in _recs(sel[sel["device"] == "cpu"].sort_values("ips", ascending=False)):
        cpu_by.setdefault(tuple(c[k] for k in CROSS_DEVICE), []).append(c)
    # the claim's framework first, then any other (named in the answer)
    ranked = _recs(gpus.assign(_o=gpus["framework"] != (claim.framework or "")).sort_values(
        ["_o", "ips"], ascending=[True, False], kind="stable"))
    for g in ranked:
        cpus = cpu_by.get(tuple(g[k] for k in CROSS_DEVICE), [])
        own = [c for c in cpus if c["machine_id"] == g["machine_id"]]
        if not cpus:
            continue
        c = (own or cpus)[0]
        base_runs, gpu_runs = samples.get(_key(c)), samples.get(_key(g))
        if not base_runs or not gpu_runs:
            continue
        cmp = an.compare_cells(base_runs, gpu_runs)
        return (f"GPU over CPU, {_config(g)}: {_ips(g['ips'])} img/s on {_where(g)} against "
                f"{_ips(c['ips'])} on {_where(c)}: {cmp.text()} ({claim.seed(mode)})")
    return ("GPU over CPU: not measured (no CPU cell at the same framework, variant, batch, "
            "precision and execution mode as a single-GPU cell)")


# ------------------------------------------------------------------- the seed's own figures


def _best_per_machine(sel: pd.DataFrame, framework: str | None) -> list[dict[str, Any]]:
    """Per machine, the cell standing for the seed's: the claim's framework, its stock build
    and fp32 where measured (as the seed's were), then the fastest."""
    if framework and (sel["framework"] == framework).any():
        sel = sel[sel["framework"] == framework]
    ranked = sel.assign(_v=(sel["variant"] != "default"), _p=(sel["precision"] != "fp32"),
                        _i=-sel["ips"].astype(float))
    ranked = ranked.sort_values(["_v", "_p", "_i"], kind="stable")
    return _recs(ranked.drop_duplicates("machine_id").head(MAX_LINES))


def against_figures(cells: pd.DataFrame, claim: Claim, mode: str, device: str) -> str | None:
    """This CPU's (``device`` "cpu") or GPU's images/s against the seed's figures for it;
    None where the seed gives none."""
    figs = [f for f in claim.figures if f.device == device and f.mode == mode]
    if not figs:
        return None
    sel = cells[(cells["workload"] == claim.workload) & (cells["mode"] == mode)]
    sel = sel[sel["device"] == "cpu"] if device == "cpu" else sel[sel["device"].map(_single_gpu)]
    what = "CPU" if device == "cpu" else "GPU"
    if sel.empty:
        return f"this {what}: not measured (no {claim.workload} {mode_name(mode)} cell on one {what})"
    out = []
    for r in _best_per_machine(sel, claim.framework):
        where = r["machine_id"] if device == "cpu" else f"{r['machine_id']} {r['device']}"
        vs = " and ".join(f"{f.name} at {f.ips:,.0f}: "
                          f"{against_figure(r['ips'], r['low'], r['high'], f.ips)}" for f in figs)
        out.append(f"this {what} ({where}, {_config(r)}): {_ips(r['ips'])} img/s "
                   f"[{_ips(r['low'])}, {_ips(r['high'])}] against the seed's {vs}")
    return "; ".join(out)


def gpu_cpu_claim(cells: pd.DataFrame, samples: Mapping[Any, Sequence[np.ndarray]],
                  claim: Claim) -> str:
    """The answer to a GPU-over-CPU claim: the like-for-like ratio, then this CPU's and GPU's
    figures against the seed's, and what is not like for like in those."""
    sel = cells[cells["workload"] == claim.workload]
    modes = [m for m, _ in claim.ratios if (sel["mode"] == m).any()]
    if not modes:
        first = mode_name(claim.ratios[0][0])
        return f"{NOT_MEASURED} (no {claim.workload} {first} cell)"
    mode = modes[0]
    parts = [gpu_over_cpu(cells, samples, claim, mode)]
    figures = [against_figures(cells, claim, mode, d) for d in ("cpu", "gpu")]
    parts += [f for f in figures if f]
    first = claim.ratios[0][0]
    if mode != first:
        unmatched = [f.name for f in claim.figures if f.mode != mode]
        parts.append(f"{mode_name(mode)}, as no {claim.workload} {mode_name(first)} cell ran"
                     + (f" (the seed's {' and '.join(unmatched)} figures are for {mode_name(first)}, "
                        "not compared)" if unmatched else ""))
    if any(f and " img/s [" in f for f in figures) and claim.unlike:
        parts.append(f"not like for like: {claim.unlike}")
    return "; ".join(parts)


# ------------------------------------------------------------------- two GPUs


def two_gpus_claim(scaling: pd.DataFrame) -> str:
    """Two hardware GPUs over one, training with weak scaling, from ``scaling.device_scaling``'s
    table; the other 2-GPU cells are named as not the seed's setting."""
    t = scaling
    if not t.empty:
        t = t[(~t["simulated"].astype(bool)) & (t["kind"] == "gpu") & (t["n"] == 2)
              & (t["baseline_n"] == 1)]
    like = t[(t["mode"] == "train") & (t["scaling"] == "weak")] if not t.empty else t
    if like.empty:
        other = sorted({f"{mode_name(m)} with {s} scaling" for m, s in
                        zip(t["mode"], t["scaling"], strict=True)}) if not t.empty else []
        return (f"{NOT_MEASURED} (no training cell with weak scaling on 2 hardware GPUs beside "
                "its 1-GPU run" + (f"; measured only {', '.join(other)}, not the seed's setting"
                                   if other else "") + ")")
    like = like.assign(_tf=like["framework"] != "tensorflow").sort_values(
        ["_tf", "workload", "framework"], kind="stable")
    return "; ".join(
        f"{r['workload']} training {fw(r['framework'])} {r['exec_mode']} "
        f"b{int(r['per_device_batch'])} per GPU (weak scaling) on {r['machine_id']} "
        f"{r['device']}: {_speedup(r)} one GPU ({TWO_GPUS.seed('train')})"
        for r in _recs(like.head(MAX_LINES)))


def _speedup(r: Mapping[str, Any]) -> str:
    return an.format_ratio(r["speedup"], r["speedup_low"], r["speedup_high"],
                           bool(r["significant"]))


# ------------------------------------------------------------------- a TensorFlow built for the CPU

ONEDNN_SWITCHES = ("onednn-on", "onednn-off")  # the stock build, oneDNN forced on or off
SEED_LOW, SEED_HIGH = LEVELS["x86-64-v2"], LEVELS["x86-64-v3"]  # SSE4.2 / AVX2 + FMA


def _level(rec: Mapping[str, Any]) -> str | None:
    lv = rec.get("isa_level")
    return lv if isinstance(lv, str) and lv else None


def _stock(rec: Mapping[str, Any]) -> bool:
    return rec.get("variant_kind") in ("default", "isa") or rec["variant"] in ONEDNN_SWITCHES


def _uncapped(rec: Mapping[str, Any], top: str | None) -> bool:
    """No cap, or a cap at this CPU's top level, which caps nothing."""
    lv = _level(rec)
    return lv is None or (top is not None and lv == top)


def _tops(df: pd.DataFrame, machines: Mapping[str, Mapping[str, Any]]) -> dict[str, str | None]:
    """Per machine, its CPU's top ladder level: from machine.json's flags, else below the
    lowest level the runner recorded ``unsupported`` (the CPU lacks its flags)."""
    order = [lv.name for lv in LADDER]
    out: dict[str, str | None] = {}
    for mid in df["machine_id"].dropna().unique():
        flags = ((machines.get(str(mid)) or {}).get("cpu") or {}).get("flags")
        if flags:
            top = top_level(frozenset(map(str, flags)))
            out[str(mid)] = top.name if top else None
            continue
        above = df[(df["machine_id"] == mid) & (df["status"] == "unsupported")
                   & df["isa_level"].isin(order)]["isa_level"]
        low = min((order.index(v) for v in above), default=None)
        out[str(mid)] = order[low - 1] if low else None
    return out


def _onednn(rec: Mapping[str, Any]) -> bool | None:
    return onednn_enabled(rec.get("build"), rec.get("env"))


def _build_pair(g: list[dict[str, Any]], top: str | None) -> tuple[dict, dict, str] | None:
    """An alternative or custom build (uncapped) against the stock build with oneDNN in the
    same state, uncapped: the pair differs only in the build."""
    alts = [r for r in g if r.get("variant_kind") in ("custom", "build") and _uncapped(r, top)
            and _onednn(r) is not None]
    alts.sort(key=lambda r: r.get("variant_kind") != "custom")  # the user's own build first
    for alt in alts:
        rank = {"default": 0, "onednn-on": 1, "onednn-off": 1}
        bases = sorted((r for r in g if _stock(r) and _uncapped(r, top)
                        and _onednn(r) == _onednn(alt)), key=lambda r: rank.get(r["variant"], 2))
        if bases:
            base = bases[0]
            at = (" at " + str(base["variant"]) + ", this CPU's top level, where the cap caps "
                  "nothing") if _level(base) else (" with oneDNN forced " + (
                      "on" if _onednn(base) else "off")) if base["variant"] in ONEDNN_SWITCHES \
                else ""
            what = (f"{alt['variant']} {alt.get('framework_version') or ''} over the stock build "
                    f"{base.get('framework_version') or ''}{at}")
            return alt, base, " ".join(what.split())
    return None


def _isa_pair(g: list[dict[str, Any]], top: str | None) -> tuple[dict, dict, str] | None:
    """The stock build at x86-64-v3 (else uncapped) over the same build at x86-64-v2, oneDNN
    on in both: the pair differs only in the ISA level."""
    on = [r for r in g if _stock(r) and _onednn(r) is True]
    low = next((r for r in on if _level(r) == SEED_LOW.name), None)
    if low is None:
        return None
    same = [r for r in on if r is not low
            and r.get("framework_version") == low.get("framework_version")]
    high = next((r for r in same if _level(r) == SEED_HIGH.name), None)
    if high is not None:
        return high, low, (f"{SEED_HIGH.name} over {SEED_LOW.name} (AVX2 and FMA against "
                           f"SSE4.2) of the stock build {low.get('framework_version') or ''}")
    high = next((r for r in same if _uncapped(r, top)), None)
    if high is None:
        return None
    return high, low, (f"{high['variant']} (uncapped: up to this CPU's own ISA) over "
                       f"{SEED_LOW.name} (SSE4.2) of the stock build "
                       f"{low.get('framework_version') or ''}")


def _pairings(tf: pd.DataFrame, tops: Mapping[str, str | None], pair: Any) -> list[tuple]:
    """Per mode, the first group (ResNet-20 and fp32 first) with a pair: (mode, contender,
    baseline, what the pair is)."""
    ranked = tf.assign(_w=tf["workload"] != "resnet20", _p=tf["precision"] != "fp32")
    found = []
    for mode, _ in TF_BUILD.ratios:
        groups = ranked[ranked["mode"] == mode].groupby(["_w", "_p", *BUILD_PAIR], sort=True,
                                                        dropna=False)
        for _, g in groups:
            recs = _recs(g)
            p = pair(recs, tops.get(str(recs[0]["machine_id"])))
            if p is not None:
                found.append((mode, *p))
                break
    return found


def _pairing_text(head: str, found: list[tuple],
                  samples: Mapping[Any, Sequence[np.ndarray]]) -> str | None:
    parts, described = [], None
    for mode, cont, base, what in found:
        b, c = samples.get(_key(base)), samples.get(_key(cont))
        if not b or not c:
            continue
        cmp = an.compare_cells(b, c)
        where = (f"{cont['machine_id']} {cont['workload']} b{int(cont['batch_size'])} "
                 f"{cont['precision']} {cont['exec_mode']}")
        if described is None:
            described = (what, where)
            parts.append(f"{head}; {where}): {what}. {mode_name(mode)}: {cmp.text()} "
                         f"({TF_BUILD.seed(mode)})")
        else:
            other = "" if (what, where) == described else f" ({what}; {where})"
            parts.append(f"{mode_name(mode)}{other}: {cmp.text()} ({TF_BUILD.seed(mode)})")
    return "; ".join(parts) + "." if parts else None


def _why_unpaired(tf: pd.DataFrame) -> str:
    """Why no pair was found: the oneDNN switch stands between the cells that were run."""
    recs = _recs(tf)
    why = []
    for alt in [r for r in recs if r.get("variant_kind") in ("custom", "build")][:1]:
        enabled = _onednn(alt)
        if enabled is not None:
            state = "on" if enabled else "off"
            why.append(f"{alt['variant']} ran with oneDNN {state} and no uncapped stock cell "
                       "did (add onednn-" + state + " to pair them)")
    default_off = next((r for r in recs if r["variant"] == "default" and _onednn(r) is False),
                       None)
    if default_off is not None and any(_onednn(r) for r in recs if _level(r)):
        why.append(f"TensorFlow's default build ran with oneDNN off on "
                   f"{default_off['machine_id']} and its ISA-capped levels with oneDNN forced "
                   "on, so the default against a capped level would measure the oneDNN switch, "
                   "not the instruction set (add x86-64-v3 or onednn-on beside x86-64-v2)")
    if why:
        return "not like for like: " + "; ".join(why)
    return (f"{NOT_MEASURED} (no TensorFlow build or ISA-capped pair that differs in one thing "
            "only: run --variants default,x86-64-v3,x86-64-v2 or an alternative build)")


def tf_build_claim(df: pd.DataFrame, cells: pd.DataFrame,
                   samples: Mapping[Any, Sequence[np.ndarray]],
                   machines: Mapping[str, Mapping[str, Any]]) -> str:
    """The build claim answered by pairs that differ only in the build (preferred: a real
    build) and only in the ISA level, each saying which it is."""
    tf = cells[(cells["framework"] == "tensorflow") & (cells["device"] == "cpu")]
    if tf.empty:
        return f"{NOT_MEASURED} (no TensorFlow cells on a CPU)"
    tf = tf.assign(isa_level=tf["isa_level"] if "isa_level" in tf else None,
                   variant_kind=tf["variant_kind"] if "variant_kind" in tf else None)
    tops = _tops(df, machines)
    texts = []
    by_build = _pairings(tf, tops, _build_pair)
    if by_build:
        state = "on" if _onednn(by_build[0][1]) else "off"
        texts.append(_pairing_text(f"Only the build (oneDNN {state} in both", by_build, samples))
    by_isa = _pairings(tf, tops, _isa_pair)
    if by_isa:
        texts.append(_pairing_text("Only the ISA level (the stock build, oneDNN on in both",
                                   by_isa, samples))
    answer = " ".join(t for t in texts if t)
    return answer or _why_unpaired(tf)


# ------------------------------------------------------------------- the table


def check_claims(df: pd.DataFrame, cells: pd.DataFrame | None = None,
                 scaling: pd.DataFrame | None = None,
                 machines: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One row per claim of ``CLAIMS``: ``claim``, ``compared here`` and ``what these
    results show``. ``cells`` is ``analysis.cells_table(df)`` (computed when not given),
    ``scaling`` is ``scaling.device_scaling(df)`` (no two-GPU answer without it),
    ``machines`` the machine records by id (their CPU flags)."""
    if cells is None:
        cells = an.cells_table(df)
    if cells.empty:
        answers = [f"{NOT_MEASURED} (no results)"] * len(CLAIMS)
    else:
        wanted = cells[cells["workload"].isin([c.workload for c in CLAIMS if c.workload])
                       | (cells["framework"] == TF_BUILD.framework)]
        samples = _samples(df, wanted)
        answers = [gpu_cpu_claim(cells, samples, CIFAR10_DEMO),
                   gpu_cpu_claim(cells, samples, PRODUCTION_MODEL),
                   two_gpus_claim(scaling if scaling is not None else pd.DataFrame()),
                   tf_build_claim(df, cells, samples, machines or {})]
    return pd.DataFrame({"claim": [c.text for c in CLAIMS],
                         "compared here": [c.compared for c in CLAIMS],
                         "what these results show": answers})


__all__ = ["CIFAR10_DEMO", "CLAIMS", "PRODUCTION_MODEL", "TF_BUILD", "TWO_GPUS", "Claim",
           "SeedFigure", "against_figure", "beside_build_row", "check_claims"]

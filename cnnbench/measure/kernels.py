"""Proof of the kernels that ran: oneDNN's verbose log and XLA's dump, reduced to a few facts,
and the check that a requested ISA cap took effect. Pure standard library.

A cap is only an environment variable, and frameworks ignore ones they do not read (MXNet 1.9
reads ``DNNL_MAX_CPU_ISA``, not ``ONEDNN_MAX_CPU_ISA``) or values they do not know (PyTorch
silently ignores an invalid ``ATEN_CPU_CAPABILITY``). So after a cell, a short probe process
runs one step of it again with oneDNN's verbose log on (``cnnbench.measure.worker --kernels``); the
log names the implementation of every primitive it executed (``brg_conv_fwd:avx2``,
``jit:avx512_core``, ``gemm:jit``), and the ISA in those names is what ran. The probe is a
process of its own because oneDNN reads its verbose switch once, at first use, and TensorFlow
and MXNet export no call to turn it off again: in the timed worker it would cost every step.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from cnnbench.core import isa

_VERBOSE_PREFIXES = ("onednn_verbose", "dnnl_verbose", "mkldnn_verbose")


def dispatch_isa(max_isa: str | None, cpu_flags: Iterable[str] = ()) -> str | None:
    """The ladder's name of oneDNN's 'info,cpu,isa:' words ('Intel AVX2' -> 'avx2'; 'Intel
    AVX10.1 and Intel AMX ...' -> 'avx512_core_amx'); see cnnbench.core.isa."""
    rank = isa.onednn_words(max_isa, cpu_flags)
    return None if rank is None else isa.name(rank)


def parse_onednn_verbose(text: str, cpu_flags: Iterable[str] = ()) -> dict[str, Any] | None:
    """A short summary of oneDNN's verbose log (v1, v2 or v3 format), or None if it has no
    line: {version, max_isa (the 'info,cpu,isa' line), dispatch_isa (its ladder level),
    primitives: executions per kind, impls: executions per implementation, isa: executions
    per ISA named in them, top_isa: the highest of those}. ``cpu_flags`` ranks names newer
    than cnnbench.core.isa knows (at least the CPU's own level)."""
    cpu_flags = tuple(cpu_flags)
    version = max_isa = None
    impls: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    seen = False
    for line in text.splitlines():
        if not line.startswith(_VERBOSE_PREFIXES):
            continue
        seen = True
        parts = line.strip().split(",")
        head = parts[:4]  # v3: prefix,v1,primitive,exec; v2: prefix,exec
        if "info" in head:
            rest = ",".join(parts[parts.index("info") + 1:])
            m = re.search(r"oneDNN (v[\d.]+)|Intel MKL-DNN (v[\d.]+)|DNNL (v[\d.]+)", rest)
            if m:
                version = next(g for g in m.groups() if g)
            if rest.startswith("cpu,isa:"):
                max_isa = rest.split(":", 1)[1].strip()
            continue
        if "exec" not in head:
            continue
        i = parts.index("exec")
        if len(parts) > i + 3 and parts[i + 1] == "cpu":
            kinds[parts[i + 2]] += 1
            impls[parts[i + 3]] += 1
    if not seen:
        return None
    named: Counter[str] = Counter()
    for impl, n in impls.items():
        for t in set(isa.impl_isas(impl)) or {"isa-neutral"}:  # gemm:jit, ref:any ...
            named[t] += n
    ranks = {t: isa.onednn_rank(t, cpu_flags) for t in named if t != "isa-neutral"}
    top = max(ranks, key=lambda t: ranks[t] or 0) if ranks else None
    return {"version": version, "max_isa": max_isa,
            "dispatch_isa": dispatch_isa(max_isa, cpu_flags),
            "executions": sum(impls.values()),
            "primitives": dict(kinds.most_common()), "isa": dict(named.most_common()),
            "top_isa": top, "impls": dict(impls.most_common(8))}


def parse_xla_dump(files: dict[str, str]) -> dict[str, Any]:
    """What XLA's dump (``--xla_dump_to``) says about one compiled step: the ISA cap it took
    (its debug options), the vector width its generated code prefers (the code the cap
    reaches), and how many convolutions and library fusions run precompiled kernels instead
    (which the cap does not reach). ``files``: name -> text of the dump's text files."""
    caps = set()
    widths: Counter[str] = Counter()
    convs = dots = 0
    fusions: Counter[str] = Counter()
    for name, text in files.items():
        if name.endswith(".debug_options"):
            m = re.search(r'xla_cpu_max_isa:\s*"([^"]*)"', text)
            caps.add(m.group(1) if m else "")
        elif name.endswith(".ll"):
            widths.update(re.findall(r'"prefer-vector-width"="(\d+)"', text))
        elif name.endswith("cpu_after_optimizations.txt"):
            convs += len(re.findall(r"\bconvolution\(", text))
            dots += len(re.findall(r"\bdot\(", text))
            fusions.update(re.findall(r'"kind":"(__\w+)"', text))
    return {"xla_cpu_max_isa": sorted(caps), "prefer_vector_width": dict(widths),
            "convolutions": convs, "dots": dots, "library_fusions": dict(fusions),
            "note": JAX_NOTE if convs else None}


JAX_NOTE = ("XLA's ISA cap reaches only the code XLA generates (fused elementwise loops); "
            "convolutions and library fusions run precompiled kernels (Eigen, YNNPACK) that "
            "pick their own ISA, so a flat JAX result does not mean the ISA does not matter")


def _env_cap(env: dict[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value else None


def cap_ignored(framework: str, env: dict[str, str], kernels: dict[str, Any]) -> list[str]:
    """Why each ISA cap in ``env`` (what the variant set) did not take effect, judged from
    ``kernels`` (what the probe saw); empty when every cap held or none was set. A cap that
    cannot be checked (no oneDNN primitive ran) is not called ignored."""
    reasons: list[str] = []
    aten = _env_cap(env, "ATEN_CPU_CAPABILITY")
    got = kernels.get("cpu_capability")
    if framework == "pytorch" and aten and got is not None and got.lower() != aten.lower():
        reasons.append(f"ATEN_CPU_CAPABILITY={aten} but PyTorch runs its {got} kernels")
    onednn = kernels.get("onednn") or {}
    # What ran (the ISA named in the implementations) is the proof; the dispatcher's own limit
    # (its info line) also counts, since GEMM-based and reorder kernels name no ISA. The reason
    # names what ran, and the dispatcher's limit only where nothing named ran above the cap:
    # on an AVX-512 BF16 CPU an uncapped oneDNN runs avx512_core kernels while its dispatcher
    # allows avx512_core_bf16, and the reason must not claim bf16 kernels ran.
    ran, allowed = onednn.get("top_isa"), onednn.get("dispatch_isa")
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        cap = _env_cap(env, var)
        if not cap or (ran is None and allowed is None):
            continue
        limit = isa.ISA_RANK.get(cap.lower())
        if limit is None:
            seen = f"ran {ran} kernels" if ran else f"dispatched up to {allowed}"
            reasons.append(f"{var}={cap} is no oneDNN ISA; oneDNN {seen}")
        elif ran is not None and (isa.onednn_rank(ran) or 0) > limit:
            reasons.append(f"{var}={cap} but oneDNN ran {ran} kernels")
        elif allowed is not None and (isa.onednn_rank(allowed) or 0) > limit:
            reasons.append(f"{var}={cap} but oneDNN dispatched up to {allowed}")
    flags = env.get("XLA_FLAGS", "")
    m = re.search(r"--xla_cpu_max_isa=(\S+)", flags)
    xla = kernels.get("xla") or {}
    took = xla.get("xla_cpu_max_isa")
    if m and took is not None and took != [m.group(1)]:
        reasons.append(f"--xla_cpu_max_isa={m.group(1)} but XLA compiled with {took}")
    return reasons


def summary(kernels: dict[str, Any]) -> str:
    """One short line of what ran, e.g. 'oneDNN avx2 (412 exec); ATen AVX2'."""
    parts = []
    onednn = kernels.get("onednn")
    if onednn and onednn.get("executions"):
        # highest level first, so the line leads with what decides the speed
        order = sorted(onednn["isa"].items(),
                       key=lambda kv: (-(isa.onednn_rank(kv[0]) or -1), -kv[1]))
        isas = ", ".join(f"{k} {v}" for k, v in order)
        parts.append(f"oneDNN {isas}")
    if kernels.get("cpu_capability"):
        parts.append(f"ATen {kernels['cpu_capability']}")
    if kernels.get("inductor_vec_isa"):
        parts.append(f"inductor {kernels['inductor_vec_isa']}")
    xla = kernels.get("xla")
    if xla:
        cap = ",".join(xla["xla_cpu_max_isa"]) or "none"
        parts.append(f"XLA cap {cap}, {xla['convolutions']} precompiled convs")
    return "; ".join(parts) or "no kernel facts"

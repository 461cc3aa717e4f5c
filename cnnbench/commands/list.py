"""`cnnbench list`: the workloads (parameters, FLOPs, default batch) or the build variants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.commands import console
from cnnbench.core.options import add_command, flag


@dataclass
class ListOptions:
    json: bool = flag("--json", action="store_true", help="machine-readable output")
    filter: str | None = flag("--filter", metavar="GLOB", help="only names matching this glob")
    tag: str | None = flag("--tag", help="only workloads with this tag (small, imagenet, "
                           "residual...)")
    variants: bool = flag("--variants", action="store_true",
                          help="list the build variants instead (built-in, plus --variants-file)")
    variants_file: Path | None = flag("--variants-file", type=Path, metavar="TOML",
                                      help="custom build variants to list with --variants")


def setup_arguments(subparsers: Any) -> None:
    add_command(subparsers, "list", ListOptions, run,
                help="list workloads with parameter and FLOP counts",
                description="List the registered workloads.")


def run(options: ListOptions) -> int:
    if options.variants:
        return _variants(options.variants_file, options.json)
    return _workloads(options.filter, options.tag, options.json)


def _variants(variants_file: Path | None, as_json: bool) -> int:
    from rich.table import Table

    from cnnbench.plan.variants import VariantSet, load_variants_file

    vs = VariantSet(load_variants_file(variants_file) if variants_file else [])
    vrows: list[dict[str, Any]] = [
        {"name": v.name, "framework": v.framework, "kind": v.kind, "isa": v.isa,
         "env": v.env, "options": v.options, "python": v.python, "tox_env": v.tox_env,
         "description": v.description} for v in vs.variants]
    if as_json:
        print(json.dumps(vrows, indent=2))
        return 0
    t = Table("variant", "framework", "kind", "environment", "adapter options", "description")
    for v in vs.variants:
        where = v.python or (f"tox env {v.tox_env}" if v.tox_env else "")
        t.add_row(v.name, v.framework, v.kind, " ".join(f"{k}={x}" for k, x in v.env.items()),
                  " ".join(f"{k}={x}" for k, x in v.options.items()),
                  v.description + (f" ({where})" if where else ""))
    console().print(t)
    return 0


def _workloads(filter: str | None, tag: str | None, as_json: bool) -> int:
    from rich.table import Table

    from workloads import get_workload, list_workloads

    rows = [get_workload(n).summary() for n in list_workloads(filter, tag)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    t = Table("workload", "input", "classes", "params", "GFLOPs/img", "default batch",
              "description")
    for col in t.columns[:-1]:
        col.no_wrap = True
    for r in rows:
        t.add_row(r["name"], "x".join(map(str, r["input_shape"])), str(r["num_classes"]),
                  f"{r['params']:,}", f"{r['flops_per_image'] / 1e9:.4f}",
                  str(r["default_batch"]), r["description"])
    console().print(t)
    return 0

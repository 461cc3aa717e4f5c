"""`cnnbench env`: the machine and each framework's build facts (asked in its own process)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cnnbench.core.options import add_command, csv, flag, key_value
from cnnbench.sweep.options import pythons


@dataclass
class EnvOptions:
    frameworks: list[str] | None = flag("--frameworks", type=csv, metavar="LIST")
    python: dict[str, str] = flag("--python", factory=dict, type=key_value, action="append",
                                  metavar="FW=PATH", convert=pythons)
    json: bool = flag("--json", action="store_true")


def setup_arguments(subparsers: Any) -> None:
    add_command(subparsers, "env", EnvOptions, run,
                help="print the machine and each framework's build facts",
                description="Probe the machine and ask each framework environment (in its own "
                "process) for its build facts.")


def run(options: EnvOptions) -> int:
    from cnnbench.commands.run import expand_frameworks
    from cnnbench.core import machine
    from cnnbench.plan.envs import facts_for

    names = expand_frameworks(options.frameworks)
    rec = machine.probe()
    fw_facts = {fw: facts_for(fw, options.python) for fw in names}
    out = {"machine_id": machine.machine_id(rec), "machine": rec, "frameworks": fw_facts}
    if options.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    _print(out)
    return 0


def _print(out: dict[str, Any]) -> None:
    rec, fw_facts = out["machine"], out["frameworks"]
    cpu = rec["cpu"]
    print(f"machine   {out['machine_id']}")
    print(f"cpu       {cpu['model']} ({cpu['logical_cores']} logical, "
          f"{cpu['physical_cores']} physical, {cpu['usable_cores']} usable)")
    print(f"isa       {' '.join(cpu['isa'])}")
    print(f"memory    {rec['memory_bytes'] / 2**30:.1f} GiB")
    gpus = ", ".join(g["name"] for g in rec["gpus"]) or f"none ({rec.get('gpu_error')})"
    print(f"gpus      {gpus}" + (f" driver {rec['driver']}" if rec.get("driver") else ""))
    print(f"os        {rec['os']}, python {rec['python']}")
    for fw, f in fw_facts.items():
        print(f"\n[{fw}] {f['status']}" + (f": {f['error']}" if f.get("error") else ""))
        build: dict[str, Any] = f.get("build") or {}
        for k, v in build.items():
            print(f"  {k:24} {v}")

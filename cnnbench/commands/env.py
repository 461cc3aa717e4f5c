"""`cnnbench env`: the machine and each framework's build facts (asked in its own process)."""

from __future__ import annotations

import json
from typing import Any


def run(frameworks: list[str] | None = None, pythons: dict[str, str] | None = None,
        as_json: bool = False) -> int:
    from cnnbench.commands.run import expand_frameworks
    from cnnbench.core import machine
    from cnnbench.plan.envs import facts_for

    names = expand_frameworks(frameworks)
    rec = machine.probe()
    fw_facts = {fw: facts_for(fw, pythons or {}) for fw in names}
    out = {"machine_id": machine.machine_id(rec), "machine": rec, "frameworks": fw_facts}
    if as_json:
        print(json.dumps(out, indent=2, default=str))
        return 0
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
        build: dict[str, Any] = f.get("build") or {}  # type: ignore[assignment]
        for k, v in build.items():
            print(f"  {k:24} {v}")
    return 0

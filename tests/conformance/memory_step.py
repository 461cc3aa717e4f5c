"""One process, one measurement: the peak resident memory that training steps of a spec at a
given size and batch add over the process after the framework's import, as the worker
measures it (cnnbench.measure.memory). Run as
``python -m tests.conformance.memory_step FRAMEWORK WORKLOAD SIZE BATCH``; prints JSON."""

from __future__ import annotations

import json
import sys


def main(framework: str, workload: str, size: int, batch: int) -> dict[str, object]:
    from adapters import load_adapter
    from adapters.base import BuildOptions
    from cnnbench.measure.memory import HostMemory
    from tests.conformance.fingerprint_step import step_spec
    from workloads.reference import init_weights, synthetic_batch

    adapter = load_adapter(framework)  # the import: the baseline is taken after it
    adapter.setup(2)
    host = HostMemory()
    host.start()
    spec = step_spec(workload, size)
    x, y = synthetic_batch(spec, batch, seed=0)
    from adapters import get_info

    opts = BuildOptions(device="cpu", precision="fp32", mode="train",
                        exec_mode=get_info(framework).default_exec_mode)
    model = adapter.build(spec, init_weights(spec, seed=0), opts)
    time_steps = adapter.prepare(model, x, y)
    time_steps(2)
    return host.fields()


if __name__ == "__main__":
    fw, wl, size, batch = sys.argv[1:5]
    print(json.dumps(main(fw, wl, int(size), int(batch))))

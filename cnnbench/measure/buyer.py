"""What a buyer needs from a cell besides its throughput: the timed part of a latency cell,
and the row's memory, energy and latency fields. Pure standard library.

A ``latency`` cell is an inference cell (the adapter builds mode ``infer``) whose steps
are timed one by one (``latency.measure_latency``); every other mode runs the protocol's
rounds, with the energy meter read around each round only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnbench.core.cells import Cell
from cnnbench.measure.energy import EnergyMeter
from cnnbench.measure.latency import measure_latency
from cnnbench.measure.memory import HostMemory
from cnnbench.measure.percentiles import latency_fields
from cnnbench.measure.timing import Measurement, Protocol, RoundBudget, warm_up

LATENCY = "latency"


def build_mode(mode: str) -> str:
    """The mode the adapter builds: a latency cell is an inference model."""
    return "infer" if mode == LATENCY else mode


def timed(time_steps: Callable[[int], float], proto: Protocol, compiled: bool, mode: str,
          meter: EnergyMeter) -> Measurement:
    """``timing.measure``, with the energy meter read around each timed round (never around
    warm-up), or, for a latency cell, around each timed step."""
    if mode == LATENCY:
        return measure_latency(time_steps, proto, compiled, around=meter.around)
    w = warm_up(time_steps, proto, compiled)
    rounds = RoundBudget(w, proto)
    while not rounds.done:
        rounds.add(meter.around(lambda: time_steps(w.steps_per_round)))
    return rounds.result()


def fields(m: Measurement, cell: Cell, host: HostMemory, meter: EnergyMeter,
           device_peak_bytes: int | None) -> dict[str, Any]:
    """The row's memory, energy and (latency cells) percentile fields, read after the
    last timed round."""
    out: dict[str, Any] = host.fields()
    out["device_peak_mb"] = device_peak_bytes / 2**20 if device_peak_bytes is not None else None
    images = len(m.samples_s) * m.steps_per_round * cell.batch_size
    out.update(meter.fields(images))
    if cell.mode == LATENCY:
        out.update(latency_fields(m.samples_s))
    return out

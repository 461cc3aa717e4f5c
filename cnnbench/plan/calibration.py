"""The estimator's calibration: `calibration.toml` beside this module, read into typed tables.

The figures are data measured on one machine (the TOML file says where and how), so they live
in a file one can re-measure and edit, not in the estimator's code. Reading is strict: a
missing or unknown key is a `CalibrationError` naming the file and the table.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cnnbench.core.tomlfile import read_text

CALIBRATION_FILE = Path(__file__).with_name("calibration.toml")


class CalibrationError(ValueError):
    """The calibration file is missing, not TOML, or has missing or unknown keys."""


@dataclass(frozen=True)
class Setup:
    """Seconds before the first step: process start, import, weights, build."""

    process_s: float
    init_s_per_param: float
    build_s_per_param: float
    first_step_factor: float
    import_s: Mapping[str, float]  # framework -> s
    build_base_s: Mapping[str, float]  # framework -> s


@dataclass(frozen=True)
class Compile:
    """Graph capture / compilation per execution mode: base + per layer, x train_factor."""

    before_first_step: frozenset[str]  # modes that compile in prepare(), outside the budget
    base_s: Mapping[str, float]
    s_per_layer: Mapping[str, float]
    train_factor: Mapping[str, float]


@dataclass(frozen=True)
class Speed:
    """Steady step speed: MFU from the reference sweep and what scales it."""

    reference_peak: float
    slowdown: float
    unknown_mfu_share: float
    depthwise_mfu_share: float
    default_mfu: float
    batch_mfu_exponent: float
    gemm_efficiency: float
    min_step_s: float
    # workload -> framework -> (train, infer) images/s
    reference_images_s: Mapping[str, Mapping[str, tuple[float, float]]]
    isa_speed: Mapping[str, Mapping[str, float]]  # variant -> mode -> share of default
    exec_mode_speed: Mapping[str, Mapping[str, float]]  # framework -> exec mode -> share


@dataclass(frozen=True)
class Peaks:
    """Typical FLOP/s when no probe has been measured."""

    cpu_per_thread: float
    gpu: float
    precision_speed: Mapping[str, Mapping[str, float]]  # device kind -> precision -> x fp32
    native_bf16_cpu: Mapping[str, float]  # framework -> bf16 x fp32 on AVX512_BF16 or AMX


@dataclass(frozen=True)
class Fallback:
    """What a framework or execution mode missing from the tables gets."""

    import_s: float
    build_base_s: float
    compile_base_s: float
    compile_s_per_layer: float
    train_compile_factor: float
    exec_mode_speed: float


@dataclass(frozen=True)
class Calibration:
    setup: Setup
    compile: Compile
    speed: Speed
    peaks: Peaks
    fallback: Fallback


def _table(data: Mapping[str, Any], name: str, cls: type, source: Path) -> Any:
    table = data.get(name)
    if not isinstance(table, dict):
        raise CalibrationError(f"{source}: no [{name}] table")
    want = {f.name for f in fields(cls)}
    if set(table) != want:
        missing, unknown = sorted(want - set(table)), sorted(set(table) - want)
        raise CalibrationError(f"{source}: [{name}]: missing keys {missing}, unknown keys {unknown}")
    return cls(**table)


def parse(text: str, source: Path) -> Calibration:
    """The calibration in ``text`` (the contents of ``source``, named in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"{source}: not valid TOML ({exc})") from None
    unknown = set(data) - {f.name for f in fields(Calibration)}
    if unknown:
        raise CalibrationError(f"{source}: unknown tables {sorted(unknown)}")
    comp = _table(data, "compile", Compile, source)
    speed = _table(data, "speed", Speed, source)
    ref = {w: {fw: (v[0], v[1]) for fw, v in by_fw.items()}
           for w, by_fw in speed.reference_images_s.items()}
    return Calibration(
        setup=_table(data, "setup", Setup, source),
        compile=Compile(frozenset(comp.before_first_step), comp.base_s, comp.s_per_layer,
                        comp.train_factor),
        speed=dataclasses.replace(speed, reference_images_s=ref),
        peaks=_table(data, "peaks", Peaks, source),
        fallback=_table(data, "fallback", Fallback, source),
    )


@functools.cache
def load(path: Path = CALIBRATION_FILE) -> Calibration:
    """The calibration in ``path`` (default: the one shipped beside this module)."""
    return parse(read_text(path, "calibration", CalibrationError), path)

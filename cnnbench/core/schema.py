"""The result schema: one JSON object per cell in ``results/<machine_id>/<run_id>.jsonl``.

Rows are raw (every timed round is kept) and versioned, as pyperf and asv do, so a better
statistic later needs no re-run. Pure standard library.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

class SchemaError(ValueError):
    pass


# `cancelled`: a scheduler ended the job mid-cell (Slurm's CANCELLED or PREEMPTED), which
# says nothing about the cell; the error names the job and its end state.
# `inaccurate`: the tuner's accuracy gate refused the configuration (see `accuracy`).
STATUSES = ("ok", "unsupported", "unavailable", "error", "crashed", "timeout", "oom",
            "cancelled", "inaccurate")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    meaning: str
    default: Any = None  # what a row holds before the worker reports (copied per row)


_FLAGS = ("ci_wide", "above_peak", "time_not_growing", "warmup_unsteady", "busy_machine",
          "over_budget", "no_peak", "param_count_mismatch", "threads_mismatch", "cap_ignored",
          "p99_interval_short")

# The one definition of a row, as "name | type | meaning" lines (an indented line goes on).
# The runner's blank row, the keys it takes from a worker's record and the README's schema
# table (``python -m cnnbench.core.schema``) all come from here. Defaults other than None are in
# _DEFAULTS.
_TABLE = """
schema_version | int | version of this row layout (readers migrate older rows and refuse newer ones)
run_id | str | one `cnnbench run` invocation
machine_id | str | the machine, as in `results/<machine_id>/machine.json`
cell_id | str | stable key of the cell (used by `--resume`)
framework | str | adapter name: `pytorch`, `tensorflow`, `jax`, `mxnet`, `null`
framework_version | str/null | the framework's own version string
variant | str | build variant: `default`, an ISA ladder level, a configuration variant, an
    alternative build or a custom build
variant_kind | str/null | what the variant is: `default`, `isa` (the same build capped to a ladder level),
    `config`, `build` (a built-in alternative build in its own environment) or `custom` (declared in
    a variants file)
isa_level | str/null | the ISA ladder level the variant emulates (`x86-64-v2`, `avx`, `x86-64-v3`,
    `x86-64-v4`, `avx512-vnni`, `avx512-bf16`, `amx`), or null
device | str | `cpu`, `gpu:N`, or a device set run data parallel: `gpu:0+1`, `gpu:all`,
    `cpu*N` (N simulated CPU devices sharing the same cores)
device_name | str/null | CPU model or GPU name
n_devices | int | devices used, over all nodes (data parallel when > 1); 0 for `gpu:all` on a
    machine without GPUs
per_device_batch | int/null | images per device per step (`batch_size / n_devices`)
scaling | str/null | `weak` (the per-device batch was fixed: `--batch-sizes` is per device) or
    `strong` (the global batch was fixed); null on one device, the baseline of both
simulated | bool | the devices are simulated on the same CPU cores (`cpu*N`): their figures
    measure data-parallel overhead, never hardware scaling
n_nodes | int | machines (launcher processes) the cell ran on; every node's replicas are in this one row
replicas | int/null | data-parallel replicas (one per device)
batch_norm | str/null | how batch norm statistics were computed with several replicas:
    `per-replica` (each normalises its own shard) or `synced` (over the global batch); null
    without batch norm or on one device
replica_samples_s | list[list[float]]/null | per-step seconds of every timed round, one list
    per replica process (PyTorch DDP ranks, JAX processes, TensorFlow workers; the round's time
    in `samples_s` is the slowest rank's); null where one process drives every replica
nodes | list[dict]/null | the nodes of a multi-node cell started by the Slurm launcher, each as it
    reports itself: Slurm `node` name, `hostname`, `machine_id`, `gpus`, `gpu_interconnect`,
    `nics` (network interfaces that are up, with `speed_mbps` and `mtu`) and `infiniband` ports
    (`rate`, `state`); null otherwise
workload | str | workload spec name
mode | str | `train` (forward, loss, backward, SGD with momentum 0.9), `infer` (eval forward,
    no gradients), `latency` (eval forward, every step timed on its own and ending with a device
    sync: `samples_s` holds one entry per step), or `peak` (a GEMM probe: `workload` is `gemm`,
    `batch_size` is n, `flops_per_image` is 2n³ per product)
batch_size | int | images per step (global batch)
precision | str | `fp32`, `tf32`, or mixed `bf16` / `fp16`
math_mode | str/null | what the framework's fp32 operations computed in, from its own settings after
    the build: `fp32`, or `reduced: ` and the settings that allow less (e.g.
    `ONEDNN_DEFAULT_FPMATH_MODE=BF16`, a tf32 cell's switches); adapters switch what their API
    controls to strict fp32 (settings in `build.math`)
exec_mode | str | e.g. `eager`, `compiled`, `graph`, `xla`, `jit`, `hybrid`
threads | int/null | intra-op threads requested for the cell
threads_set | dict | threads in force, as the framework reports them after pinning: `intra_op`, `inter_op`
status | str | one of {statuses}
error | str/null | one-line reason when not ok
samples_s | list[float] | per-step seconds of every timed round (raw)
steps_per_round | int/null | steps in each round
median_step_s | float/null | median of `samples_s`
images_per_s | float/null | `batch_size / median_step_s`
ci95_low | float/null | lower 95% bound of images/s (from the median's CI)
ci95_high | float/null | upper 95% bound of images/s
rel_ci | float/null | half-width of the CI relative to the median
ci_target_met | bool/null | whether the CI reached the target within the budget
build_s | float/null | seconds to build the model and load its weights
first_step_s | float/null | the first step alone (compilation, graph capture); not part of the budget
compile_s | float/null | ahead-of-time compilation measured apart (JAX `jit`: `lower().compile()`)
lower_s | float/null | tracing and lowering before `compile_s` (JAX `jit`)
warmup_steps | int/null | steps run to reach steady state
warmup_s | float/null | seconds spent warming up
warmup_steady | bool/null | whether the step time stopped drifting in warm-up
measure_s | float/null | seconds of this cell's own timed rounds
budget_s | float | the cell's budget for warm-up plus timed rounds
flags | list[str] | warnings: {flags}
achieved_flops_per_s | float/null | `flops_per_image` × images/s × (3 train, 1 infer)
peak_flops_per_s | float/null | the device's measured GEMM peak at this precision and thread count
mfu | float/null | `achieved_flops_per_s / peak_flops_per_s`
load_start | list[float]/null | 1/5/15-minute load average when the cell started
load_end | list[float]/null | load average when the cell ended
busy | list[str] | other processes using the CPU when the cell started (and, marked `(at end)`, when it ended)
repeat | int | repeat index with `--repeat` (0 for the first)
params | int | trainable parameters of the spec (analytic)
model_params | int/null | trainable parameters as the framework counts them
flops_per_image | int | forward FLOPs per image (2 × multiply-adds)
started_at | str | UTC ISO-8601 start of the cell
wall_s | float | wall time of the whole worker process
build | dict | the framework's build facts (version, ISA, oneDNN, CUDA, ...)
kernels | dict | the kernels that ran, from a probe of one step (CPU cells): `onednn` (oneDNN's verbose
    log reduced to executions per ISA, `top_isa`, `max_isa`, version), `cpu_capability` (PyTorch's
    ATen kernel set), `inductor_vec_isa` (compiled PyTorch), `xla` (the cap XLA took, preferred
    vector width, precompiled convolutions and a `note`), `cap_ignored` (why a requested cap did not
    take effect), `probed_in` (a later repeat's copy: the cell id whose probe ran), or `error`
env | dict | environment variables set for the cell (variant, threads)
peak_rss_mb | float/null | the worker's peak resident memory (the kernel's high-water mark `VmHWM`,
    reset after the framework's import; read after the last round, so nothing samples during them)
baseline_rss_mb | float/null | the worker's resident memory after the framework's import, before the build
rss_added_mb | float/null | `peak_rss_mb - baseline_rss_mb`: what the cell (model, batch, steps) added;
    null where the high-water mark could not be reset
peak_vm_mb | float/null | the worker's peak address space (`VmPeak`): what `--memory-limit-mb`'s
    `RLIMIT_AS` caps, reserved regions included
device_peak_mb | float/null | GPU cells: the framework's own peak of allocated device memory since
    the build (`torch.cuda.max_memory_allocated`, TensorFlow's `get_memory_info()["peak"]`, JAX's
    `peak_bytes_in_use` (never reset: it includes the build), MXNet's memory in use after the rounds)
memory_limit_mb | int/null | the worker's memory limit (`--memory-limit-mb`, or a fit search's)
memory_limit_kind | str/null | how the limit was enforced: `address-space` (`RLIMIT_AS`) or
    `resident` (the runner watches the worker's RSS and kills it past the limit: status `oom`)
latency_p50_s | float/null | latency cells: the median step (order statistic ⌈0.5 n⌉ of `samples_s`)
latency_p50_low_s | float/null | lower end of its distribution-free 95% interval (binomial order
    statistics); null where the cell ran too few steps for it
latency_p50_high_s | float/null | upper end of that interval
latency_p90_s | float/null | 90th percentile step time
latency_p90_low_s | float/null | its interval's lower end
latency_p90_high_s | float/null | its interval's upper end
latency_p99_s | float/null | 99th percentile step time (its interval needs at least 368 steps)
latency_p99_low_s | float/null | its interval's lower end
latency_p99_high_s | float/null | its interval's upper end (null, and flag `p99_interval_short`, with fewer
    than 368 steps)
latency_p999_s | float/null | 99.9th percentile step time (its interval needs at least 3,688 steps)
latency_p999_low_s | float/null | its interval's lower end
latency_p999_high_s | float/null | its interval's upper end
energy_j | float/null | joules the counters measured over the timed rounds (or latency steps) only
energy_s | float/null | seconds those counters were read across
joules_per_image | float/null | `energy_j` / images processed in the timed rounds
mean_watts | float/null | `energy_j / energy_s`
energy_source | str/null | the counters read: `rapl:package-N`, `rapl:dram` (Linux powercap), `nvml:gpuN`
energy_reason | str/null | why no counter was readable (no powercap on a virtual machine, root-only
    `energy_uj`, no NVML), when `energy_j` is null
fit_try | bool | the row is one try of a largest-batch search (`--fit`): its status says whether the
    batch fitted (`ok`) or not (`oom`)
python | str/null | interpreter that ran the worker
options | dict | adapter options: the variant's, overridden by `--adapter-opt`
stage | str/null | `cnnbench tune` only: where in the search the row was timed: `rung0`, `rung1`, ...
    (successive halving's short runs, longer at each rung) or `final` (the fresh-process runs of the
    winner, runner-up and default); null in a sweep
process_slot | int/null | `cnnbench tune`'s early rungs only: the cell ran as candidate N (0-based) of
    several in one worker process, which imported the framework once; memory is not read there
    (an earlier candidate's allocations would count). Null: a fresh process of its own
accuracy | dict/null | `cnnbench tune` only, on a candidate's first run: the accuracy gate run on the
    timed model before timing (`check` `forward` or `sgd_step`, `batch` (the cell's), `error`
    (max relative error against the oracle), `tolerance` (of the precision), `ok`, `check_s`
    (a compiled mode's compile included)); a failed gate is status `inaccurate`
"""
_DEFAULTS: dict[str, Any] = {
    "schema_version": SCHEMA_VERSION, "n_devices": 1, "simulated": False, "n_nodes": 1,
    "threads_set": {}, "status": "error",
    "samples_s": [], "flags": [], "busy": [], "repeat": 0, "wall_s": 0.0, "build": {},
    "env": {}, "options": {}, "kernels": {}, "fit_try": False,
}


def _fields() -> tuple[Field, ...]:
    subs = {"statuses": ", ".join(f"`{s}`" for s in STATUSES),
            "flags": ", ".join(f"`{f}`" for f in _FLAGS)}
    rows: list[list[str]] = []
    for line in _TABLE.strip().splitlines():
        if line.startswith("    "):  # a long meaning goes on
            rows[-1][2] += " " + line.strip()
        else:
            rows.append([part.strip() for part in line.split(" | ", 2)])
    return tuple(Field(n, t, m.format(**subs), _DEFAULTS.get(n)) for n, t, m in rows)


FIELDS: tuple[Field, ...] = _fields()
REQUIRED = tuple(f.name for f in FIELDS)


def blank_row(**values: Any) -> dict[str, Any]:
    """A row with every field at its default (fresh containers), then ``values``."""
    unknown = set(values) - set(REQUIRED)
    if unknown:
        raise SchemaError(f"not schema fields: {sorted(unknown)}")
    row = {f.name: copy.deepcopy(f.default) for f in FIELDS}
    row.update(values)
    return row


def markdown_table() -> str:
    """The README's schema table (``python -m cnnbench.core.schema`` prints it)."""
    lines = ["| field | type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.type} | {f.meaning} |" for f in FIELDS]
    return "\n".join(lines)


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def dumps_row(row: dict[str, Any]) -> str:
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise SchemaError(f"row lacks {missing}")
    if row["status"] not in STATUSES:
        raise SchemaError(f"bad status {row['status']!r}")
    return json.dumps(clean(row), sort_keys=False, allow_nan=False, separators=(",", ":"))


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row as one line and fsync it: a crash can at worst truncate that line."""
    line = dumps_row(row) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # A writer died mid-line: end that fragment so it stays one skipped line
            # instead of corrupting the row we are about to write.
            line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


_REQUIRED_SET = frozenset(REQUIRED)
# Fields added after version 1's first rows whose absence means something other than null.
_ADDED_LATER: dict[str, Any] = {"fit_try": False}


def migrate(row: dict[str, Any]) -> dict[str, Any]:
    """Bring an older row up to SCHEMA_VERSION; refuse a newer one."""
    v = row.get("schema_version")
    if not isinstance(v, int):
        raise SchemaError("no integer schema_version")
    if v > SCHEMA_VERSION:
        raise SchemaError(
            f"schema_version {v} is newer than this cnnbench understands ({SCHEMA_VERSION});"
            " upgrade cnnbench to read it"
        )
    # Version 1 is the first; future migrations go here, oldest first.
    if not row.keys() >= _REQUIRED_SET:
        for key in REQUIRED:
            row.setdefault(key, _ADDED_LATER.get(key))
    return row


def _loader() -> Callable[[bytes], Any]:
    """orjson's parser where it is installed (several times faster on 100,000 rows, and it
    takes the line's bytes as they are), else the standard one (framework envs)."""
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


def _loads(raw: bytes, fast: Callable[[bytes], Any]) -> Any:
    """One line's JSON: the fast parser first; the standard one for what it refuses but
    Python writes (NaN) or what is not UTF-8 (decoded with replacement characters)."""
    try:
        return fast(raw)
    except ValueError:  # orjson.JSONDecodeError and json's are ValueErrors
        return json.loads(raw.decode("utf-8", errors="replace"))


def iter_rows(path: Path, problems: list[str]) -> Iterator[dict[str, Any]]:
    """Rows of one JSONL file; damaged lines are skipped and described in ``problems``."""
    fast = _loader()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                row = _loads(line, fast)
            except json.JSONDecodeError as exc:
                last = not raw.endswith(b"\n")
                what = "truncated last line" if last else "corrupt line"
                problems.append(f"{path}:{lineno}: {what} skipped ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{path}:{lineno}: not a JSON object, skipped")
                continue
            try:
                yield migrate(row)
            except SchemaError as exc:
                problems.append(f"{path}:{lineno}: {exc}")


# A reference bundle: results measured on another machine (a lent GPU machine, the README's
# bundle) and kept to compare with. A file named REFERENCE_MARKER (it says what the bundle is)
# in a machine's folder, or in the folder above that holds several bundles
# (``results/reference/REFERENCE.md``), makes a bundle of it. A marker travels with a copied
# bundle, which a path rule would not, and the search stops one folder up so that an
# unrelated REFERENCE.md higher up never turns a user's own results into references.
REFERENCE_MARKER = "REFERENCE.md"


def reference_root(folder: Path) -> Path | None:
    """The folder whose REFERENCE_MARKER makes ``folder`` part of a reference bundle
    (``folder`` itself or its parent), or None."""
    for d in (folder, folder.parent):
        if (d / REFERENCE_MARKER).is_file():
            return d
    return None


def _expand(p: Path, with_reference: bool, root: Callable[[Path], Path | None],
            skipped: dict[Path, list[Path]]) -> list[Path]:
    """One named path's files; the reference bundles' files of a folder that does not lie
    in one go to ``skipped`` (by bundle) instead, unless ``with_reference``."""
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no such results file or folder: {p}")
    found = sorted(q for q in p.rglob("*.jsonl") if q.is_file() and not q.is_symlink())
    if with_reference or root(p) is not None:
        return found
    kept = []
    for q in found:
        r = root(q.parent)
        if r is None:
            kept.append(q)
        else:
            skipped.setdefault(r, []).append(q.resolve())
    return kept


def result_files(paths: Iterable[Path], *, with_reference: bool = False,
                 problems: list[str] | None = None,
                 left_out: dict[Path, int] | None = None) -> list[Path]:
    """Expand folders to the *.jsonl files under them (sorted, no symlinks followed out),
    each file once however often it is named (said once in ``problems``).

    A folder's reference bundles (``reference_root``) are left out, with the number of
    their files per bundle in ``left_out``, unless ``with_reference`` or the folder lies in
    a bundle itself: naming ``results/reference/`` asks for them, naming ``results/`` does
    not. A file named on its own is always read."""
    out: list[Path] = []
    seen: set[Path] = set()
    again: list[Path] = []
    skipped: dict[Path, list[Path]] = {}
    root = functools.lru_cache(maxsize=None)(reference_root)
    for p in paths:
        for q in _expand(p, with_reference, root, skipped):
            key = q.resolve()
            if key in seen:
                again.append(q)
            else:
                seen.add(key)
                out.append(q)
    if again and problems is not None:
        more = f" and {len(again) - 1} more files" if len(again) > 1 else ""
        problems.append(f"{again[0]}{more} named more than once (overlapping folders or "
                        "paths): each file read once")
    if left_out is not None:
        for r, files in skipped.items():
            n = len(set(files) - seen)  # a bundle named as well is read, not left out
            if n:
                left_out[r] = n
    return out


if __name__ == "__main__":
    print(markdown_table())

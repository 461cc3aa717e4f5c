"""The worker: runs ONE cell in its own process, inside one framework's environment.

Started by the runner as ``python -m cnnbench.measure.worker --cell CELL.json --out RECORD.json``.
The record goes to the ``--out`` file (written atomically), never to stdout, which belongs to
the framework's chatter. Every failure the worker can see becomes a status with a one-line
reason; failures it cannot see (SIGKILL, a hang) are recorded by the runner.

Imports here are standard library, numpy, workloads and adapters only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from cnnbench.core.cells import Cell, CellError
from cnnbench.core.files import write_json_atomic
from cnnbench.measure import buyer
from cnnbench.measure.energy import EnergyMeter, meter_for
from cnnbench.measure.memory import HostMemory
from cnnbench.measure.timing import Measurement, Protocol, RoundBudget, warm_up

TimeSteps = Callable[[int], float]
# --check: pass the accuracy gate (cnnbench.measure.accuracy) before the cell is timed (a
# --cells item may say otherwise: its "check").
ACCURACY_CHECK = False
# --no-memory: neither reset nor read any memory counter (the side-by-side check that reading
# them does not slow the timed rounds: tests/perf/test_memory_sidebyside.py).
MEASURE_MEMORY = True


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


class Control:
    """Line-delimited JSON over two inherited pipe fds: the runner drives the rounds."""

    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.rd = os.fdopen(fd_in, "r", encoding="utf-8")
        self.wr = os.fdopen(fd_out, "w", encoding="utf-8")

    def send(self, msg: dict[str, Any]) -> None:
        self.wr.write(json.dumps(msg) + "\n")
        self.wr.flush()

    def recv(self) -> str:
        line = self.rd.readline()
        if not line:
            raise EOFError("the runner closed the control pipe")
        return line.strip()


def _driven_rounds(time_steps: TimeSteps, proto: Protocol, compiled: bool,
                   control: Control, meter: EnergyMeter) -> Measurement:
    """Warm up, then time one round per "round" command until the protocol's stopping rule
    says done (or "stop"): the runner interleaves the rounds of several workers."""
    w = warm_up(time_steps, proto, compiled)
    control.send({"ready": w.steps_per_round})
    rounds = RoundBudget(w, proto)
    while control.recv() == "round":
        rounds.add(meter.around(lambda: time_steps(w.steps_per_round)))
        control.send({"t": rounds.samples[-1], "done": rounds.done})
    return rounds.result()


def _refusal(cell: Cell) -> str | None:
    """Why the adapter table says this cell cannot run, before any framework is imported."""
    from adapters import get_info

    info = get_info(cell.framework)
    if cell.exec_mode not in info.exec_modes:
        return (f"{info.name} has no execution mode {cell.exec_mode!r} "
                f"(it has {', '.join(info.exec_modes)})")
    if cell.precision not in info.precisions:
        return f"{info.name} does not support precision {cell.precision!r}"
    if cell.devices.kind not in info.device_kinds:
        return f"{info.name} does not run on {cell.devices.kind}"
    n = _replicas(cell)
    if n > 1 and cell.batch_size % n:
        return f"the global batch {cell.batch_size} does not split evenly over {n} replicas"
    return None


def _replicas(cell: Cell) -> int:
    """Data-parallel replicas of the cell: its devices, times the nodes under torchrun, the
    workers of a TensorFlow cell under TF_CONFIG (one CPU device each), or the processes of
    a JAX job times each one's devices."""
    from adapters.base import Unsupported, dist_env, tf_workers

    dist = dist_env()
    if dist is not None:
        return dist[1]
    if cell.framework == "tensorflow":
        try:
            workers = tf_workers()
        except Unsupported:
            workers = None  # the adapter refuses the cell, with the reason
        if workers is not None:
            return workers[1]
    # gpu:all counts one here: the adapter finds how many GPUs it has.
    return max(1, cell.n_devices) * _jax_processes(cell)


def _jax_processes(cell: Cell) -> int:
    """Processes of a multi-process JAX cell (the adapter's rendezvous variables; under srun
    JAX counts Slurm's tasks), else 1."""
    if cell.framework != "jax" or not os.environ.get("CNNBENCH_COORDINATOR"):
        return 1
    n = os.environ.get("CNNBENCH_NUM_PROCESSES") or os.environ.get("SLURM_NTASKS") or "1"
    return int(n) if n.isdigit() else 1


def _process_rank() -> tuple[int, bool]:
    """(this process's rank in a multi-process cell, whether it is the first on its node):
    torchrun's variables, else the rank the adapters' rendezvous settings give (JAX and
    TensorFlow run one process per node); (0, True) for one process."""
    from adapters.base import dist_env

    dist = dist_env()
    if dist is not None:
        return dist[0], dist[2] == 0
    names = ["CNNBENCH_PROCESS_ID"] + (["SLURM_PROCID"] if os.environ.get("CNNBENCH_SRUN")
                                       else [])
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value), True
    return 0, True


def _math_mode(adapter: Any, rec: dict[str, Any]) -> None:
    """What the cell's fp32 math computes in, read after the build (which may set a switch,
    as a tf32 cell does): the row's math_mode, and the settings in its build facts."""
    math = adapter.math_facts()
    rec["math_mode"] = math["math_mode"]
    rec["build"] = {**rec.get("build", {}), **math}


def _prepare(adapter: Any, cell: Cell, rec: dict[str, Any], check: bool
             ) -> tuple[TimeSteps, bool]:
    """Set the adapter up, build the cell's model (or GEMM probe), check it against the
    oracle if ``check``, and return (time_steps, whether the execution mode compiles).
    Facts go into ``rec``."""
    import numpy as np

    from adapters.base import BuildOptions
    from workloads import get_workload
    from workloads.reference import init_weights, synthetic_batch

    adapter.setup_devices(cell.device)
    rec["threads_set"] = adapter.setup(cell.threads)
    rec["build"] = adapter.build_facts()
    rec["device_name"] = adapter.device_name(cell.device)
    from cnnbench.measure.accuracy import gate, with_check_sgd

    opts = BuildOptions(device=cell.device, precision=cell.precision, exec_mode=cell.exec_mode,
                        mode=buyer.build_mode(cell.mode), options=dict(cell.options))
    if check:  # the gate's SGD step is the reference's: build the timed model with it
        opts = with_check_sgd(opts)
    if cell.mode == "peak":  # the device's GEMM probe, not a workload
        time_steps = adapter.prepare_gemm(cell.batch_size, opts)
        _math_mode(adapter, rec)
        return time_steps, False
    spec = get_workload(cell.workload)
    weights = init_weights(spec, seed=0)
    x, y = synthetic_batch(spec, cell.batch_size, seed=0)
    t0 = time.perf_counter()
    model = adapter.build(spec, weights, opts)
    del weights
    rec["build_s"] = time.perf_counter() - t0
    if MEASURE_MEMORY:
        adapter.reset_device_peak(cell.device)
    _math_mode(adapter, rec)
    rec["model_params"] = adapter.num_params(model)
    time_steps = adapter.prepare(model, np.ascontiguousarray(x), y)
    if check:  # the tuner's accuracy gate, on the timed model, before anything is timed
        gate(adapter, cell, model, cell.batch_size, rec)
    rec.update(adapter.prepare_facts(model))
    if _replicas(cell) > 1 and any(layer.op == "batchnorm" for layer in spec.layers):
        rec["batch_norm"] = adapter.dp_batch_norm
    return time_steps, cell.exec_mode != "eager"


def run_cell(cell: Cell, proto: Protocol, control: Control | None = None,
             check: bool | None = None) -> dict[str, Any]:
    """Build, (check,) warm up and time one cell. Never raises: failures become a status.
    ``check``: pass the accuracy gate first (default: the worker's ``--check``)."""
    from adapters import load_adapter
    from adapters.base import Unsupported
    from cnnbench.measure.accuracy import Inaccurate

    reason = _refusal(cell)
    if reason:
        return {"status": "unsupported", "error": reason}
    try:
        adapter = load_adapter(cell.framework)
    except ImportError as exc:
        return {"status": "unavailable", "error": f"framework not importable: {one_line(exc)}"}
    rec: dict[str, Any] = {"status": "error", "error": None}
    try:
        rec["framework_version"] = adapter.framework_version()
        host = HostMemory(enabled=MEASURE_MEMORY)
        host.start()  # after the framework's import, before the build
        time_steps, compiled = _prepare(
            adapter, cell, rec, ACCURACY_CHECK if check is None else check)
        if adapter.dp_rank() != 0:
            # Rank 0 decides every round (the protocol's stopping rule) and reports; the
            # other ranks of a data-parallel cell run the rounds it asks for.
            adapter.dp_follow()
            return {"status": "ok", "follower": True}
        meter = meter_for(cell.device)
        m = (buyer.timed(time_steps, proto, compiled, cell.mode, meter) if control is None
             else _driven_rounds(time_steps, proto, compiled, control, meter))
        adapter.dp_release()
        rec.update(m.to_dict(), status="ok")
        peak = adapter.device_peak_bytes(cell.device) if MEASURE_MEMORY else None
        rec.update(buyer.fields(m, cell, host, meter, peak))
        rec.update(adapter.dp_facts(len(m.samples_s)))
    except Unsupported as exc:
        rec.update(status="unsupported", error=str(exc))
    except Inaccurate as exc:
        rec.update(status="inaccurate", error=str(exc))
    except Exception as exc:  # KeyboardInterrupt and SystemExit are not a cell's status
        traceback.print_exc(file=sys.stderr)  # full detail goes to the cell's log
        oom = adapter.is_oom(exc) or isinstance(exc, MemoryError)
        rec.update(status="oom" if oom else "error", error=one_line(exc))
    return rec


def _probe_env(framework: str, dump_dir: Path) -> None:
    """Turn on what tells which kernels ran, before the framework is imported: oneDNN's
    verbose log under each name its versions read (v3 ONEDNN_, v1-v2 DNNL_, v0 MKLDNN_),
    and for JAX, XLA's dump of what it compiled."""
    for var in ("ONEDNN_VERBOSE", "DNNL_VERBOSE", "MKLDNN_VERBOSE"):
        os.environ[var] = "1"
    if framework == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_dump_to={dump_dir}".strip()


def _dump_texts(dump_dir: Path) -> dict[str, str]:
    keep = (".debug_options", "cpu_after_optimizations.txt", ".ir-with-opt.ll")
    return {f.name: f.read_text(errors="replace") for f in sorted(dump_dir.glob("*"))
            if f.is_file() and f.name.endswith(keep)}


def _flags() -> frozenset[str]:
    """The CPU's flags, to rank ISA names newer than cnnbench knows; none where they cannot
    be read (py-cpuinfo, the fallback, is not in a framework environment)."""
    from cnnbench.core.machine import cpu_flags

    try:
        return cpu_flags()
    except ImportError:
        return frozenset()


def probe_kernels(cell: Cell) -> dict[str, Any]:
    """Build the cell and run two steps (the first compiles) with oneDNN's verbose log going
    to a file instead of stdout, then reduce the log (and XLA's dump) to what ran."""
    import ctypes
    import tempfile

    from adapters import load_adapter
    from cnnbench.measure.kernels import parse_onednn_verbose, parse_xla_dump

    with tempfile.TemporaryDirectory(prefix="cnnbench-probe-") as tmp:
        dump_dir, log = Path(tmp) / "xla", Path(tmp) / "stdout.txt"
        _probe_env(cell.framework, dump_dir)
        sys.stdout.flush()
        saved = os.dup(1)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)  # oneDNN prints with C stdio to fd 1
        os.close(fd)
        out: dict[str, Any] = {}
        try:
            adapter = load_adapter(cell.framework)
            rec: dict[str, Any] = {}
            time_steps, _ = _prepare(adapter, cell, rec, check=False)
            time_steps(1)
            time_steps(1)
            out.update(adapter.kernel_facts(cell.to_dict()))
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            out["error"] = one_line(exc)
        finally:
            sys.stdout.flush()
            ctypes.CDLL(None).fflush(None)  # C stdio buffers a file fully
            os.dup2(saved, 1)
            os.close(saved)
        onednn = parse_onednn_verbose(log.read_text(errors="replace"), _flags())
        if onednn is not None:
            out["onednn"] = onednn
        if dump_dir.is_dir():
            out["xla"] = parse_xla_dump(_dump_texts(dump_dir))
    out["steps"] = 2
    return out


def facts(framework: str) -> dict[str, Any]:
    from adapters import load_adapter

    try:
        adapter = load_adapter(framework)
    except ImportError as exc:
        return {"status": "unavailable", "error": one_line(exc)}
    try:
        build = adapter.build_facts()
        try:
            build["compiler"] = adapter.compiler_facts()
        except Exception as exc:  # a compiler that cannot start says so, and no more
            build["compiler"] = {"error": one_line(exc)}
        return {"status": "ok", "build": build, "python": sys.executable}
    except Exception as exc:
        return {"status": "error", "error": one_line(exc)}


def _exit_with_parent() -> None:
    """Leave when the runner dies (we run in our own session, so no signal reaches us):
    an orphaned worker must not keep a GPU or the CPU busy under the next sweep. The runner
    names itself in CNNBENCH_RUNNER_PID: a runner killed before this line runs has already
    left us to init, and our parent then is not the one to watch for."""
    import threading

    # Under torchrun (data parallel) the runner is our grandparent: torchrun's agent, our
    # parent, is its child. Both links must hold.
    agent = os.getppid() if "TORCHELASTIC_RUN_ID" in os.environ else None
    default = os.getppid() if agent is None else (_parent_of(agent) or 1)
    parent = int(os.environ.get("CNNBENCH_RUNNER_PID") or default)

    def orphaned() -> bool:
        if agent is None:
            return os.getppid() != parent
        return os.getppid() != agent or _parent_of(agent) != parent

    if orphaned():
        os._exit(3)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if orphaned():
                os._exit(3)

    threading.Thread(target=watch, name="cnnbench-parent-watch", daemon=True).start()


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _dist() -> tuple[int, int, int] | None:
    from adapters.base import dist_env

    return dist_env()


def read_cell_file(path: Path) -> tuple[Cell, Protocol | None]:
    """The cell of a cell file, typed and checked on arrival (`Cell.from_dict`), and its
    timing protocol where the file has one (a kernel probe's has none). A file that is not
    a cell is a `CellError` with one line saying why."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CellError(f"cannot read it: {one_line(exc)}") from None
    if not isinstance(payload, dict) or "cell" not in payload:
        raise CellError("expected a JSON object with a 'cell' (and a 'protocol')")
    cell = Cell.from_dict(payload["cell"])
    if payload.get("protocol") is None:
        return cell, None
    try:
        return cell, Protocol.from_dict(payload["protocol"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise CellError(f"bad protocol: {one_line(exc)}") from None


def run_cells(cells_file: Path, out_dir: Path) -> None:
    """Several cells of one framework environment, one after another in this process (the
    tuner's early rungs: one import for many candidates). Cell i's record goes to
    ``out_dir/i.json`` as soon as it is done, so after a crash or a hang the runner knows
    that the first cell without a record was running, and starts a new process for the rest.
    Memory is not read (the process's peak would include earlier candidates)."""
    import gc

    from adapters import load_adapter

    global MEASURE_MEMORY
    MEASURE_MEMORY = False
    payload = json.loads(cells_file.read_text(encoding="utf-8"))
    for i, item in enumerate(payload):
        cell, proto = Cell.from_dict(item["cell"]), Protocol.from_dict(item["protocol"])
        rec = run_cell(cell, proto, check=item.get("check"))
        rec["python"], rec["process_slot"] = sys.executable, i
        write_json_atomic(out_dir / f"{i}.json", rec)
        with contextlib.suppress(Exception):  # a framework that is not importable
            load_adapter(cell.framework).between_cells()
        gc.collect()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cnnbench.measure.worker")
    p.add_argument("--cell", type=Path)
    p.add_argument("--cells", type=Path, help="a JSON list of cells to run in this process")
    p.add_argument("--out-dir", type=Path, help="with --cells: where each cell's record goes")
    p.add_argument("--facts", metavar="FRAMEWORK")
    p.add_argument("--out", type=Path)
    p.add_argument("--memory-limit-mb", type=int, default=0)
    p.add_argument("--control", metavar="IN,OUT", help="pipe fds: the runner drives the rounds")
    p.add_argument("--kernels", action="store_true",
                   help="probe which kernels one step of --cell runs (oneDNN verbose, XLA dump)")
    p.add_argument("--check", action="store_true",
                   help="check the cell against the oracle before timing it (cnnbench tune)")
    p.add_argument("--no-memory", action="store_true",
                   help="read no memory counter (to show side by side that reading them is free)")
    args = p.parse_args(argv)
    if args.cells is not None:
        if args.out_dir is None:
            p.error("--cells needs --out-dir")
    elif args.out is None:
        p.error("--out is required")
    elif args.cell is None and not args.facts:
        p.error("one of --cell, --cells and --facts is required")
    return args


def _exit(code: int) -> NoReturn:
    """Skip interpreter teardown: some frameworks hang or crash in atexit handlers, and the
    record is already safe on disk."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    global ACCURACY_CHECK, MEASURE_MEMORY
    ACCURACY_CHECK, MEASURE_MEMORY = args.check, not args.no_memory
    _exit_with_parent()
    if args.memory_limit_mb:
        lim = args.memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    if args.facts:
        write_json_atomic(args.out, facts(args.facts))
        return 0
    if args.cells is not None:
        run_cells(args.cells, args.out_dir)
        _exit(0)
    try:
        cell, proto = read_cell_file(args.cell)
        if proto is None and not args.kernels:
            raise CellError("it has no 'protocol' to time the cell with")
    except CellError as exc:
        print(f"cnnbench.measure.worker: bad cell file {args.cell}: {exc}", file=sys.stderr)
        return 2
    if args.kernels or proto is None:
        write_json_atomic(args.out, probe_kernels(cell))
        _exit(0)
    control = None
    if args.control:
        fd_in, fd_out = (int(v) for v in args.control.split(","))
        control = Control(fd_in, fd_out)
    _record(args.out, run_cell(cell, proto, control))
    return 0


def _record(out: Path, rec: dict[str, Any]) -> NoReturn:
    """Write the cell's record (rank 0's; another node's first rank says only that its part
    ran) and leave."""
    rec["python"] = sys.executable
    rank, first_on_node = _process_rank()
    if rank == 0:
        write_json_atomic(out, rec)
    elif first_on_node and not os.environ.get("CNNBENCH_SRUN"):
        # The first rank of another node: rank 0's node records the row, this node's runner
        # only learns that its part ran. (Under srun one runner started every node, and
        # they share the record's file: only rank 0 writes.)
        write_json_atomic(out, {"follower": True, "status": rec["status"],
                                "error": rec.get("error")})
    if (_dist() is not None or rank or os.environ.get("CNNBENCH_SRUN")) and rec["status"] != "ok":
        # torchrun (and srun --kill-on-bad-exit) end the other ranks, maybe waiting in a
        # collective, when one fails.
        _exit(1)
    _exit(0)


if __name__ == "__main__":
    sys.exit(main())

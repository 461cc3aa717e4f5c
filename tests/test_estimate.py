"""Wall-time estimates and the ETA: against the timing protocol on a fake clock, never a
real time."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import FRAMEWORKS
from cnnbench.core.cells import Cell
from cnnbench.measure.timing import Protocol, measure
from cnnbench.plan import calibration
from cnnbench.plan import estimate as est
from cnnbench.plan.presets import DEFAULT_PLAN, FULL_PLAN
from cnnbench.plan.probes import gemm_n, probe_cells
from cnnbench.sweep import eta as eta_mod
from workloads import WorkloadSpec, get_workload, list_workloads

PEAK_2CORE = {("cpu", 2, "fp32"): 170e9}
MEASURED_FULL_SWEEP_MIN = 56  # `tox -e bench` with no arguments on 2 cores, before this module


def cell(fw: str = "pytorch", workload: str = "resnet20", mode: str = "train", batch: int = 32,
         exec_mode: str | None = None, **kw: object) -> Cell:
    defaults = {"pytorch": "eager", "tensorflow": "graph", "jax": "jit", "mxnet": "hybrid",
                "null": "eager"}
    return Cell(fw, "default", "cpu", workload, mode, batch, "fp32",
                exec_mode or defaults[fw], 2, dict(kw))


def null_cell(step_s: float, exec_mode: str = "eager") -> Cell:
    return cell("null", "lenet5", "train", 8, exec_mode, step_s=step_s)


def total_s(c: Cell, budget_s: float, peaks: dict[tuple[str, int, str], float] | None = None) -> float:
    """One cell's estimated wall time, setup included."""
    return est.estimate_cell(c, budget_s, peaks).total_s


def plan_s(cells: list[Cell], budget_s: float, peaks: dict[tuple[str, int, str], float] | None = None,
           *, with_probes: bool = False) -> float:
    """The cells run one after another, with the GEMM probes `runner.run_plan` runs first."""
    return sum(total_s(c, budget_s, peaks) for c in [*(probe_cells(cells) if with_probes else ()), *cells])


# ------------------------------------------------------------------ one cell


@pytest.mark.parametrize("fw", FRAMEWORKS)
@pytest.mark.parametrize("mode", ["train", "infer"])
def test_monotone_in_flops(fw: str, mode: str) -> None:
    """More FLOPs per step (a bigger batch, a bigger model) never takes less time."""
    totals = [total_s(cell(fw, "resnet50", mode, b), 20.0, PEAK_2CORE)
              for b in (1, 2, 4, 8, 16, 32, 64)]
    assert totals == sorted(totals)
    assert totals[-1] > totals[0]
    steps = [est.step_seconds(cell(fw, w, mode, 16), PEAK_2CORE)
             for w in ("lenet5", "resnet20", "resnet50")]
    assert steps == sorted(steps) and steps[0] < steps[-1]


def test_a_lower_peak_means_slower_steps() -> None:
    c = cell("mxnet", "vgg16", "infer", 16)
    assert (total_s(c, 20.0, {("cpu", 2, "fp32"): 80e9})
            > total_s(c, 20.0, PEAK_2CORE))


@pytest.mark.parametrize("workload,batch", [("lenet5", 64), ("resnet20", 128), ("vgg16", 16)])
def test_monotone_in_budget(workload: str, batch: int) -> None:
    budgets = [2.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    totals = [total_s(cell("tensorflow", workload, "train", batch), b, PEAK_2CORE)
              for b in budgets]
    assert totals == sorted(totals)


def test_a_fast_cell_spends_its_budget_plus_setup() -> None:
    c = cell("pytorch", "lenet5", "infer", 64)
    e = est.estimate_cell(c, 20.0, PEAK_2CORE)
    assert not e.step_bound and not e.over_budget
    assert 20.0 <= e.timed_s <= 20.0 * 1.05
    assert e.total_s == pytest.approx(e.setup_s + e.timed_s)
    assert total_s(c, 40.0, PEAK_2CORE) - e.total_s == pytest.approx(20.0, rel=0.05)


@pytest.mark.parametrize("fw", FRAMEWORKS)
def test_a_slow_cell_overruns_its_budget_by_the_min_rounds_rule(fw: str) -> None:
    """VGG-16 training takes seconds a step: warm-up and min_rounds rounds outlast 20 s."""
    c = cell(fw, "vgg16", "train", 16)
    proto = Protocol(budget_s=20.0)
    e = est.estimate_cell(c, 20.0, PEAK_2CORE, proto)
    min_warm = proto.min_warmup if c.exec_mode == "eager" else proto.min_warmup_compiled
    assert e.step_bound and e.over_budget
    assert e.rounds == proto.min_rounds and e.steps_per_round == 1
    assert e.timed_s >= (1 + min_warm + proto.min_rounds) * e.step_s > 20.0
    assert e.total_s > 1.5 * 20.0


def test_compile_counts_inside_the_budget_unless_done_ahead_of_time() -> None:
    """TF traces in its first step (inside the budget), JAX compiles in prepare() (before)."""
    eager = est.estimate_cell(cell("tensorflow", "resnet50", "infer", 1, "eager"), 20.0)
    graph = est.estimate_cell(cell("tensorflow", "resnet50", "infer", 1, "graph"), 20.0)
    assert graph.compile_s > 0 == eager.compile_s
    jit = est.estimate_cell(cell("jax", "resnet50", "infer", 1), 20.0)
    jit_setup_without = est.estimate_cell(cell("jax", "resnet50", "infer", 1, "eager"), 20.0)
    assert jit.setup_s == pytest.approx(jit_setup_without.setup_s + jit.compile_s)


def test_train_compiles_longer_than_infer() -> None:
    for fw in ("tensorflow", "jax", "mxnet"):
        tr = est.estimate_cell(cell(fw, "resnet20", "train", 8), 20.0)
        inf = est.estimate_cell(cell(fw, "resnet20", "infer", 8), 20.0)
        assert tr.compile_s > inf.compile_s > 0


def test_probe_cells_are_estimated_from_2n3_flops() -> None:
    (probe,) = probe_cells([cell("pytorch", "lenet5", "train", 64)])
    n = gemm_n("cpu")
    assert probe.mode == "peak" and probe.batch_size == n
    step = est.step_seconds(probe, PEAK_2CORE)
    assert step == pytest.approx(est.CAL.speed.slowdown * 2 * n**3 / (est.CAL.speed.gemm_efficiency * 170e9))
    e = est.estimate_cell(probe, 20.0, PEAK_2CORE)
    assert e.compile_s == 0 and 20.0 <= e.timed_s <= 21.0
    (line,) = est.describe_plan([], 20.0, PEAK_2CORE, probes=[probe])
    assert line.startswith(f"estimated wall time: {est.format_duration(e.total_s)} (0 cells + 1 GEMM probe,")


def test_declared_unsupported_cells_cost_only_a_process_start() -> None:
    c = dataclasses.replace(cell("jax", "resnet50", "train", 32), precision="fp16")
    e = est.estimate_cell(c, 20.0)
    assert not e.runs and e.total_s == pytest.approx(est.CAL.setup.process_s)


@pytest.mark.parametrize("exec_mode", ["eager", "compiled"])
@pytest.mark.parametrize("step_s", [0.0005, 0.01, 0.1, 0.6, 1.5, 4.0, 15.0])
@pytest.mark.parametrize("budget", [5.0, 12.0])
def test_timed_part_matches_the_protocol_on_a_fake_clock(step_s: float, budget: float,
                                                         exec_mode: str) -> None:
    """The estimate's timed part against `timing.measure` itself, run on a fake clock with
    steps of known length whose confidence target is never met (the estimate's assumption):
    never below it, and not far above."""
    proto = Protocol(budget_s=budget, target_rel_ci=1e-9)
    now = [0.0]
    calls = [0]

    def time_steps(n: int) -> float:
        calls[0] += 1
        dt = n * step_s * (1 + 0.01 * (calls[0] % 2))  # 1% jitter: steady, but never a tight CI
        now[0] += dt
        return dt

    compiled = exec_mode != "eager"
    measure(time_steps, proto, compiled=compiled, clock=lambda: now[0])
    simulated = now[0]
    e = est.estimate_cell(null_cell(step_s, exec_mode), budget, protocol=proto)
    assert simulated <= e.timed_s <= simulated * 1.25 + 0.1


# ------------------------------------------------------------------ plans


def test_default_plan_fits_a_2_core_laptop_in_about_20_minutes_a_run() -> None:
    cells = DEFAULT_PLAN.expand(FRAMEWORKS, threads=[2])
    total = plan_s(cells, DEFAULT_PLAN.budget_s, PEAK_2CORE, with_probes=True)
    assert total <= 20 * 60  # one of its three runs a cell
    assert {c.workload for c in cells} == set(list_workloads())  # every workload ...
    assert {c.framework for c in cells} == set(FRAMEWORKS)  # ... and every framework
    over = [c for c in cells if est.estimate_cell(c, DEFAULT_PLAN.budget_s, PEAK_2CORE).over_budget]
    # At 5 s a run (three runs a cell), the step-bound ImageNet inference cells outlast it:
    # they still take their 8 rounds and are flagged by the protocol.
    assert len(over) <= 10


def test_default_plan_answers_the_build_question_on_resnet20_only() -> None:
    """Every framework's ResNet-20, train and infer, against itself capped to two ladder
    levels; the other workloads run the default build only, and a run that names its own
    variants runs those everywhere instead."""
    cells = DEFAULT_PLAN.expand(FRAMEWORKS, threads=[2])
    ladder = {(c.framework, c.mode, c.variant) for c in cells if c.workload == "resnet20"}
    assert ladder == {(fw, m, v) for fw in FRAMEWORKS for m in ("train", "infer")
                      for v in ("default", "x86-64-v2", "x86-64-v3")}
    assert {c.variant for c in cells if c.workload != "resnet20"} == {"default"}
    mine = DEFAULT_PLAN.expand(FRAMEWORKS, threads=[2], own_variants=False,
                                   variants=["default", "avx"])
    assert {c.variant for c in mine} == {"default", "avx"}
    assert {c.variant for c in mine if c.workload == "vgg16"} == {"default", "avx"}


def test_the_kernel_probe_is_counted_once_per_build_mode_and_precision() -> None:
    c = cell("tensorflow", "resnet20", "infer")
    probed = est.estimate_cell(c, 5.0, PEAK_2CORE, kernel_probe=True)
    plain = est.estimate_cell(c, 5.0, PEAK_2CORE)
    assert plain.probe_s == 0 and probed.probe_s > probed.setup_s
    assert probed.total_s == pytest.approx(plain.total_s + probed.probe_s)
    for other in (dataclasses.replace(c, device="gpu:0"), cell("null", "lenet5", "infer", 4)):
        assert est.estimate_cell(other, 5.0, PEAK_2CORE, kernel_probe=True).probe_s == 0
    # another repeat, workload or batch shares the first one's probe; training does not
    shared = [dataclasses.replace(c, repeat=1), dataclasses.replace(c, workload="lenet5"),
              dataclasses.replace(c, batch_size=64)]
    assert est.first_probes([c, *shared]) == {c.cell_id}
    lines = est.describe_plan([c, *shared, dataclasses.replace(c, mode="train")], 5.0,
                              PEAK_2CORE, kernel_probe=True)
    assert "5 cells + 2 kernel probes," in lines[0]
    eta = eta_mod.Eta([c], 5.0, dict(PEAK_2CORE), kernel_probe=True)
    assert eta.remaining_s() == pytest.approx(probed.total_s)


def test_full_plan_estimate_is_near_the_measured_sweep() -> None:
    """The conservative estimate of the 48-cell sweep against the 56 minutes it took: not
    below 0.75x (an ETA that is too hopeful is worse than one that is too careful), not above
    1.5x. At the reference rates the protocol's own arithmetic (19 steps a slow compiled
    cell) already gives ~53 min for the 21 step-bound cells."""
    cells = FULL_PLAN.expand(FRAMEWORKS, threads=[2])
    assert len(cells) == 48
    # That sweep ran at 20 s a cell (the full preset is now three runs of 8 s).
    total = plan_s(cells, 20.0, PEAK_2CORE, with_probes=True)
    assert 0.75 * MEASURED_FULL_SWEEP_MIN * 60 <= total <= 1.5 * MEASURED_FULL_SWEEP_MIN * 60
    over = [c for c in cells if est.estimate_cell(c, 20.0, PEAK_2CORE).over_budget]
    assert 15 <= len(over) <= 27  # the sweep flagged 21 of 48 rows over_budget


def test_full_plan_per_cell_rates_follow_the_reference_sweep() -> None:
    """Steady steps within the SLOWDOWN margin of the sweep's own images/s."""
    for wl, by_fw in est.CAL.speed.reference_images_s.items():
        for fw, (train_ips, infer_ips) in by_fw.items():
            for mode, ips in (("train", train_ips), ("infer", infer_ips)):
                c = FULL_PLAN.expand([fw], threads=[2])
                (c1,) = [x for x in c if x.workload == wl and x.mode == mode]
                step = est.step_seconds(c1, {("cpu", 2, "fp32"): est.CAL.speed.reference_peak})
                assert step == pytest.approx(est.CAL.speed.slowdown * c1.batch_size / ips, rel=1e-6)


def test_describe_plan_names_the_total_and_the_overrunning_cells() -> None:
    cells = FULL_PLAN.expand(["jax"], threads=[2])
    lines = est.describe_plan(cells, 20.0, PEAK_2CORE, probes=probe_cells(cells), top=2)
    assert lines[0].startswith("estimated wall time: about ")
    assert "12 cells + 1 GEMM probe," in lines[0]
    assert "vgg16 train" in lines[2] and "over_budget" in lines[1]
    assert lines[-1].startswith("  ... and ")


# ------------------------------------------------------------------ ETA


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _budget_cells(n: int) -> list[Cell]:
    return [dataclasses.replace(cell("pytorch", "lenet5", "infer", 64), repeat=i) for i in range(n)]


def test_eta_starts_at_the_plan_estimate_and_counts_down_while_a_cell_runs() -> None:
    cells = _budget_cells(4)
    clock = FakeClock()
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE), clock=clock)
    start = eta.remaining_s()
    assert start == pytest.approx(plan_s(cells, 20.0, PEAK_2CORE))
    eta.start(cells[0])
    clock.now = 10.0
    assert eta.remaining_s() == pytest.approx(start - 10.0)
    clock.now = 1000.0  # far past its estimate: the running cell still has a second left
    assert eta.remaining_s() == pytest.approx(start - eta.estimates[cells[0].cell_id].total_s + 1)


def test_eta_is_read_by_the_display_thread_while_cells_finish() -> None:
    # rich refreshes the ETA column from its own thread while the runner records cells: the
    # reader must never see the estimates change under it (it raised and killed the display).
    import sys
    import threading

    cells = _budget_cells(300)
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE))
    errors: list[BaseException] = []
    stop = threading.Event()

    def display() -> None:
        while not stop.is_set():
            try:
                eta.remaining_s()
            except Exception as exc:  # what would end rich's refresh thread
                errors.append(exc)
                return

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible
    reader = threading.Thread(target=display)
    reader.start()
    try:
        for c in cells:
            eta.start(c)
            eta.done(c, 1.0)
            if errors:
                break
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(switch)
    assert errors == []
    assert eta.remaining_s() == 0.0


def test_eta_counts_interleaved_cells_time_once() -> None:
    cells = _budget_cells(3)
    clock = FakeClock()
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE), clock=clock)
    start = eta.remaining_s()
    eta.start(cells[0])
    eta.start(cells[1])  # side by side, as run_plan starts an interleaved group
    clock.now = 10.0
    assert eta.remaining_s() == pytest.approx(start - 10.0)


def test_eta_moves_towards_observed_times_but_shrunk() -> None:
    cells = [cell("mxnet", "vgg16", "train", 16 + i) for i in range(8)]  # all step-bound
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE))
    per_cell = {c.cell_id: eta.estimates[c.cell_id].total_s for c in cells}
    before = sum(per_cell[c.cell_id] for c in cells[2:])
    for c in cells[:2]:
        eta.done(c, 2.0 * per_cell[c.cell_id])  # everything took twice as long
    after = eta.remaining_s()
    assert before < after < 2.0 * before  # moved towards 2x, not all the way after two cells
    for c in cells[2:6]:
        eta.done(c, 2.0 * per_cell[c.cell_id])
    left = sum(per_cell[c.cell_id] for c in cells[6:])
    assert eta.remaining_s() > 0.7 * 2.0 * left  # six cells say 2x: most of the way there


def test_eta_one_odd_cell_does_not_swing_it() -> None:
    cells = _budget_cells(10)
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE))
    per_cell = {c.cell_id: eta.estimates[c.cell_id].total_s for c in cells}
    for c in cells[:5]:
        eta.done(c, per_cell[c.cell_id])  # as estimated
    eta.done(cells[5], 10.0 * per_cell[cells[5].cell_id])  # one hung for a long time
    left = sum(per_cell[c.cell_id] for c in cells[6:])
    assert eta.remaining_s() == pytest.approx(left, rel=0.05)


def test_eta_splits_setup_from_the_timed_part() -> None:
    """Slow setups (a loaded disk, a cold cache) do not inflate the budgets still to run."""
    cells = _budget_cells(6)
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE), prior_n=0.0)
    e = eta.estimates[cells[0].cell_id]
    for c in cells[:3]:
        eta.done(c, 3 * e.setup_s + e.timed_s, timed_s=e.timed_s)
    assert eta.ratio("setup") == pytest.approx(3.0)
    assert eta.ratio("budget") == pytest.approx(1.0)
    assert eta.remaining_s() == pytest.approx(3 * (3 * e.setup_s + e.timed_s), rel=0.01)


def test_eta_learns_the_speed_and_turns_cells_step_bound() -> None:
    """Steps 10x slower than estimated (a busy machine) make budget-bound cells step-bound:
    the remaining estimate follows the protocol's min_rounds rule, not a ratio of totals."""
    cells = [dataclasses.replace(cell("pytorch", "resnet20", "train", 128), repeat=i)
             for i in range(6)]
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE), prior_n=0.0)
    e = eta.estimates[cells[0].cell_id]
    assert not e.step_bound
    slow = est.estimate_cell(cells[0], 20.0, PEAK_2CORE, speed=10.0)
    assert slow.step_bound and slow.timed_s > 2 * e.timed_s
    for c in cells[:3]:
        eta.done_row(c, {"status": "ok", "wall_s": e.setup_s + slow.timed_s,
                         "first_step_s": 1.5 * slow.step_s, "warmup_s": 3 * slow.step_s,
                         "measure_s": slow.timed_s - 4.5 * slow.step_s,
                         "samples_s": [slow.step_s] * 8})
    assert eta.ratio("speed") == pytest.approx(10.0)
    assert eta.remaining_s() == pytest.approx(3 * (e.setup_s + slow.timed_s), rel=0.02)


def test_eta_ignores_failed_cells_for_speed() -> None:
    cells = _budget_cells(3)
    eta = eta_mod.Eta(cells, 20.0, dict(PEAK_2CORE))
    eta.done_row(cells[0], {"status": "crashed", "wall_s": 0.5})
    assert eta.ratio("setup") == 1.0 and eta.ratio("budget") == 1.0
    assert cells[0].cell_id not in eta.estimates


def test_eta_done_row_uses_the_rows_breakdown_and_a_probes_peak() -> None:
    work = [cell("mxnet", "resnet50", "infer", 32)]
    (probe,) = probe_cells(work)
    eta = eta_mod.Eta([probe, *work], 20.0)
    before = eta.estimates[work[0].cell_id].total_s
    n = probe.batch_size
    half_typical = 0.5 * est.peak_flops(probe)
    row = {"status": "ok", "wall_s": 25.0, "first_step_s": 0.1, "warmup_s": 1.0,
           "measure_s": 18.9, "samples_s": [2 * n**3 / half_typical] * 8}
    eta.done_row(probe, row)
    assert eta.peaks[("cpu", 2, "fp32")] == pytest.approx(half_typical)
    # The step-bound ResNet-50 cell is re-estimated at half the typical peak: slower.
    assert eta.estimates[work[0].cell_id].total_s > before
    assert probe.cell_id not in eta.estimates
    assert eta.estimates[work[0].cell_id].step_s == pytest.approx(
        2 * est.step_seconds(work[0]), rel=1e-6)


def test_peaks_from_rows_take_the_best_probe() -> None:
    n = 1024
    rows = [{"mode": "peak", "status": "ok", "device": "cpu", "threads": 2, "precision": "fp32",
             "flops_per_image": 2 * n**3, "samples_s": [2 * n**3 / p, 1.0]} for p in (1.6e11, 1e11)]
    rows.append({"mode": "train", "status": "ok", "device": "cpu", "threads": 2,
                 "precision": "fp32", "flops_per_image": 1, "samples_s": [1e-12]})
    assert est.peaks_from_rows(rows) == {("cpu", 2, "fp32"): pytest.approx(1.6e11)}


# ------------------------------------------------------------------ formatting


@pytest.mark.parametrize("s,text", [(3, "about 5 s"), (42, "about 40 s"), (89, "about 90 s"),
                                    (18 * 60 + 10, "about 18 min"), (89 * 60, "about 89 min"),
                                    (90 * 60, "about 1 h 30 min"), (2 * 3600, "about 2 h")])
def test_format_duration(s: float, text: str) -> None:
    assert est.format_duration(s) == text


def test_format_clock() -> None:
    assert eta_mod.format_clock(3725.4) == "1:02:05"
    assert eta_mod.format_clock(-3) == "0:00:00"


def test_eta_column_renders_the_remaining_time() -> None:
    pytest.importorskip("rich")
    eta = eta_mod.Eta(_budget_cells(1), 20.0, dict(PEAK_2CORE))
    text = eta_mod.eta_column(eta).render(None).plain
    assert text == "ETA " + eta_mod.format_clock(eta.remaining_s())


# ------------------------------------------------------------------ presets and calibration

FIXTURE = Path(__file__).parent / "fixtures" / "preset_estimates.json"


def _preset_estimates() -> dict[str, object]:
    """Every estimate of the two presets' cells and probes, with a probe's peak and with the
    typical one, and the dry run's lines: what tests/fixtures/preset_estimates.json holds,
    computed at b309825, before the calibration moved into calibration.toml. The dry run's
    lines were computed again when one kernel probe came to serve every workload, batch and
    repeat of a build and mode (52 kernel probes of the default preset became 24), and when
    compiled modes' least warm-up went from 10 steps to 6 (``Protocol.min_warmup_compiled``)."""
    out: dict[str, object] = {}
    for preset in (DEFAULT_PLAN, FULL_PLAN):
        cells = preset.expand(FRAMEWORKS, threads=[2])
        probes = probe_cells(cells)
        for name, peaks in (("probe", PEAK_2CORE), ("typical", None)):
            ests = [[c.label(), *dataclasses.astuple(est.estimate_cell(c, preset.budget_s, peaks,
                                                                       kernel_probe=True))]
                    for c in [*probes, *cells]]
            lines = est.describe_plan(cells, preset.budget_s, peaks, probes=probes,
                                      kernel_probe=True)
            out[f"{preset.name}/{name}"] = {"cells": ests, "lines": lines}
    return out


def test_preset_estimates_are_unchanged_by_the_move_to_toml() -> None:
    """Data moved to a file, presets read from the registry: the same cells, the same figures
    to the last bit."""
    assert _preset_estimates() == json.loads(FIXTURE.read_text())


@pytest.fixture
def new_workload() -> Iterator[str]:
    """A workload registered after import, as a user's own module would (lenet5's graph
    under another name), unregistered afterwards."""
    from workloads import registry

    def my_net() -> WorkloadSpec:
        return dataclasses.replace(get_workload("lenet5"), name="my_net", tags=())

    registry.register_workload(my_net)
    yield "my_net"
    del registry._FACTORIES["my_net"]
    registry.get_workload.cache_clear()


def test_a_newly_registered_workload_runs_under_full_and_default(new_workload: str) -> None:
    full = {(c.workload, c.mode, c.batch_size) for c in FULL_PLAN.expand(["pytorch"], threads=[2])}
    assert {(new_workload, m, 64) for m in ("train", "infer")} <= full
    # Not known to be small: the default preset runs its inference at the ImageNet batch.
    default = [c for c in DEFAULT_PLAN.expand(["jax"], threads=[2]) if c.workload == new_workload]
    assert [(c.mode, c.batch_size) for c in default] == [("infer", 4)]
    assert est.estimate_cell(default[0], 5.0, PEAK_2CORE).runs  # estimated like any other


def test_a_calibration_file_with_a_missing_or_unknown_key_is_refused(tmp_path: Path) -> None:
    text = calibration.CALIBRATION_FILE.read_text()
    assert calibration.parse(text, tmp_path / "c.toml") == calibration.load()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("slowdown = 1.1", "slow_down = 1.1"))
    with pytest.raises(calibration.CalibrationError, match=r"bad.toml: \[speed\]: missing keys "
                       r"\['slowdown'\], unknown keys \['slow_down'\]"):
        calibration.load(bad)
    bad.write_text(text.replace("[peaks]", "[peak]"))
    with pytest.raises(calibration.CalibrationError, match=r"unknown tables \['peak'\]"):
        calibration.load(bad)
    with pytest.raises(calibration.CalibrationError, match="calibration file not found"):
        calibration.load(tmp_path / "none.toml")

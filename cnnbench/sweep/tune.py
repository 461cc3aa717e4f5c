"""The ceiling search: successive halving over a group's candidates, then a final comparison.

Per group (framework, workload, mode, device; ``cnnbench.plan.space``):

1. **Rungs.** Every candidate runs once with a short budget. Its first run passes the
   accuracy gate first (the worker checks the timed model against the oracle; a failure is
   a row with status ``inaccurate`` and its error, and is never ranked). The best third (at
   least two) run again with three times the budget, and so on, until two are left or the
   rungs end. A rung that would keep every candidate (two or fewer) ranks nothing and is
   not run: they go on to the next rung, or to the final, whose first run of each passes
   the gate. A rung only ranks, so it runs a screening protocol (``TuneOptions.screening``)
   and the candidates of one framework environment share one worker
   (``cnnbench.sweep.shared``).

   **The batch size joins at rung 1.** With two rungs or more, rung 0 times each
   configuration at one batch (the one most candidates have, the default's on a tie;
   ``held_batches``); rung 1 times its survivors at every searched batch. A batch-64 twin
   of a configuration that lost at batch 32 is not timed. Measured 2026-12 in a full search
   on the 2-core AMD EPYC (ResNet-50 inference, 15 configurations at both batches): batch
   64 ran each configuration at 0.82-1.04x its batch-32 speed, while the configurations
   spanned 10.8-41 img/s (3.8x); the one pair whose order batch 64 swapped was 1% apart
   (TensorFlow XLA fp32 and bf16); and the batch-64 candidates took 505 s of rung 0's
   1,109 s.
2. **Final.** The two best and the default run in fresh processes, interleaved (A B D,
   D B A, ...), at the full budget (``TuneOptions.final_protocol``): ``final_runs`` each,
   then one more each until the ratios of the best over the runner-up and over the default
   are within ``target_ratio_ci`` (+-) or ``max_final_runs`` is reached.

Every timed candidate is a row of the run file, marked with its ``stage``; the run's
``repeat`` numbers a candidate's runs through the search (rung k is k, final run i is
``FINAL_REPEAT + i``), so cell ids are unique and ``--resume`` skips every row already
recorded and takes the same path again from the recorded figures. Nothing lives only here:
the ceiling and its intervals are computed from the rows by ``cnnbench.analyse.ceiling``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnnbench.analyse.ceiling import FINAL, FINAL_DEFAULT, half_width, per_image_runs
from cnnbench.analyse.compare import compare_cells
from cnnbench.core.cells import Cell
from cnnbench.core.options import OptionError, flag, pos_float, pos_int
from cnnbench.core.schema import append_row, iter_rows
from cnnbench.measure.timing import MIN_ROUNDS_FOR_CI, Protocol
from cnnbench.plan.space import Group
from cnnbench.sweep.runner import RunSettings, run_cell
from cnnbench.sweep.shared import launch_key, run_shared

FINAL_REPEAT = 10  # the final comparison's runs are repeats 10, 11, ... (rungs: 0, 1, ...)


@dataclass
class TuneOptions:
    """The search's own settings; also `cnnbench tune`'s flags (``flag``: defined once)."""

    budget_s: float = flag("--budget", default=20.0, type=pos_float, metavar="S", help=(
        "seconds of warm-up and rounds of a final run (default 20); rung k of R gets "
        "budget / 3^(R-k)"))
    eta: int = 3  # successive halving keeps the best 1/eta and gives it eta x the budget
    rungs: int = flag("--rungs", default=2, type=pos_int, metavar="N",
                      help="successive-halving rungs (default 2)")
    final_runs: int = flag("--final-runs", default=3, type=pos_int, metavar="N", help=(
        "fresh-process runs a side before the ratio's interval is checked (default 3)"))
    max_final_runs: int = flag("--max-final-runs", default=8, type=pos_int, metavar="N",
                               help="at most this many runs a side (default 8)")
    target_ratio_ci: float = flag(
        "--target-ratio-ci", default=0.05, type=pos_float, metavar="FRAC",
        help="add final runs until the ratio's interval is within +-FRAC (default 0.05)")
    fresh_rungs: bool = flag(
        "--fresh-rungs", action="store_true",
        help="run each rung candidate in a fresh process of its own (default: the candidates "
        "of one framework environment share one, which imports the framework once)")

    def __post_init__(self) -> None:
        if self.final_runs < 2 or self.max_final_runs < self.final_runs:
            raise OptionError("needs --final-runs >= 2 and --max-final-runs >= --final-runs")

    def rung_budget(self, k: int) -> float:
        return self.budget_s / self.eta ** (self.rungs - k)

    def screening(self, protocol: Protocol, k: int) -> Protocol:
        """Rung k's protocol: the lean one (``final_protocol``) at the rung's budget. A rung
        only ranks candidates, and they share a process."""
        return _lean(protocol, self.rung_budget(k))

    def final_protocol(self, protocol: Protocol) -> Protocol:
        """A final run's protocol: the lean one at the full budget, in a fresh process.

        Lean: the drift rule within warm-up's share of the budget, and the fewest forced
        steps: one warm-up step (two if compiled) and six rounds, the fewest that give a
        median its 95% interval. The verdict rests on many fresh processes, as pyperf's does
        (by default 20 processes of one warm-up value and three timed ones), not on long
        runs: its interval is over runs. A slow step (ResNet-50 here: 1-3 s) would otherwise
        spend most of a run in forced warm-up, though the first timed round after one or two
        warm-up steps was 0.94-1.05x the run's median in every compiled screening run we
        looked at (``timing.Protocol``); a run whose rounds do drift is flagged
        ``warmup_unsteady`` (``timing.unsteady``)."""
        return _lean(protocol, self.budget_s)

    def keep(self, k: int, n: int) -> int:
        """How many of n candidates rung k keeps: the best third, at least two; the last
        rung keeps the two the final compares."""
        return 2 if k == self.rungs - 1 else max(2, math.ceil(n / self.eta))

    def defers_batch(self, group: Group) -> bool:
        """Whether rung 0 times one batch only (the others join at rung 1)."""
        return self.rungs >= 2 and len({c.batch_size for c in group.candidates}) > 1


@dataclass
class GroupResult:
    group: Group
    rungs: list[list[dict[str, Any]]] = field(default_factory=list)  # rows per rung
    finalists: list[Cell] = field(default_factory=list)
    final_runs: int = 0
    settled: bool = False


Hook = Callable[[Cell, dict[str, Any]], None]


class Search:
    """Runs the search of each group, reusing the rows a resumed run already has."""

    def __init__(self, settings: RunSettings, options: TuneOptions,
                 on_start: Callable[[Cell, str], None] | None = None,
                 on_done: Hook | None = None) -> None:
        # No kernel or GEMM probes in a search: its rows rank configurations.
        self.settings = dataclasses.replace(settings, kernel_probe=False, probe_peak=False)
        self.options = options
        self.on_start, self.on_done = on_start, on_done
        self.recorded: dict[str, dict[str, Any]] = {}
        if settings.run_file.exists():
            for row in iter_rows(settings.run_file, []):
                self.recorded[row["cell_id"]] = row
        self.timed = 0  # candidates timed by this process (not reused from the run file)

    def _record(self, cell: Cell, stage: str, row: dict[str, Any]) -> None:
        row["stage"] = stage
        append_row(self.settings.run_file, row)
        self.recorded[cell.cell_id] = row
        self.timed += 1
        if self.on_done:
            self.on_done(cell, row)

    def _run(self, cell: Cell, stage: str) -> dict[str, Any]:
        """One run in a fresh process at the final protocol (the final comparison): through
        the gate if it is the candidate's first (a default that no rung timed), never again
        once the gate refused it."""
        row = self.recorded.get(cell.cell_id)
        if row is not None:
            return row
        earlier = self._earlier(cell)
        refused = [r for r in earlier if r["status"] == "inaccurate"]
        if refused:
            return refused[0]
        if self.on_start:
            self.on_start(cell, stage)
        settings = dataclasses.replace(
            self.settings, protocol=self.options.final_protocol(self.settings.protocol),
            accuracy_check=not earlier)
        row = run_cell(cell, settings)
        self._record(cell, stage, row)
        return row

    def _earlier(self, cell: Cell) -> list[dict[str, Any]]:
        """The recorded rows of ``cell``'s candidate before this run (smaller repeats: earlier
        rungs, earlier final runs). None: this run is its first, and passes the gate first."""
        return [r for j in range(cell.repeat)
                if (r := self.recorded.get(dataclasses.replace(cell, repeat=j).cell_id))]

    def _rung(self, cells: list[Cell], k: int) -> list[dict[str, Any]]:
        """Rung k's rows of ``cells``: the ones not yet recorded run at the screening
        protocol, sharing one process per framework environment (unless ``fresh_rungs``),
        each through the accuracy gate on its first run."""
        todo = [c for c in cells if c.cell_id not in self.recorded]
        settings = dataclasses.replace(self.settings, protocol=self.options.screening(
            self.settings.protocol, k))
        stage = f"rung{k}"
        if self.on_start:
            for c in todo:
                self.on_start(c, stage)
        if self.options.fresh_rungs:
            for c in todo:
                checked = dataclasses.replace(settings, accuracy_check=not self._earlier(c))
                self._record(c, stage, run_cell(c, checked))
        else:
            run_shared(todo, settings, on_row=lambda c, r: self._record(c, stage, r),
                       check=lambda c: not self._earlier(c))
        return [self.recorded[c.cell_id] for c in cells]

    def rungs(self, group: Group, result: GroupResult) -> list[Cell]:
        """Successive halving; returns the survivors of the last rung, best first."""
        alive, held = list(group.candidates), list[Cell]()
        if self.options.defers_batch(group):
            alive, held = held_batches(group)
        for k in range(self.options.rungs):
            if k == 1 and held:  # the survivors, now at every searched batch
                alive = [c for c in group.candidates
                         if any(_twins(c, s) for s in alive)]
                held = []
            if len(alive) <= self.options.keep(k, len(alive)):
                continue  # it would keep every candidate: it ranks nothing, so it is not run
            rows = self._rung([dataclasses.replace(c, repeat=k) for c in alive], k)
            result.rungs.append(rows)
            ok = [(c, r) for c, r in zip(alive, rows, strict=True) if r["status"] == "ok"]
            ok.sort(key=lambda cr: -float(cr[1]["images_per_s"]))
            alive = [c for c, _ in ok[:self.options.keep(k, len(ok))]]
            if len(alive) <= 2 and not (held and alive):
                break
        return alive


    def final(self, group: Group, result: GroupResult, best: list[Cell]) -> None:
        """The interleaved fresh-process runs of the best two and the default."""
        # Cells compare equal whatever their options: compare their ids.
        default_id = group.default.cell_id
        sides = list(best) + ([] if default_id in {c.cell_id for c in best} else [group.default])
        result.finalists = sides
        runs: dict[str, list[dict[str, Any]]] = {c.cell_id: [] for c in sides}
        opts = self.options
        for i in range(opts.max_final_runs):
            order = sides if i % 2 == 0 else sides[::-1]
            for c in order:
                stage = FINAL_DEFAULT if c.cell_id == default_id else FINAL
                row = self._run(dataclasses.replace(c, repeat=FINAL_REPEAT + i), stage)
                runs[c.cell_id].append(row)
            result.final_runs = i + 1
            if i + 1 >= opts.final_runs and self._settled(sides, runs):
                result.settled = True
                return

    def _settled(self, sides: list[Cell], runs: dict[str, list[dict[str, Any]]]) -> bool:
        """Whether the best's ratio over each other finalist is within the target (+-)."""
        per = {k: per_image_runs(v) for k, v in runs.items()}
        if any(not per[c.cell_id] for c in sides):
            return True  # a finalist that never ran ok: more runs will not decide anything
        if any(len(per[c.cell_id]) < 2 for c in sides):
            return False
        best = sides[0]
        return all(half_width(compare_cells(per[c.cell_id], per[best.cell_id]))
                   <= self.options.target_ratio_ci for c in sides[1:])

    def run(self, group: Group) -> GroupResult:
        result = GroupResult(group)
        best = self.rungs(group, result)
        if best:
            self.final(group, result, best)
        return result


def _lean(protocol: Protocol, budget_s: float) -> Protocol:
    return dataclasses.replace(protocol, budget_s=budget_s, min_warmup=1, min_warmup_compiled=2,
                               min_rounds=MIN_ROUNDS_FOR_CI)


def held_batches(group: Group) -> tuple[list[Cell], list[Cell]]:
    """(rung 0's candidates, the ones held back to rung 1): rung 0 times the batch most
    candidates have (the default's on a tie); a candidate at another batch waits for rung 1
    if its configuration is timed at that batch in rung 0, and otherwise runs in rung 0."""
    counts = Counter(c.batch_size for c in group.candidates)
    first = max(counts, key=lambda b: (counts[b], b == group.default.batch_size, -b))
    at_first = [c for c in group.candidates if c.batch_size == first]
    held = [c for c in group.candidates
            if c.batch_size != first and any(_twins(c, f) for f in at_first)]
    ids = {c.cell_id for c in held}
    return [c for c in group.candidates if c.cell_id not in ids], held


def _twins(a: Cell, b: Cell) -> bool:
    """The same configuration, whatever the batch (cells compare equal whatever their
    options, so compare ids)."""
    return dataclasses.replace(a, batch_size=b.batch_size, repeat=0).cell_id == \
        dataclasses.replace(b, repeat=0).cell_id


def overhead(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(seconds in timed rounds, seconds of worker wall time) over ``rows``."""
    timed = sum(float(r.get("measure_s") or 0.0) for r in rows)
    wall = sum(float(r.get("wall_s") or 0.0) for r in rows)
    return timed, wall


def estimate_s(groups: list[Group], options: TuneOptions, protocol: Protocol) -> tuple[float, float]:
    """(expected, most) seconds of wall time of the search, from the sweep's estimator.

    Rung k: its candidates (the group's average one, since which survive is not known; at
    rung 0 one batch where ``defers_batch``, and at rung 1 the survivors at every batch) at
    the screening protocol; a candidate's first run adds the accuracy gate (one step, more
    for a training step's float64 reference); candidates sharing a process pay its start
    and the framework's import once. Then the final comparison in fresh processes at
    ``final_runs`` (expected) or ``max_final_runs`` (most) runs a side."""
    from cnnbench.plan.estimate import estimate_cell, process_and_import_s

    expected = most = 0.0
    for g in groups:
        once = process_and_import_s(g.framework)
        deferred = options.defers_batch(g)
        first, held = held_batches(g) if deferred else (list(g.candidates), [])
        n = len(first)
        for k in range(options.rungs):
            if k == 1 and held:  # the survivors' share of the held batches joins them
                n += math.ceil(len(held) * n / len(first))
            keep = options.keep(k, n)
            if n <= keep:  # a rung that would keep every candidate is not run
                continue
            proto = options.screening(protocol, k)
            costs = []
            for c in g.candidates:
                e = estimate_cell(c, proto.budget_s, protocol=proto)
                gated = k == 0 or (k == 1 and bool(held))  # at rung 1, an upper bound
                gate = e.step_s * (3 if c.mode == "train" else 1) if gated else 0.0
                costs.append(e.total_s + gate - (0.0 if options.fresh_rungs else once))
            processes = n if options.fresh_rungs else len({launch_key(c) for c in g.candidates})
            expected += sum(costs) / len(costs) * n + processes * once * (not options.fresh_rungs)
            n = keep
            if n <= 2 and k < options.rungs - 1 and not (k == 0 and held):
                break
        sides = min(3, len(g.candidates))
        final = estimate_cell(g.default, options.budget_s,
                              protocol=options.final_protocol(protocol)).total_s * sides
        expected += final * options.final_runs
        most += final * (options.max_final_runs - options.final_runs)
    return expected, expected + most

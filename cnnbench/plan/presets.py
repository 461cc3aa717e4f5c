"""The run presets: what `cnnbench run` runs without workload, mode or batch options.

A preset takes its workloads from the workload registry (`workloads.list_workloads`), read
when it is expanded, so a newly registered workload runs under the default preset and
``--full`` without an edit here: a preset is a rule from a workload's spec (its name and
tags) to what to run of it, plus a budget. ``--quick`` is a fixed smoke plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnbench.core.cells import MODES, Cell
from cnnbench.plan.expand import expand
from workloads import WorkloadSpec, get_workload, list_workloads

# --quick: a few minutes' smoke plan, the same workloads whatever is registered.
QUICK_WORKLOADS = ("lenet5", "cifar10_tutorial", "resnet20")
QUICK_BATCH = 32
QUICK_BUDGET_S = 2.0


@dataclass(frozen=True)
class PlanEntry:
    workload: str
    modes: tuple[str, ...] = MODES
    batch_size: int | None = None  # None: the workload's default batch
    # Variants of this entry when the run names none (--variants): the build question the
    # preset answers. They run beside the default (runner: cells differing in variant are
    # interleaved); with --variants, every entry runs the run's own.
    variants: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PlanPreset:
    """A rule from each registered workload to an entry (workload x modes x batch), and a
    budget: what `cnnbench run` does without options."""

    name: str
    entry: Callable[[WorkloadSpec], PlanEntry | None]  # None: the preset leaves it out
    budget_s: float
    description: str

    @property
    def entries(self) -> tuple[PlanEntry, ...]:
        """One entry per registered workload, in registration order, read now (not at import:
        a workload registered later is in)."""
        got = (self.entry(get_workload(w)) for w in list_workloads())
        return tuple(e for e in got if e is not None)

    def expand(self, frameworks: Sequence[str], *, own_variants: bool = True,
               **kwargs: Any) -> list[Cell]:
        """Cells of the preset for these frameworks, one framework's cells together;
        ``kwargs`` go to `plan.expand` (precisions, devices, threads, variants...).
        ``own_variants``: entries that name variants run those (False: the run named its
        own, which every entry runs)."""
        cells: list[Cell] = []
        entries = self.entries
        for fw in frameworks:
            for e in entries:
                kw = dict(kwargs)
                if own_variants and e.variants:
                    kw["variants"] = list(e.variants)
                cells += expand([fw], [e.workload], modes=e.modes,
                                batch_sizes=[e.batch_size] if e.batch_size else None, **kw)
        return cells


FULL_PLAN = PlanPreset(
    "full",
    lambda spec: PlanEntry(spec.name),
    8.0,
    "every registered workload, train and infer, default batches, 3 runs of 8 s per cell",
)

# What the estimator says of the candidates (2 threads, typical 170 GFLOP/s peak, the 4 GEMM
# probes included, 2026-12-02):
#   all 48 cells at 20 s (the old default; measured 56 min) ......... 78 min, 21 over budget
#   all 48 cells at 10 s ............................................ 73 min, 24 over budget
#     (the slow ImageNet cells are step-bound: a lower budget hardly shortens them)
#   small train+infer, ImageNet train+infer at batch 8, 10 s ......... 26 min, 16 over budget
#   small train+infer, ImageNet infer at batch 8, 10 s ............... 16 min,  9 over budget
#   small train+infer, ImageNet infer at batch 8, 15 s ............... 18 min,  4 over budget
#   small train+infer, ImageNet infer at batch 4, 15 s ............... 17 min,  2 over budget
#   the same plus ResNet-50/MobileNet-V2 training at batch 2, 15 s ... 22 min,  5 over budget
# ("small" = lenet5, cifar10_tutorial, resnet20 at their default batches.) The default is the
# sixth: every workload and framework in one run of about 17 minutes, estimated on the
# careful side, where only VGG-16 inference of TF and JAX outlasts its budget (step-bound:
# flagged over_budget, and their 8 rounds will likely be flagged ci_wide); the budget-bound
# cells get 15 s, enough rounds of 0.1 s to meet a 3% interval on a quiet machine.
# ImageNet-scale training (10-40 s a step on two cores; 12 minutes for JAX's VGG-16 alone) and
# batch-2 training figures nobody would quote are what `--full` is for.
# x86-64-v2 (SSE4.2) stands for a binary built for a 2008 CPU, as the stock TensorFlow of the
# seeds' claim was; x86-64-v3 (AVX2 + FMA) for today's usual distribution target, so on an
# AVX-512 CPU its gap to default is what AVX-512 buys, and on an AVX2 one it should be none.
LADDER_VARIANTS = ("default", "x86-64-v2", "x86-64-v3")
# The build question (issue 12): the stock build against itself capped to two ladder levels
# that every x86-64 CPU running these frameworks has, at batch 32 (capped to SSE4 a training
# step at 128 takes seconds: 8 rounds outlast 5 s).
BUILD_QUESTION = PlanEntry("resnet20", batch_size=32, variants=LADDER_VARIANTS)
SMALL_TAG = "small"  # workloads whose training steps take milliseconds here
OTHERS_BATCH = 4  # the others (ImageNet-scale, or new and not known to be small): infer only


def _default_entry(spec: WorkloadSpec) -> PlanEntry:
    if spec.name == BUILD_QUESTION.workload:
        return BUILD_QUESTION
    if SMALL_TAG in spec.tags:
        return PlanEntry(spec.name)
    return PlanEntry(spec.name, ("infer",), OTHERS_BATCH)


DEFAULT_PLAN = PlanPreset(
    "default",
    _default_entry,
    5.0,
    "workloads tagged small (LeNet-5, the CIFAR-10 tutorial net) train+infer at their default "
    "batch, ResNet-20 train+infer at batch 32 on the default build and capped to x86-64-v2 and "
    "x86-64-v3, every other workload (the ImageNet models) infer at batch 4; 3 runs of 5 s per "
    "cell (--full: every workload train+infer at default batches, 8 s)",
)

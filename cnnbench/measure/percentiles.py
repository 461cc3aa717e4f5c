"""Percentiles of per-step latencies with distribution-free confidence intervals.

Pure standard library (the worker computes the row's fields with it). The interval of the
p-quantile is a pair of order statistics [x_(l), x_(u)] (1-based): the number of samples
below the true quantile is Binomial(n, p), so P(x_(l) <= q_p < x_(u)) = P(l <= B <= u - 1),
the same construction as the median's interval in ``timing.median_ci`` (there p = 1/2).
No assumption about the shape of the distribution is made, which matters for tails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEVEL = 0.95
# The latency row's percentiles: name -> quantile.
QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "p999": 0.999}


def min_samples(p: float, level: float = LEVEL) -> int:
    """The fewest samples for which a two-sided ``level`` interval of the p-quantile exists
    inside the sample: the largest sample must exceed q_p with probability >= 1 - a/2, i.e.
    1 - p^n >= 1 - a/2 (and symmetrically for the smallest). p99 at 95%: 368."""
    tail = (1 - level) / 2
    worst = max(p, 1 - p)
    return math.ceil(math.log(tail) / math.log(worst))


def _binom_cdf(n: int, p: float) -> list[float]:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, p), from log-pmfs (stable for n in the
    tens of thousands, where exact big-integer sums get slow)."""
    lp, lq = math.log(p), math.log1p(-p)
    lgn = math.lgamma(n + 1)
    out, acc = [], 0.0
    for k in range(n + 1):
        acc += math.exp(lgn - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq)
        out.append(min(acc, 1.0))
    return out


def quantile_ranks(n: int, p: float, level: float = LEVEL) -> tuple[int | None, int | None]:
    """(l, u), 1-based ranks of the interval's order statistics; None where the sample is
    too small for that end (the interval is then open on that side)."""
    tail = (1 - level) / 2
    cdf = _binom_cdf(n, p)
    # l: the largest rank with P(B <= l - 1) <= tail; u: the smallest with P(B >= u) <= tail.
    lo = [r for r in range(1, n + 1) if cdf[r - 1] <= tail]
    hi = [r for r in range(1, n + 1) if 1 - cdf[r - 1] <= tail]
    return (lo[-1] if lo else None), (hi[0] if hi else None)


@dataclass(frozen=True)
class Quantile:
    name: str
    p: float
    value: float  # the sample quantile (order statistic ceil(n p), 1-based)
    low: float | None  # None: too few samples for this end of the interval
    high: float | None

    @property
    def meaningful(self) -> bool:
        return self.low is not None and self.high is not None


def quantile(samples: list[float], name: str, p: float, level: float = LEVEL) -> Quantile:
    xs = sorted(samples)
    n = len(xs)
    if n == 0:
        raise ValueError("no samples")
    value = xs[max(1, math.ceil(n * p)) - 1]
    lo, hi = quantile_ranks(n, p, level)
    return Quantile(name, p, value, xs[lo - 1] if lo else None, xs[hi - 1] if hi else None)


def latency_fields(samples_s: list[float], level: float = LEVEL) -> dict[str, float | None]:
    """The row's latency fields from per-step seconds: ``latency_<name>_s`` with
    ``_low_s``/``_high_s`` for each of QUANTILES (an end is None where the sample is too
    small for it: fewer than ``min_samples(p)`` steps)."""
    out: dict[str, float | None] = {}
    for name, p in QUANTILES.items():
        q = quantile(samples_s, name, p, level)
        out[f"latency_{name}_s"] = q.value
        out[f"latency_{name}_low_s"] = q.low
        out[f"latency_{name}_high_s"] = q.high
    return out

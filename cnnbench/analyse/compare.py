"""The analysis layer: every ratio the report and ``cnnbench compare`` show, as DataFrames.

Pure functions from result rows (the DataFrame ``core.results.load_results`` gives) to pandas
DataFrames; no HTML, no I/O. The one central operation is the comparison of two cells from
their raw round samples (``compare_cells``); ``cnnbench compare``'s table, the report's
speedups (``analyse.pairs``), builds, scaling and claims and the geometric means are built
on it, so no caller computes a ratio of its own.

Statistics, and why:

* **A cell's step time** is the geometric mean of its runs' median step times (one run: its
  median). Medians, because a round disturbed by the machine is an outlier, not information.
* **Runs are the unit of noise.** Fresh processes differ far more than rounds within one
  (ResNet-20 training under ``--repeat 3``: 575, 659 and 467 images/s, each run's own CI
  +-2-10%). So the variance comes from a *hierarchical* bootstrap: resample runs, then
  rounds within each chosen run (as pyperf spreads values over processes). A bootstrap over
  k runs shrinks the spread by (k-1)/k, so each side's variance is scaled by k/(k-1); and a
  few runs warrant Student's tails, not normal ones, so the interval is t(nu) x that
  standard error on the log scale, with Welch's nu from the sides' run counts (the
  percentiles of a bootstrap over 3 runs are too lumpy to mean much). The p-value is
  Welch's t test on the same variance, so the interval excludes 1 exactly when the test
  is significant. Simulated A/A pairs (3 runs a side, 15% process noise) are flagged at
  about the nominal 5%; compared one run a side, the same data are flagged ~80-90%.
* **One run per side**: the rounds are the only sample, the interval is the plain percentile
  bootstrap of the ratio of medians and the test is Mann-Whitney U on the rounds (as asv
  does). Between-process noise is not covered, and the comparison says so in its ``note``.
* **Several runs against one**: the lone run borrows the other side's between-run variance
  (and its degrees of freedom), since one fresh process can land anywhere in that spread.
* **Significant** = p < alpha, the interval excludes 1, and the change exceeds ``threshold``
  (a factor, like asv's ``--factor``). Anything else reads "no clear difference".
* Every bootstrap is seeded and vectorised: the same rows always give the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cnnbench.core.cells import is_simulated
from cnnbench.core.keys import ACROSS_MACHINES, CONFIG, KEY, options_key

# Bootstrap resamples of every interval: the one setting, so the report and ``compare`` give
# the same interval for the same pair.
N_RESAMPLES = 4000
ALPHA = 0.05
ONE_RUN_NOTE = "one run: between-process noise not covered; use --repeat"
BORROWED_NOTE = "one run on one side: its between-process noise taken from the other side's runs"
NO_CLEAR = "no clear difference"
# What two result sets are matched on by ``cnnbench compare`` (its own name for the key).
MATCH = ACROSS_MACHINES
# How the report and the claims name frameworks and modes.
FRAMEWORK_NAMES = {"pytorch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX",
                   "mxnet": "MXNet", "null": "null"}
MODE_NAMES = {"train": "training", "infer": "inference", "latency": "latency"}

CellKey = tuple[Hashable, ...]


@dataclass(frozen=True)
class Estimate:
    """One cell's step time (seconds) with its 95% interval, over ``runs`` runs."""

    step_s: float
    low_s: float
    high_s: float
    runs: int

    def images_per_s(self, batch_size: float) -> tuple[float, float, float]:
        """(images/s, low, high): a longer step is a lower throughput."""
        return batch_size / self.step_s, batch_size / self.high_s, batch_size / self.low_s


@dataclass(frozen=True)
class Comparison:
    """Contender vs baseline: ``ratio`` is the contender's throughput over the baseline's
    (baseline step time / contender's), with its 95% interval [low, high]."""

    ratio: float
    low: float
    high: float
    p_value: float
    significant: bool
    verdict: str  # "faster", "slower" or "no clear difference"
    runs_baseline: int
    runs_contender: int
    test: str  # "mann-whitney" (rounds of one run each) or "welch-t" (runs)
    note: str
    baseline: Estimate
    contender: Estimate

    def text(self) -> str:
        return format_ratio(self.ratio, self.low, self.high, self.significant)

    def inverted(self) -> Comparison:
        """The same comparison read the other way round (baseline over contender): the
        interval's ends swap, the test and its significance are the same ones."""
        verdict = {"faster": "slower", "slower": "faster"}.get(self.verdict, self.verdict)
        return replace(self, ratio=1.0 / self.ratio, low=1.0 / self.high, high=1.0 / self.low,
                       verdict=verdict, runs_baseline=self.runs_contender,
                       runs_contender=self.runs_baseline, baseline=self.contender,
                       contender=self.baseline)


@dataclass(frozen=True)
class GeoMean:
    ratio: float
    low: float
    high: float
    n: int

    def text(self) -> str:
        return format_ratio(self.ratio, self.low, self.high, not self.low <= 1.0 <= self.high)


# ------------------------------------------------------------------- formatting


def _num(x: float) -> str:
    return f"{x:.2f}" if 0.1 <= abs(x) < 100 else f"{x:.3g}"


def format_ratio(ratio: float, low: float, high: float, significant: bool) -> str:
    """'1.39× [1.31, 1.46]', or 'no clear difference (0.98× [0.93, 1.04])': a ratio that is
    not significant never stands as a bare number."""
    if not all(map(math.isfinite, (ratio, low, high))):
        return "n/a"
    body = f"{_num(ratio)}× [{_num(low)}, {_num(high)}]"
    return body if significant else f"{NO_CLEAR} ({body})"


# ------------------------------------------------------------------- samples


def simulated(rows: pd.DataFrame) -> pd.Series:
    """Which rows ran on simulated devices (``cpu*N``: N devices sharing the same cores).
    Their figures measure data-parallel overhead, never a machine or device: they belong in
    the data-parallel comparisons only, not beside hardware."""
    flag = rows["simulated"].eq(True) if "simulated" in rows else False  # older rows: None
    by_device = rows["device"].map(lambda d: is_simulated(str(d))).astype(bool)
    return by_device | flag


def timed(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that timed a cell: ok, and not a GEMM probe."""
    return df[(df["status"] == "ok") & (df["mode"] != "peak")]


def options_keys(options: pd.Series) -> list[str]:
    """``options_key`` of every row; rows read together share their options dict (see
    ``core.results``), so each distinct object is keyed once."""
    seen: dict[int, str] = {}
    out = []
    for o in options.tolist():  # the list keeps every object alive: ids stay unique
        k = seen.get(id(o))
        if k is None:
            k = seen[id(o)] = options_key(o)
        out.append(k)
    return out


def key_columns(rows: pd.DataFrame, key: Sequence[str] = KEY) -> list[list[Any]]:
    """The cell key's columns as lists, one value per row: ``threads`` as int (none: 0),
    ``options_key`` from ``options``; zipped, they are the rows' cell keys."""
    cols: list[list[Any]] = []
    for c in key:
        if c == "threads":
            cols.append(rows["threads"].fillna(0).astype(int).tolist())
        elif c == "options_key":
            cols.append(options_keys(rows["options"]))
        else:
            cols.append(rows[c].tolist())
    return cols


def rounds(samples: Any) -> np.ndarray:
    """A row's per-step seconds as a float array, without what is no timing (NaN, <= 0);
    an empty one for a row without samples. The array read (``core.results``) is returned
    as it is where every round is a timing."""
    if isinstance(samples, np.ndarray):
        arr = samples
    elif isinstance(samples, list) and samples:
        try:
            arr = np.asarray(samples, dtype=float)
        except (TypeError, ValueError):
            return np.empty(0)
    else:
        return np.empty(0)
    keep = np.isfinite(arr) & (arr > 0)
    return arr if keep.all() else arr[keep]


def cell_samples(df: pd.DataFrame, key: Sequence[str] = KEY) -> dict[CellKey, list[np.ndarray]]:
    """Per cell key, one array of per-step seconds per run (ok rows with samples; a row is a
    run: a repeat, or the same cell in another run file). Probe rows are left out."""
    if df.empty:
        return {}
    rows = timed(df)
    out: dict[CellKey, list[np.ndarray]] = {}
    keys = zip(*key_columns(rows, key), strict=True)
    for values, samples in zip(keys, rows["samples_s"].tolist(), strict=True):
        arr = rounds(samples)
        if arr.size:
            out.setdefault(values, []).append(arr)
    return out


class CellRuns(Mapping[CellKey, list[np.ndarray]]):
    """``cell_samples`` made lazily: every row's cell key is hashed once, and a cell's arrays
    are made (and kept) when it is asked for, so a report of 100,000 cells that compares a
    few hundred cleans the samples of those alone."""

    def __init__(self, df: pd.DataFrame, key: Sequence[str] = KEY) -> None:
        rows = timed(df) if not df.empty else df
        self._samples: list[Any] = rows["samples_s"].tolist() if len(rows) else []
        self._rows: dict[CellKey, list[int]] = {}
        if len(rows):
            for i, k in enumerate(zip(*key_columns(rows, key), strict=True)):
                self._rows.setdefault(k, []).append(i)
        self._made: dict[CellKey, list[np.ndarray]] = {}

    def _runs(self, k: CellKey) -> list[np.ndarray]:
        got = self._made.get(k)
        if got is None:
            arrays = (rounds(self._samples[i]) for i in self._rows.get(k, ()))
            got = self._made[k] = [a for a in arrays if a.size]
        return got

    def __getitem__(self, k: CellKey) -> list[np.ndarray]:
        got = self._runs(k)
        if not got:
            raise KeyError(k)
        return got

    def __iter__(self) -> Iterator[CellKey]:
        return (k for k in self._rows if self._runs(k))

    def __len__(self) -> int:
        return sum(1 for _ in self)


# ------------------------------------------------------------------- one cell


@dataclass(frozen=True)
class _Side:
    point: float  # log of the cell's step time
    reps: np.ndarray  # bootstrap replicates of it
    var: float  # variance of ``point``, small-run corrected
    df: float  # its degrees of freedom (inf: rounds of one run)
    runs: int
    between: float  # variance of one run's log median across the runs (nan for one run)
    borrowed: bool = False  # var is the other side's ``between``


def _side(runs: Sequence[np.ndarray], rng: np.random.Generator, n: int) -> _Side:
    runs = [np.asarray(r, dtype=float) for r in runs]
    if not runs or any(r.size == 0 for r in runs):
        raise ValueError("a cell needs at least one run with samples")
    k = len(runs)
    point = float(np.mean([np.log(np.median(r)) for r in runs]))
    # Stage 1: which run fills each of the k slots; stage 2: resample that run's rounds.
    # Runs of one length are stacked so each length takes one vectorised median.
    pick = rng.integers(k, size=(n, k))
    logmed = np.empty((n, k))
    by_size: dict[int, list[int]] = {}
    for j, run in enumerate(runs):
        by_size.setdefault(run.size, []).append(j)
    for size, members in by_size.items():
        stacked = np.stack([runs[j] for j in members])  # (runs of this size, size)
        slot = np.full(k, -1)
        slot[members] = np.arange(len(members))
        where = slot[pick] >= 0
        m = int(where.sum())
        if m:
            rows = slot[pick[where]]
            draws = stacked[rows[:, None], rng.integers(size, size=(m, size))]
            logmed[where] = np.log(np.median(draws, axis=1))
    reps = logmed.mean(axis=1)
    var = float(reps.var(ddof=1)) * (k / (k - 1) if k > 1 else 1.0)
    between = float(np.var(np.log([np.median(r) for r in runs]), ddof=1)) if k > 1 else math.nan
    return _Side(point, reps, var, float(k - 1) if k > 1 else math.inf, k, between)


def _borrow(side: _Side, other: _Side) -> _Side:
    """A one-run side next to a side of several runs takes the other side's between-run
    variance as its own (the same machine's process noise), with its degrees of freedom:
    a single fresh process can land anywhere in that spread."""
    if side.runs > 1 or other.runs < 2 or not other.between > side.var:
        return side
    return replace(side, var=other.between, df=other.df, borrowed=True)


def _welch(sides: Sequence[_Side]) -> tuple[float, float]:
    """(variance of the difference or sum of the sides' points, its Welch-Satterthwaite
    degrees of freedom; inf when every side is the rounds of one run)."""
    var = sum(s.var for s in sides)
    if any(s.borrowed for s in sides):
        # Both variances come from the same runs: one estimate, with that estimate's freedom.
        return var, min(s.df for s in sides)
    denom = sum(s.var * s.var / s.df for s in sides if math.isfinite(s.df))
    return var, var * var / denom if denom > 0 else math.inf


def _interval(point: float, reps: np.ndarray, sides: Sequence[_Side]) -> tuple[float, float]:
    """95% interval of ``point`` (log scale). Rounds of one run per side: the percentile
    bootstrap, which keeps the shape of many rounds. Several runs: Student's t with the
    corrected variance and Welch's degrees of freedom; a few runs give too lumpy a
    bootstrap distribution for its percentiles to mean much, and this way the interval
    excludes 1 exactly when Welch's test is significant."""
    var, nu = _welch(sides)
    if not math.isfinite(nu):
        lo, hi = np.percentile(reps, [2.5, 97.5])
        return float(lo), float(hi)
    half = float(stats.t.ppf(0.975, nu)) * math.sqrt(var)
    return point - half, point + half


def _estimate(s: _Side) -> Estimate:
    lo, hi = _interval(s.point, s.reps, [s])
    return Estimate(math.exp(s.point), math.exp(lo), math.exp(hi), s.runs)


def cell_estimate(runs: Sequence[np.ndarray], *, seed: int = 0,
                  n_resamples: int = N_RESAMPLES) -> Estimate:
    """A cell's step time and 95% interval (covering between-run noise when it has runs)."""
    return _estimate(_side(runs, np.random.default_rng(seed), n_resamples))


# ------------------------------------------------------------------- two cells


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0  # every round the same: nothing to rank
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def compare_cells(base_runs: Sequence[np.ndarray], cont_runs: Sequence[np.ndarray], *,
                  seed: int = 0, n_resamples: int = N_RESAMPLES, alpha: float = ALPHA,
                  threshold: float = 0.0) -> Comparison:
    """Compare two cells from their runs' raw step times (one array per run).

    ``threshold`` is the smallest change that counts, as a fraction of step time (0.05:
    5% slower or faster); below it a significant change still reads "no clear difference".
    """
    rng = np.random.default_rng(seed)
    b, c = _side(base_runs, rng, n_resamples), _side(cont_runs, rng, n_resamples)
    b, c = _borrow(b, c), _borrow(c, b)
    d = b.point - c.point  # log(contender throughput / baseline throughput)
    lo, hi = _interval(d, b.reps - c.reps, [b, c])
    if b.runs == 1 and c.runs == 1:
        p, test = _mann_whitney(np.asarray(base_runs[0]), np.asarray(cont_runs[0])), "mann-whitney"
    else:
        var, nu = _welch([b, c])
        p = float(2 * stats.t.sf(abs(d) / math.sqrt(var), nu)) if var > 0 else float(d == 0)
        test = "welch-t"
    excludes_one = lo > 0 or hi < 0
    big_enough = abs(d) > math.log1p(threshold)
    significant = bool(p < alpha and excludes_one and big_enough)
    verdict = ("faster" if d > 0 else "slower") if significant else NO_CLEAR
    note = ""
    if b.runs == c.runs == 1:
        note = ONE_RUN_NOTE
    elif min(b.runs, c.runs) == 1:
        note = BORROWED_NOTE
    return Comparison(math.exp(d), math.exp(lo), math.exp(hi), p, significant, verdict,
                      b.runs, c.runs, test, note, _estimate(b), _estimate(c))


# ------------------------------------------------------------------- tables


def _row(key: Mapping[str, Any], cmp: Comparison) -> dict[str, Any]:
    out = dict(key)
    batch = float(key.get("batch_size") or math.nan)
    for side, est in (("baseline", cmp.baseline), ("contender", cmp.contender)):
        ips, lo, hi = est.images_per_s(batch)
        out.update({f"{side}_ips": ips, f"{side}_low": lo, f"{side}_high": hi})
    fields = asdict(cmp)
    del fields["baseline"], fields["contender"]
    out.update(fields)
    out["text"] = cmp.text()
    return out


def compare_samples(base: Mapping[CellKey, Sequence[np.ndarray]],
                    cont: Mapping[CellKey, Sequence[np.ndarray]], columns: Sequence[str],
                    **options: Any) -> pd.DataFrame:
    """One row per cell key present in both: the key's ``columns``, both sides' images/s
    with intervals, and the comparison's fields (``options`` go to ``compare_cells``)."""
    rows = [_row(dict(zip(columns, k, strict=True)), compare_cells(base[k], cont[k], **options))
            for k in sorted(set(base) & set(cont), key=str)]
    return pd.DataFrame(rows, columns=[*columns, *_COLUMNS])


_COLUMNS = ["baseline_ips", "baseline_low", "baseline_high", "contender_ips", "contender_low",
            "contender_high", "ratio", "low", "high", "p_value", "significant", "verdict",
            "runs_baseline", "runs_contender", "test", "note", "text"]


def rel_half_width(low: Any, high: Any) -> Any:
    """The relative half-width of an interval [low, high] of a ratio or a rate (0.05: about
    +-5%), on the log scale the intervals are made on; scalars or arrays."""
    return np.sqrt(np.asarray(high) / np.asarray(low)) - 1.0


def runs_to_settle(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """``table`` (`compare_samples`'s) with ``half_width`` (0.05: the ratio's interval is
    +-5%), ``settled`` (within +-target) and ``runs_needed``: about how many runs a side would
    bring an unsettled interval within the target, since its width shrinks as one over the
    square root of the runs (a little faster, as the t quantile falls too)."""
    out = table.copy()
    hw = rel_half_width(out["low"], out["high"])
    runs = out[["runs_baseline", "runs_contender"]].max(axis=1)
    out["half_width"] = hw
    out["settled"] = hw <= target
    need = np.ceil(runs * (hw / target) ** 2)
    out["runs_needed"] = np.where(out["settled"], runs, need).astype(int)
    return out


def geomean(ratios: Sequence[float] | pd.Series, low: Sequence[float] | pd.Series | None = None,
            high: Sequence[float] | pd.Series | None = None, *, seed: int = 0,
            n_resamples: int = N_RESAMPLES) -> GeoMean:
    """The geometric mean of ratios with a 95% bootstrap interval: resample the cells and,
    where their intervals are given, each cell's own uncertainty (a normal on the log scale
    with the width of its interval), so one cell still gets an honest interval."""
    r = np.log(np.asarray(ratios, dtype=float))
    if r.size == 0 or not np.all(np.isfinite(r)):
        raise ValueError("geomean needs at least one positive finite ratio")
    rng = np.random.default_rng(seed)
    se = np.zeros_like(r)
    if low is not None and high is not None:
        width = np.log(np.asarray(high, dtype=float)) - np.log(np.asarray(low, dtype=float))
        se = np.nan_to_num(width / (2 * stats.norm.ppf(0.975)))
    idx = rng.integers(r.size, size=(n_resamples, r.size))
    reps = (r[idx] + rng.standard_normal(idx.shape) * se[idx]).mean(axis=1)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return GeoMean(math.exp(float(r.mean())), math.exp(lo), math.exp(hi), int(r.size))


# ------------------------------------------------------------------- report helpers

def config_labels(cells: pd.DataFrame, always: Sequence[str] = ("framework",),
                  fields: Sequence[str] = CONFIG) -> pd.Series:
    """One label per row naming what differs between the rows: the ``fields`` that take more
    than one value in ``cells`` (plus ``always``), e.g. "pytorch compiled t2". Two rows never
    share a label unless they share every field."""
    varying = [f for f in fields if f in cells
               and (f in always or cells[f].astype(str).nunique(dropna=False) > 1)]

    def part(f: str, v: Any) -> str:
        if f == "threads":
            return (f"{int(v)} thread" + ("s" if int(v) > 1 else "")) if v else "all threads"
        if f == "batch_size":
            return f"b{int(v)}"
        if f == "options_key":
            return "" if v in ("{}", "", None) else str(v)
        return str(v)

    if not varying or cells.empty:
        return pd.Series([""] * len(cells), index=cells.index, dtype=object)
    # Each distinct value is labelled once (a few per field, however many cells), with its
    # runs of white space made one and its ends stripped, as they would be in the whole label.
    cols = []
    for f in varying:
        codes, uniques = pd.factorize(cells[f], use_na_sentinel=False)
        names = np.array([" ".join(part(f, v).split()) for v in uniques], dtype=object)
        cols.append(names[codes].tolist())
    out = [" ".join(p for p in parts if p) for parts in zip(*cols, strict=True)]
    return pd.Series(out, index=cells.index, dtype="str")


def cells_table(df: pd.DataFrame, key: Sequence[str] = KEY, *, multi_run_limit: int = 2000,
                n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """One row per cell: the newest ok row's columns plus ``runs``, ``spread`` and the cell's
    images/s with its interval (``ips``, ``low``, ``high``). A cell of several runs gets the
    hierarchical interval of ``cell_estimate`` (between-run noise covered; the first
    ``multi_run_limit`` of them, the rest keep their newest run's); a one-run cell keeps its
    row's own interval, and ``between_runs`` says which."""
    ok = timed(df)
    cols = [*key, "runs", "spread", "ips", "low", "high", "between_runs"]
    if ok.empty:
        return pd.DataFrame(columns=[*df.columns, "options_key", *cols[len(key):]])
    ok = ok.assign(threads=ok["threads"].fillna(0).astype(int), options_key=options_keys(
        ok["options"])).sort_values("started_at", kind="stable").reset_index(drop=True)
    keycols = [ok[c].tolist() for c in key]
    # Cells numbered by first appearance: a pandas groupby on eleven object columns is many
    # times slower on 100,000 distinct cells than hashing their key tuples once.
    tuples = np.empty(len(ok), dtype=object)
    tuples[:] = list(zip(*keycols, strict=True))
    codes, uniques = pd.factorize(tuples)
    n = len(uniques)
    last = np.full(n, -1)
    np.maximum.at(last, codes, np.arange(len(ok)))  # the newest row of each cell
    out = ok.iloc[last].reset_index(drop=True)
    runs = np.bincount(codes, minlength=n)
    out["runs"] = runs
    out["spread"] = _spread(ok["images_per_s"].to_numpy(float), codes, runs)
    out["ips"] = out["images_per_s"].astype(float)
    out["low"] = out["ci95_low"].astype(float)
    out["high"] = out["ci95_high"].astype(float)
    out["between_runs"] = False
    multi = np.flatnonzero(runs > 1)[:multi_run_limit]
    if multi.size:
        _between_runs(out, ok["samples_s"], codes, multi, n_resamples)
    return out


def _spread(ips: np.ndarray, codes: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """(max - min) / median of each cell's runs' images/s; NaN for a cell of one run."""
    spread = np.full(runs.size, np.nan)
    several = runs[codes] > 1
    if several.any():
        g = pd.Series(ips[several]).groupby(codes[several])
        stat = (g.max() - g.min()) / g.median()
        spread[stat.index.to_numpy()] = stat.to_numpy()
    return spread


def _between_runs(out: pd.DataFrame, samples: pd.Series, codes: np.ndarray, multi: np.ndarray,
                  n_resamples: int) -> None:
    """The hierarchical interval of each cell in ``multi`` (positions in ``out``) that has
    two or more runs with samples, in place of its newest run's."""
    wanted = np.zeros(len(out), dtype=bool)
    wanted[multi] = True
    members: dict[int, list[np.ndarray]] = {}
    for c, smp in zip(codes.tolist(), samples.tolist(), strict=True):
        if wanted[c]:
            arr = rounds(smp)
            if arr.size:
                members.setdefault(c, []).append(arr)
    for j in multi.tolist():
        arrs = members.get(j, [])
        if len(arrs) < 2:
            continue
        est = cell_estimate(arrs, n_resamples=n_resamples)
        ips, lo, hi = est.images_per_s(float(out["batch_size"].iloc[j]))
        out.loc[j, ["ips", "low", "high", "between_runs"]] = [ips, lo, hi, True]

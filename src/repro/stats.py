"""The statistics behind the claims, in one place: rank correlations, ordered-pair tests,
slopes, the seeded bootstrap over seeds and the verdict rules of docs/CLAIMS.md section 1.1
(interval verdict, equivalence, intersection-union, Clopper-Pearson).

Conventions every function keeps:
* non-finite inputs are dropped pairwise (a diverged run is never a number);
* a statistic that is undefined (too few points, a constant input) is NaN, never 0, so the
  claim built on it is "inconclusive" (:func:`repro.claims.compare`);
* randomness is seeded by the caller: the same call gives the same interval.

scipy does the work where it has the statistic (``spearmanr``, ``bootstrap``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np


def spearman(x, y) -> tuple[float, float, int]:
    """(Spearman rho, two-sided p, n) over pairs where both are finite; NaN rho and p if
    n < 3 or either side is constant (scipy.stats.spearmanr; ties get average ranks)."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.unique(x[ok]).size < 2 or np.unique(y[ok]).size < 2:
        return math.nan, math.nan, n
    res = spearmanr(x[ok], y[ok])
    return float(res.statistic), float(res.pvalue), n


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of x and y with z held fixed: the partial correlation of the ranks,
    (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)), over triples where all three are
    finite; NaN with fewer than 4 such triples or when undefined."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if ok.sum() < 4:
        return math.nan
    rxy, rxz, ryz = spearman(x[ok], y[ok])[0], spearman(x[ok], z[ok])[0], spearman(y[ok], z[ok])[0]
    denom = math.sqrt(max((1 - rxz ** 2) * (1 - ryz ** 2), 0.0))
    if any(math.isnan(v) for v in (rxy, rxz, ryz)) or denom == 0:
        return math.nan
    return (rxy - rxz * ryz) / denom


# ------------------------------------------------------------------ ordered-pair tests


def ordered_pairs(values, metric, direction: int, skip=None) -> tuple[int, int, list]:
    """Over all pairs of points with different `values`: (pairs ordered as predicted, pairs
    compared, the violating pairs as (v_low, m_low, v_high, m_high)). direction +1: the
    metric should rise with the value, -1: fall. Ties in the metric count as not ordered.
    (good / compared = (1 + Kendall's tau_a) / 2 over pairs untied in `values`.)
    `skip` (booleans, one per point): a pair whose two points are both marked is not
    compared (e.g. two maxima that are one measurement of a shared starting network)."""
    values, metric = np.asarray(values, float), np.asarray(metric, float)
    skip = np.zeros(len(values), bool) if skip is None else np.asarray(skip, bool)
    good, total, bad = 0, 0, []
    for i, j in itertools.combinations(range(len(values)), 2):
        if values[i] == values[j] or (skip[i] and skip[j]):
            continue
        if values[i] > values[j]:
            i, j = j, i
        total += 1
        if direction * (metric[j] - metric[i]) > 0:
            good += 1
        else:
            bad.append((values[i], metric[i], values[j], metric[j]))
    return good, total, bad


def larger_has_lower(pairs: Iterable[tuple[Mapping, Mapping]], by: str, metric: str) -> tuple[int, int]:
    """Over given pairs of records: (pairs where the record with the larger `by` has the
    lower `metric`, pairs compared). A pair is compared when both metrics are finite and
    differ (ties say nothing about the direction)."""
    lower = counted = 0
    for p, q in pairs:
        a, b = p[metric], q[metric]
        if math.isfinite(a) and math.isfinite(b) and a != b:
            counted += 1
            big, small = (p, q) if p[by] > q[by] else (q, p)
            lower += int(big[metric] < small[metric])
    return lower, counted


def pair_closeness(near: Sequence, far: Sequence, metric: str, log: bool = False) -> tuple[float, float, float]:
    """(mean |difference| of `metric` within the `near` pairs, within the `far` pairs, their
    ratio): ratio < 1 when near pairs are more alike. log: compare log values (pairs with a
    value <= 0 are skipped); non-finite values are skipped; NaN when either set is empty."""
    def diffs(pairs):
        out = []
        for p, q in pairs:
            a, b = p[metric], q[metric]
            if not (math.isfinite(a) and math.isfinite(b)) or (log and (a <= 0 or b <= 0)):
                continue
            out.append(abs(math.log(a) - math.log(b)) if log else abs(a - b))
        return out

    dn, df = diffs(near), diffs(far)
    if not dn or not df:
        return math.nan, math.nan, math.nan
    mn, mf = float(np.mean(dn)), float(np.mean(df))
    return mn, mf, (mn / mf if mf > 0 else math.nan)


# ------------------------------------------------------------------ bootstrap over seeds


def bootstrap_ci(*samples, statistic: Callable = np.mean, level: float = 0.95, n_resamples: int = 9999,
                 seed: int = 0, paired: bool = False) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of `statistic` over seeds.

    Each sample is a 1-D sequence with one value per seed (e.g. a run's final test accuracy
    per seed); seeds are resampled with replacement, independently per sample, or jointly
    (``paired=True``: the samples are the same seeds, e.g. two schedules sharing initial
    networks). `statistic(*samples, axis=-1)` must reduce along `axis` (np.mean, np.median,
    or e.g. ``lambda a, b, axis: a.mean(axis) - b.mean(axis)``). Non-finite values are
    dropped first (pairwise when paired); NaN bounds when a sample has < 2 values.
    scipy.stats.bootstrap does the resampling, seeded by `seed`."""
    from scipy.stats import bootstrap

    arrays = [np.asarray(s, float) for s in samples]
    if paired:
        ok = np.logical_and.reduce([np.isfinite(a) for a in arrays])
        arrays = [a[ok] for a in arrays]
    else:
        arrays = [a[np.isfinite(a)] for a in arrays]
    if not arrays or any(a.size < 2 for a in arrays):
        return math.nan, math.nan
    res = bootstrap(tuple(arrays), statistic, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", paired=paired, vectorized=True, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.nan, math.nan
    return low, high


# ------------------------------------------------------------------ the protocol (docs/CLAIMS.md 1.1)

BOOTSTRAP_SEED = 20191      # one generator seed for the whole project: a table's intervals repeat bit for bit
BOOTSTRAP_B = 10_000
MIN_SEEDS = 3               # fewer completed seeds per cell: the claim is inconclusive (CLAIMS.md 1.1)


def seed_bootstrap(frame, statistic: Callable, seed_col: str = "seed", B: int = BOOTSTRAP_B,
                   level: float = 0.95, rng_seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """(value, lo, hi): `statistic(frame)` and its percentile interval, resampling *seeds*.

    A seed carries all its rows, so comparisons inside a seed stay paired. Each resample
    draws n seeds with replacement; the rows of a seed drawn twice appear twice, the copies
    relabelled (``seed_col`` = the draw's position 0..n-1) so a statistic that groups or
    pairs by seed sees two distinct seeds. The draw is sorted before the frame is built, so
    the resampled frame depends only on which seeds were drawn how often; the statistic is
    then computed once per distinct multiset (at most C(2n-1, n): 10 for n = 3) — the same
    numbers as computing it on every resample, much faster. NaN interval when the statistic
    is NaN on the data or on any resample, or with fewer than 2 seeds.
    """
    value = float(statistic(frame))
    seeds = list(dict.fromkeys(frame[seed_col]))
    n = len(seeds)
    if n < 2 or not math.isfinite(value):
        return value, math.nan, math.nan
    rows = {s: np.flatnonzero((frame[seed_col] == s).to_numpy()) for s in seeds}
    draws = np.sort(np.random.default_rng(rng_seed).integers(0, n, size=(B, n)), axis=1)
    cache: dict[tuple, float] = {}
    values = np.empty(B)
    for b, draw in enumerate(draws):
        key = tuple(draw)
        if key not in cache:
            idx = np.concatenate([rows[seeds[i]] for i in key])
            part = frame.iloc[idx].copy()
            part[seed_col] = np.repeat(np.arange(n), [len(rows[seeds[i]]) for i in key])
            cache[key] = float(statistic(part))
        values[b] = cache[key]
    if not np.all(np.isfinite(values)):
        return value, math.nan, math.nan
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return value, float(lo), float(hi)


def interval_verdict(lo: float, hi: float, op: str, threshold) -> str:
    """The three-way verdict of CLAIMS.md 1.1 from an interval [lo, hi] for "value OP threshold".

    op: ">", "<", ">=", "<=", or "in" (threshold = (a, b), the closed band [a, b]).
    holds only when the whole interval is on the claimed side, fails only when it is on
    the other side, inconclusive otherwise or when a bound is missing (NaN/None).
    """
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if op == "in":
        a, b = threshold
        holds, fails = a <= lo and hi <= b, hi < a or lo > b
    elif op == ">":
        holds, fails = lo > threshold, hi < threshold
    elif op == ">=":
        holds, fails = lo >= threshold, hi < threshold
    elif op == "<":
        holds, fails = hi < threshold, lo > threshold
    elif op == "<=":
        holds, fails = hi <= threshold, lo > threshold
    else:
        raise ValueError(f"op must be one of >, >=, <, <=, in; got {op!r}")
    return "holds" if holds else "fails" if fails else "inconclusive"


def equivalence_verdict(lo90: float, hi90: float, margin: float) -> str:
    """Equivalence by two one-sided tests at alpha 0.05: the 90 % interval of the difference
    inside (-margin, +margin) holds, entirely outside it fails, else inconclusive."""
    if lo90 is None or hi90 is None or not (math.isfinite(lo90) and math.isfinite(hi90)):
        return "inconclusive"
    if -margin < lo90 and hi90 < margin:
        return "holds"
    if hi90 <= -margin or lo90 >= margin:
        return "fails"
    return "inconclusive"


def all_of(verdicts: Iterable[str]) -> str:
    """Intersection-union for "for every X": holds if every part holds, fails if any part
    fails, inconclusive otherwise (and with no parts)."""
    verdicts = list(verdicts)
    if not verdicts:
        return "inconclusive"
    if "fails" in verdicts:
        return "fails"
    return "holds" if all(v == "holds" for v in verdicts) else "inconclusive"


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial rate k/n (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p); 1 for k <= 0."""
    from scipy.stats import binom

    return 1.0 if k <= 0 else float(binom.sf(int(k) - 1, int(n), p))


def loglog_slope(x, y) -> tuple[float, float, float, float]:
    """OLS slope of log y on log x: (slope, stderr, ci95_low, ci95_high) (t interval of the
    regression; NaN bounds with fewer than 3 points)."""
    from scipy.stats import linregress, t

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    fit = linregress(lx, ly)
    q = t.ppf(0.975, len(lx) - 2) * fit.stderr if len(lx) > 2 else math.nan
    return float(fit.slope), float(fit.stderr), float(fit.slope - q), float(fit.slope + q)

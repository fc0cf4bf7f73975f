"""The statistics behind the claims, in one place: rank correlations, ordered-pair tests and
a seeded bootstrap interval over seeds.

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


def ordered_pairs(values, metric, direction: int) -> tuple[int, int, list]:
    """Over all pairs of points with different `values`: (pairs ordered as predicted, pairs
    compared, the violating pairs as (v_low, m_low, v_high, m_high)). direction +1: the
    metric should rise with the value, -1: fall. Ties in the metric count as not ordered.
    (good / compared = (1 + Kendall's tau_a) / 2 over pairs untied in `values`.)"""
    values, metric = np.asarray(values, float), np.asarray(metric, float)
    good, total, bad = 0, 0, []
    for i, j in itertools.combinations(range(len(values)), 2):
        if values[i] == values[j]:
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

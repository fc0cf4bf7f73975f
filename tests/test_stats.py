"""repro.stats: each statistic against scipy.stats where scipy has it, by hand where not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from repro import stats


def test_spearman_equals_scipy_with_ties_and_drops_non_finite_pairs():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 30).astype(float)  # many ties
    y = x + rng.normal(0, 1.5, 30)
    ref = scipy.stats.spearmanr(x, y)
    rho, p, n = stats.spearman(x, y)
    assert (rho, p, n) == (pytest.approx(ref.statistic, abs=1e-15), pytest.approx(ref.pvalue, rel=1e-12), 30)
    rho2, p2, n2 = stats.spearman(np.r_[x, np.nan, 3.0], np.r_[y, 1.0, np.inf])
    assert n2 == 30 and rho2 == pytest.approx(rho, abs=1e-15) and p2 == pytest.approx(p, rel=1e-12)


def test_spearman_is_nan_when_undefined():
    assert math.isnan(stats.spearman([1, 2], [2, 1])[0])            # n < 3
    assert math.isnan(stats.spearman([1, 1, 1, 1], [1, 2, 3, 4])[0])  # constant x
    rho, p, n = stats.spearman([1, 2, np.nan, 4], [np.nan, 1, 2, 3])
    assert n == 2 and math.isnan(rho) and math.isnan(p)


def test_partial_spearman_is_the_correlation_of_rank_residuals():
    rng = np.random.default_rng(1)
    z = rng.normal(size=40)
    x = z + rng.normal(0, 0.5, 40)
    y = z + rng.normal(0, 0.5, 40)
    rx, ry, rz = (scipy.stats.rankdata(v) for v in (x, y, z))
    design = np.c_[np.ones(40), rz]
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    expected = scipy.stats.pearsonr(*res).statistic
    assert stats.partial_spearman(x, y, z) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(stats.partial_spearman(x[:3], y[:3], z[:3]))


def test_ordered_pairs_counts_concordance_with_kendall_tau():
    values = np.array([1.0, 2.0, 2.0, 4.0, 8.0])
    metric = np.array([5.0, 4.0, 4.5, 4.5, 1.0])
    good, total, bad = stats.ordered_pairs(values, metric, direction=-1)
    assert total == 9  # 10 pairs minus the one tie in `values`
    # (2, 4.0) -> (4, 4.5) rises; (2, 4.5) -> (4, 4.5) is a tie: both violate the predicted fall
    assert good == 7 and bad == [(2.0, 4.0, 4.0, 4.5), (2.0, 4.5, 4.0, 4.5)]
    good_up, total_up, _ = stats.ordered_pairs(values, metric, direction=+1)
    assert total_up == total and good_up == 1  # the metric tie is ordered in neither direction
    # without ties: good / compared = (1 + tau) / 2, tau = Kendall's tau in the predicted direction
    v, m = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([5.0, 3.0, 4.0, 2.0, 1.0])
    tau = scipy.stats.kendalltau(v, m).statistic
    good, total, _ = stats.ordered_pairs(v, m, direction=-1)
    assert total == 10 and good / total == pytest.approx((1 - tau) / 2, abs=1e-12)


def test_larger_has_lower_and_pair_closeness_by_hand():
    pairs = [({"lr": 0.1, "m": 1.0}, {"lr": 0.05, "m": 2.0}),   # larger lr lower: yes
             ({"lr": 0.05, "m": 1.0}, {"lr": 0.2, "m": 3.0}),   # no
             ({"lr": 0.1, "m": 1.0}, {"lr": 0.2, "m": 1.0}),    # tie: not compared
             ({"lr": 0.1, "m": math.nan}, {"lr": 0.2, "m": 1.0})]  # missing: not compared
    assert stats.larger_has_lower(pairs, "lr", "m") == (1, 2)
    near = [({"m": 1.0}, {"m": 1.5}), ({"m": 2.0}, {"m": 2.5})]
    far = [({"m": 1.0}, {"m": 3.0}), ({"m": 1.0}, {"m": math.nan})]
    assert stats.pair_closeness(near, far, "m") == (0.5, 2.0, 0.25)
    mn, mf, ratio = stats.pair_closeness(near, far, "m", log=True)
    assert mn == pytest.approx((math.log(1.5) + math.log(1.25)) / 2) and mf == pytest.approx(math.log(3))
    assert all(math.isnan(v) for v in stats.pair_closeness(near, [], "m"))


def test_bootstrap_ci_is_scipys_percentile_interval_and_seeded():
    acc = [0.91, 0.93, 0.90, 0.94, 0.92, 0.95]
    low, high = stats.bootstrap_ci(acc, n_resamples=2000, seed=3)
    ref = scipy.stats.bootstrap((np.array(acc),), np.mean, n_resamples=2000, method="percentile",
                                rng=np.random.default_rng(3)).confidence_interval
    assert (low, high) == (pytest.approx(ref.low, abs=1e-15), pytest.approx(ref.high, abs=1e-15))
    assert low < np.mean(acc) < high and min(acc) <= low and high <= max(acc)
    assert stats.bootstrap_ci(acc, n_resamples=2000, seed=3) == (low, high)
    assert stats.bootstrap_ci(acc, n_resamples=2000, seed=4) != (low, high)
    assert stats.bootstrap_ci(acc + [math.nan], n_resamples=2000, seed=3) == (low, high)  # NaN dropped
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.9, math.nan]))


def test_bootstrap_ci_paired_difference_over_shared_seeds():
    a = np.array([0.90, 0.92, 0.91, 0.95])
    b = a - np.array([0.01, 0.02, 0.015, 0.01])  # b trails a on every seed

    def diff(x, y, axis=-1):
        return x.mean(axis=axis) - y.mean(axis=axis)

    low, high = stats.bootstrap_ci(a, b, statistic=diff, paired=True, n_resamples=1000, seed=0)
    ref = scipy.stats.bootstrap((a, b), diff, paired=True, n_resamples=1000, method="percentile",
                                rng=np.random.default_rng(0)).confidence_interval
    assert (low, high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert 0.01 - 1e-12 <= low <= high <= 0.02 + 1e-12  # within the per-seed gaps

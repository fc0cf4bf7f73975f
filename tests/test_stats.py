"""repro.stats: each statistic against scipy.stats where scipy has it, by hand where not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
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



def test_ordered_pairs_skips_pairs_whose_points_are_both_marked():
    values, metric = np.array([1.0, 2.0, 4.0]), np.array([3.0, 3.0, 1.0])
    assert stats.ordered_pairs(values, metric, -1)[:2] == (2, 3)            # the tie (1, 2) is a violation
    good, total, bad = stats.ordered_pairs(values, metric, -1, skip=[True, True, False])
    assert (good, total, bad) == (2, 2, [])                                  # ... unless both are marked
    assert stats.ordered_pairs(values, metric, -1, skip=[True, False, False])[:2] == (2, 3)


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


# ------------------------------------------------------------------ the protocol (docs/CLAIMS.md 1.1)


def _per_seed(values, seeds=None):
    seeds = list(range(len(values))) if seeds is None else seeds
    return pd.DataFrame({"seed": seeds, "v": values})


def _mean(frame):
    return frame["v"].mean()


def test_seed_bootstrap_with_three_seeds_is_the_range():
    """Each one-seed resample has probability 1/27 > 2.5 %: the 95 % interval is the range."""
    value, lo, hi = stats.seed_bootstrap(_per_seed([0.3, -0.1, 0.5]), _mean)
    assert value == pytest.approx(0.7 / 3) and (lo, hi) == (pytest.approx(-0.1, abs=1e-15), 0.5)


def test_seed_bootstrap_matches_a_plain_percentile_bootstrap_of_the_mean():
    """Against the textbook resampling with the same draws (no caching, no relabelling)."""
    vals = np.array([0.91, 0.93, 0.90, 0.94, 0.92, 0.95])
    value, lo, hi = stats.seed_bootstrap(_per_seed(vals), _mean, B=2000, rng_seed=7)
    draws = np.random.default_rng(7).integers(0, 6, size=(2000, 6))
    ref = np.percentile(vals[draws].mean(axis=1), [2.5, 97.5])
    assert value == pytest.approx(vals.mean())
    assert (lo, hi) == (pytest.approx(ref[0], abs=1e-12), pytest.approx(ref[1], abs=1e-12))


def test_seed_bootstrap_keeps_pairs_and_relabels_duplicated_seeds():
    frame = pd.DataFrame({"seed": [5, 5, 7, 7, 9, 9], "arm": ["a", "b"] * 3,
                          "v": [1.0, 0.0, 2.0, 1.5, 3.0, 2.9]})
    seen = []

    def paired_gap(f):
        wide = f.pivot(index="seed", columns="arm", values="v")    # fails if a seed label repeats within an arm
        seen.append(len(wide))
        return float((wide["a"] - wide["b"]).mean())

    value, lo, hi = stats.seed_bootstrap(frame, paired_gap)
    assert value == pytest.approx((1.0 + 0.5 + 0.1) / 3)
    assert (lo, hi) == (pytest.approx(0.1), pytest.approx(1.0))    # the range of the per-seed gaps
    assert set(seen) == {3}                                         # always 3 distinct seeds


def test_seed_bootstrap_constant_statistic_seeded_and_degenerate_cases():
    frame = _per_seed([0.2, 0.4, 0.9, 0.1, 0.5])
    assert stats.seed_bootstrap(frame, lambda f: 1.5) == (1.5, 1.5, 1.5)
    first = stats.seed_bootstrap(frame, _mean)
    assert stats.seed_bootstrap(frame, _mean) == first                     # fixed generator
    assert stats.seed_bootstrap(frame, _mean, B=40, rng_seed=1) != stats.seed_bootstrap(frame, _mean, B=40)
    assert stats.BOOTSTRAP_SEED == 20191 and stats.BOOTSTRAP_B == 10_000
    value, lo, hi = stats.seed_bootstrap(_per_seed([0.3]), _mean)          # one seed: no interval
    assert value == 0.3 and math.isnan(lo) and math.isnan(hi)
    value, lo, hi = stats.seed_bootstrap(frame, lambda f: math.nan)
    assert math.isnan(value) and math.isnan(lo)
    # NaN on some resample (here: when seed 0's row is drawn) makes the interval NaN
    _, lo, hi = stats.seed_bootstrap(frame, lambda f: math.nan if (f["v"] == 0.2).sum() > 1 else 1.0)
    assert math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("lo,hi,op,t,expected", [
    (0.1, 0.3, ">", 0, "holds"), (-0.3, -0.1, ">", 0, "fails"), (-0.1, 0.3, ">", 0, "inconclusive"),
    (0.0, 0.3, ">", 0, "inconclusive"),
    (-0.3, -0.1, "<", 0, "holds"), (0.1, 0.3, "<", 0, "fails"), (-0.1, 0.0, "<", 0, "inconclusive"),
    (0.8, 0.9, ">=", 0.8, "holds"), (0.5, 0.79, ">=", 0.8, "fails"), (0.7, 0.9, ">=", 0.8, "inconclusive"),
    (0.5, 0.79, ">=", 0.8, "fails"),
    (-0.6, -0.4, "in", (-0.7, -0.3), "holds"), (-0.7, -0.3, "in", (-0.7, -0.3), "holds"),
    (-0.2, -0.1, "in", (-0.7, -0.3), "fails"), (-0.9, -0.8, "in", (-0.7, -0.3), "fails"),
    (-0.5, -0.2, "in", (-0.7, -0.3), "inconclusive"), (-0.9, -0.1, "in", (-0.7, -0.3), "inconclusive"),
    (math.nan, 1.0, ">", 0, "inconclusive"), (None, None, "<", 0, "inconclusive"),
])
def test_interval_verdict_table(lo, hi, op, t, expected):
    assert stats.interval_verdict(lo, hi, op, t) == expected


def test_equivalence_and_intersection_union():
    assert stats.equivalence_verdict(-0.004, 0.006, 0.01) == "holds"
    assert stats.equivalence_verdict(-0.004, 0.012, 0.01) == "inconclusive"   # straddles the margin
    assert stats.equivalence_verdict(0.011, 0.03, 0.01) == "fails"
    assert stats.equivalence_verdict(-0.03, -0.01, 0.01) == "fails"
    assert stats.equivalence_verdict(math.nan, 0.0, 0.01) == "inconclusive"
    assert stats.all_of(["holds", "holds"]) == "holds"
    assert stats.all_of(["holds", "inconclusive"]) == "inconclusive"
    assert stats.all_of(["inconclusive", "fails", "holds"]) == "fails"
    assert stats.all_of([]) == "inconclusive"


def test_clopper_pearson_and_binomial_tail_by_hand():
    # k = 0: the upper bound solves (1 - p)^n = alpha/2; k = n: the lower bound p^n = alpha/2
    lo, hi = stats.clopper_pearson(0, 9)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 9), rel=1e-9)
    lo, hi = stats.clopper_pearson(9, 9)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 9), rel=1e-9)
    # 0 < k < n: the beta quantiles
    lo, hi = stats.clopper_pearson(3, 9)
    assert lo == pytest.approx(scipy.stats.beta.ppf(0.025, 3, 7), rel=1e-9)
    assert hi == pytest.approx(scipy.stats.beta.ppf(0.975, 4, 6), rel=1e-9)
    assert stats.binomial_tail(0, 6, 0.05) == 1.0
    assert stats.binomial_tail(1, 6, 0.05) == pytest.approx(1 - 0.95 ** 6)
    assert stats.binomial_tail(3, 6, 0.05) == pytest.approx(
        sum(math.comb(6, j) * 0.05 ** j * 0.95 ** (6 - j) for j in range(3, 7)))


def test_loglog_slope_is_the_ols_slope_with_a_t_interval():
    x = np.array([100.0, 250, 500, 1000, 2000, 4000])
    y = 2 * x ** -0.5 * np.array([1.02, 0.98, 1.01, 0.99, 1.03, 0.97])
    slope, se, lo, hi = stats.loglog_slope(x, y)
    fit = scipy.stats.linregress(np.log(x), np.log(y))
    assert slope == pytest.approx(fit.slope) and se == pytest.approx(fit.stderr)
    q = scipy.stats.t.ppf(0.975, 4) * fit.stderr
    assert (lo, hi) == (pytest.approx(fit.slope - q), pytest.approx(fit.slope + q))
    assert math.isnan(stats.loglog_slope([1, 2], [1, 2])[2])

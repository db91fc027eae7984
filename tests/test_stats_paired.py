"""Paired comparisons on hand-made data: the bootstrap, Tango's score interval for 0/1 scores,
p-values that agree with their intervals, and Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from rlhf_common import stats
from rlhf_common.intervals.binomial import effective_divisor
from rlhf_common.intervals.bootstrap import design_expansion, expanded_levels
from rlhf_common.intervals.paired_binary import (
    mcnemar_p_value,
    paired_design_effect,
    tango_bounds,
    tango_statistic,
)
from rlhf_eval.estimation import summed_statistic
from rlhf_eval.intervals.simulation import counts_to_pairs
from rlhf_eval.metrics.bleu import bleu_from_statistics


def test_bootstrap_p_value_by_hand():
    # 1 of 4 replicates <= 0, 3 of 4 >= 0: min((1+1)/5, (1+3)/5) * 2 = 0.8
    assert stats.bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(0.8)
    assert stats.bootstrap_p_value(np.zeros(9)) == 1.0
    # Every replicate above the null: the Monte Carlo floor 2 / (B + 1), never 0.
    assert stats.bootstrap_p_value(np.ones(99)) == pytest.approx(0.02)


def test_holm_by_hand():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # None is no test: m = 2 here.
    assert stats.holm([0.02, None, 0.04]) == [pytest.approx(0.04), None, pytest.approx(0.04)]
    # Capped at 1 and kept monotone: 0.5*2 = 1.0, then max(1.0, 0.6) = 1.0.
    assert stats.holm([0.6, 0.5]) == [1.0, 1.0]
    assert stats.holm([]) == []
    with pytest.raises(ValueError):
        stats.holm([1.5])


def test_paired_test_interval_is_paired_bootstraps():
    rng = np.random.default_rng(3)
    a, b = rng.random(40), rng.random(40)
    for method in ("auto", "percentile", "expanded", "bca", "studentized", "t"):
        test = stats.paired_bootstrap_test(a, b, iterations=2000, seed=7, method=method)
        assert test.delta == stats.paired_bootstrap(a, b, iterations=2000, seed=7, method=method)
        assert 0 <= test.p_value <= 1


def test_identical_models_have_p_one_and_a_constant_shift_the_floor():
    a = np.array([0.2, 0.5, 0.9, 0.1])
    same = stats.paired_bootstrap_test(a, a, iterations=999)
    assert (same.delta.point, same.delta.lo, same.delta.hi, same.p_value) == (0, 0, 0, 1.0)
    shifted = stats.paired_bootstrap_test(a + 1, a, iterations=999)
    assert shifted.delta.point == pytest.approx(1.0)
    assert shifted.p_value == pytest.approx(2 / 1000)


def test_two_item_bootstrap_p_value_by_hand():
    # Differences [0, 1]: a resample's mean is 0 with probability 1/4, so p = 2 * 1/4 = 0.5.
    test = stats.paired_bootstrap_test(
        [1.0, 1.0], [1.0, 0.0], iterations=40_000, seed=1, method="percentile"
    )
    assert test.p_value == pytest.approx(0.5, abs=0.02)
    assert (test.delta.lo, test.delta.hi) == (0.0, 1.0)


def test_clusters_are_resampled_whole():
    """Six items in two passages, differences [0, 0, 0] and [1, 1, 1]. Resampling items, a mean
    of 0 needs all six draws from the first passage: P = 1/64, p = 2/64, and the 95% interval is
    [1/6, 5/6] (the 2.5% and 97.5% points of Binomial(6, 1/2) / 6). Resampling passages, the
    mean is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4: p = 1/2 and the interval [0, 1]."""
    candidate = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    baseline = [0.0] * 6
    items = stats.paired_bootstrap_test(
        candidate, baseline, iterations=40_000, seed=2, method="percentile"
    )
    assert items.p_value == pytest.approx(2 / 64, abs=0.005)
    assert (items.delta.lo, items.delta.hi) == pytest.approx((1 / 6, 5 / 6))
    passages = ["p1"] * 3 + ["p2"] * 3
    clustered = stats.paired_bootstrap_test(
        candidate, baseline, iterations=40_000, seed=2, clusters=passages, method="percentile"
    )
    assert clustered.p_value == pytest.approx(0.5, abs=0.02)
    assert (clustered.delta.lo, clustered.delta.hi) == (0.0, 1.0)
    assert "clustered by 2 groups" in clustered.delta.method
    single = stats.paired_bootstrap_test(candidate, baseline, clusters=["p"] * 6)
    assert single.delta.lo is None and single.p_value is None


def test_paired_statistic_sees_the_same_indices_for_both_models():
    """Mean as a statistic: the paired statistic test must reproduce the paired mean test, which
    resamples differences. If the two models saw different resamples, the interval would be
    that of two independent means, far wider."""
    rng = np.random.default_rng(0)
    base = rng.random(50)
    cand = base + rng.normal(0, 0.01, 50) + 0.05
    mean_of = lambda x: lambda idx: x[idx].mean(axis=1)  # noqa: E731
    by_statistic = stats.paired_statistic_test(
        mean_of(cand), mean_of(base), 50, iterations=3000, seed=5
    )
    by_mean = stats.paired_bootstrap_test(cand, base, iterations=3000, seed=5, method="expanded")
    assert by_statistic.delta.point == pytest.approx(by_mean.delta.point, abs=1e-12)
    assert by_statistic.delta.lo == pytest.approx(by_mean.delta.lo, abs=1e-12)
    assert by_statistic.delta.hi == pytest.approx(by_mean.delta.hi, abs=1e-12)
    assert by_statistic.p_value == by_mean.p_value
    assert by_statistic.delta.hi - by_statistic.delta.lo < 0.01


def test_paired_corpus_bleu_of_identical_systems_is_exactly_zero():
    rng = np.random.default_rng(1)
    # Made-up sentence statistics: lengths, matches <= totals for n = 1..4.
    totals = rng.integers(5, 20, size=(30, 4)).astype(float)
    table = np.column_stack([totals[:, 0], totals[:, 0] + 1, totals // 2, totals])
    bleu = summed_statistic(table, bleu_from_statistics)
    test = stats.paired_statistic_test(bleu, bleu, 30, iterations=500, clusters=None)
    assert (test.delta.point, test.delta.lo, test.delta.hi, test.p_value) == (0, 0, 0, 1.0)


# --- paired proportions: Tango's score interval ----------------------------------------------


def test_tango_matches_the_published_cavo_example():
    # Cavo et al. (2012), Fagerland, Lydersen & Laake's "Statistical Analysis of Contingency
    # Tables" (ch. 8), CRAN contingencytables' tests: table [[59, 6], [16, 80]], so b = n12 = 6,
    # c = n21 = 16, N = 161: estimate -0.0621 (95% CI -0.1240 to -0.0054); McNemar's asymptotic
    # test P = 0.033006, Z = -2.132.
    lo, hi = tango_bounds(6, 16, 161, 0.95)
    assert (round(lo, 4), round(hi, 4)) == (-0.1240, -0.0054)
    assert mcnemar_p_value(6, 16) == pytest.approx(0.033006, abs=5e-7)
    test = stats.paired_proportion_test(*counts_to_pairs(6, 16, 161))
    assert test.delta.point == pytest.approx(-10 / 161)
    assert (test.delta.lo, test.delta.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert test.p_value == pytest.approx(0.033006, abs=5e-7)
    assert test.delta.method == (
        "Tango score interval for paired proportions (n=161, discordant b=6, c=16)"
    )


def brute_force_score(delta: float, b: int, c: int, n: int) -> float:
    """The score statistic with the restricted MLE of q21 found numerically: maximise the
    multinomial log-likelihood b log(q21 + δ) + c log q21 + (n - b - c) log(1 - 2 q21 - δ)
    over the q21 that keep every cell probability positive."""
    low, high = max(0.0, -delta) + 1e-12, (1 - delta) / 2 - 1e-12

    def negative_log_likelihood(q: float) -> float:
        cells = np.array([q + delta, q, 1 - 2 * q - delta])
        counts = np.array([b, c, n - b - c])
        return -float(np.sum(counts[counts > 0] * np.log(cells[counts > 0])))

    q21 = minimize_scalar(
        negative_log_likelihood, bounds=(low, high), method="bounded", options={"xatol": 1e-12}
    ).x
    return (b - c - n * delta) / math.sqrt(n * (2 * q21 + delta * (1 - delta)))


@pytest.mark.parametrize(("b", "c", "n"), [(6, 16, 161), (0, 3, 30), (5, 0, 20), (1, 1, 50)])
def test_tango_is_the_inversion_of_the_score_test(b, c, n):
    """An independent computation: the score statistic from a numerical restricted MLE, and the
    interval as the set of δ on a fine grid where |Z(δ)| <= 1.96."""
    lo, hi = tango_bounds(b, c, n, 0.95)
    for delta in (lo, hi, (b - c) / n + 0.05, -0.3):
        if -1 < delta < 1 and delta != (b - c) / n:
            assert tango_statistic(delta, b, c, n) == pytest.approx(
                brute_force_score(delta, b, c, n), rel=1e-5, abs=1e-6
            )
    z = norm.ppf(0.975)

    def accepted(grid: np.ndarray) -> np.ndarray:
        return grid[[abs(brute_force_score(d, b, c, n)) <= z for d in grid]]

    coarse = accepted(np.arange(-0.999, 0.999, 2e-3))
    # refine each end on a grid 100 times finer around where the coarse scan found it
    low_end = accepted(np.arange(coarse.min() - 2e-3, coarse.min() + 2e-3, 2e-5)).min()
    high_end = accepted(np.arange(coarse.max() - 2e-3, coarse.max() + 2e-3, 2e-5)).max()
    assert low_end == pytest.approx(lo, abs=3e-5)
    assert high_end == pytest.approx(hi, abs=3e-5)


def test_no_discordant_pair_does_not_collapse():
    # b = c = 0: Z(δ) = -sqrt(n δ / (1 - δ)) for δ > 0, so the bound is z² / (n + z²), which
    # is also Wilson's upper bound at 0 of n.
    z = norm.ppf(0.975)
    test = stats.paired_proportion_test([1.0] * 60 + [0.0] * 40, [1.0] * 60 + [0.0] * 40)
    assert test.delta.point == 0 and test.p_value == 1.0
    assert test.delta.hi == pytest.approx(z * z / (100 + z * z), abs=1e-10)
    assert test.delta.lo == pytest.approx(-test.delta.hi, abs=1e-10)
    # ... where the paired bootstrap gave [0, 0]
    old = stats.paired_bootstrap_test([1.0] * 60 + [0.0] * 40, [1.0] * 60 + [0.0] * 40)
    assert (old.delta.lo, old.delta.hi) == (0.0, 0.0)


@pytest.mark.parametrize(("b", "c", "n"), [(3, 12, 80), (4, 12, 80), (10, 3, 40), (0, 7, 30)])
def test_score_test_rejects_exactly_when_the_interval_excludes_zero(b, c, n):
    test = stats.paired_proportion_test(*counts_to_pairs(b, c, n))
    assert (test.p_value < 0.05) == (not test.delta.lo <= 0 <= test.delta.hi)


def test_paired_proportion_drops_failures_and_needs_zero_one_scores():
    a = [1.0, 0.0, 1.0, None, 1.0]
    b = [1.0, 1.0, 0.0, 1.0, float("nan")]
    test = stats.paired_proportion_test(a, b)
    assert test.delta.n == 3 and test.delta.point == 0
    assert "b=1, c=1" in test.delta.method
    with pytest.raises(ValueError, match="0/1"):
        stats.paired_proportion_test([0.5, 1.0], [1.0, 0.0])


def test_clustered_pairs_divide_the_counts_by_the_design_effect():
    # 20 passages of 5 questions; the discordant pairs come whole passages at a time, so the
    # cluster-robust variance is far above the independent one.
    candidate = np.ones(100)
    baseline = np.ones(100)
    baseline[:15] = 0  # passages 0-2: the candidate alone is right
    candidate[50:55] = 0  # passage 10: the baseline alone is right
    groups = np.arange(100) // 5
    d = candidate - baseline
    deff = paired_design_effect(d, groups)
    sums = np.bincount(groups, weights=d)
    robust = 20 / 19 * np.sum((sums - 5 * d.mean()) ** 2) / 100**2
    independent = (20 / 100 - d.mean() ** 2) / 100
    assert deff == pytest.approx(robust / independent)
    assert deff > 3
    test = stats.paired_proportion_test(candidate, baseline, clusters=groups)
    divisor = effective_divisor(deff, 20, 0.95)
    lo, hi = tango_bounds(15 / divisor, 5 / divisor, 100 / divisor, 0.95)
    assert (test.delta.lo, test.delta.hi) == pytest.approx((lo, hi))
    assert "clustered by 20 groups" in test.delta.method
    assert test.delta.warning is None  # 20 discordant pairs in 20 clusters: enough
    few = stats.paired_proportion_test(candidate[:50], baseline[:50], clusters=groups[:50])
    assert few.delta.warning == (
        "only 15 discordant pairs in 10 clusters: too few to estimate how clustering widens "
        "the interval"
    )
    plain = stats.paired_proportion_test(candidate, baseline)
    assert test.delta.hi - test.delta.lo > 1.5 * (plain.delta.hi - plain.delta.lo)


# --- p-values agree with their intervals ---------------------------------------------------------


@pytest.mark.parametrize("method", ["expanded", "bca", "studentized", "t"])
def test_p_value_is_below_alpha_exactly_when_the_interval_excludes_zero(method):
    rng = np.random.default_rng(11)
    agree = 0
    for trial in range(60):
        n = int(rng.integers(15, 60))
        d = rng.normal(rng.normal(0, 0.4), 1.0, size=n) * rng.choice([1, 3])
        test = stats.paired_bootstrap_test(
            d, np.zeros(n), iterations=4000, seed=trial, method=method
        )
        excludes = not test.delta.lo <= 0 <= test.delta.hi
        agree += excludes == (test.p_value < 0.05)
    # Monte Carlo noise can split the two only where 0 sits at the interval's very end.
    assert agree >= 58


def test_expanded_levels_by_hand():
    # n = 30: sqrt(30/29) * t_{29, 0.975} = 1.017095 * 2.045230 = 2.080181; Φ(-2.080181) = 0.01875
    low, high = expanded_levels(0.95, math.sqrt(30 / 29), 29)
    assert low == pytest.approx(0.018754, abs=2e-6)
    assert high == pytest.approx(1 - low)
    assert design_expansion(np.array([30])) == pytest.approx((math.sqrt(30 / 29), 29))
    # equal strata of m units: the same expansion as one stratum of m, df summed
    expansion, df = design_expansion(np.array([10, 10, 10]))
    assert expansion == pytest.approx(math.sqrt(10 / 9)) and df == 27


def test_paired_statistic_warns_when_few_items_differ():
    rng = np.random.default_rng(5)
    base = rng.random(100)
    cand = base.copy()
    cand[:3] += 0.5

    def mean_of(x: np.ndarray):
        return lambda idx: x[idx].mean(axis=1)

    test = stats.paired_statistic_test(mean_of(cand), mean_of(base), 100, iterations=500)
    assert test.delta.warning == (
        "only 3 of 100 items differ between the models: no interval method held 95% with "
        "fewer than 20"
    )
    # the caller may count differing items itself (rows of sufficient statistics)
    told = stats.paired_statistic_test(
        mean_of(cand), mean_of(base), 100, iterations=500, differing=60
    )
    assert told.delta.warning is None
    assert (told.delta.lo, told.delta.hi) == (test.delta.lo, test.delta.hi)

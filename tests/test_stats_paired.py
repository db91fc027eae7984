"""Paired and clustered bootstrap tests, bootstrap p-values and Holm, on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_eval import stats
from rlhf_eval.aggregate import summed_statistic
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

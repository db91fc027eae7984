"""Tests for rlhf_common.stats: hand-computed values, scipy references and provable properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from rlhf_common import stats
from rlhf_common.intervals import resampling
from rlhf_common.stats import (
    Estimate,
    bootstrap_mean,
    bootstrap_statistic,
    paired_bootstrap,
    proportion,
    wilson,
)
from rlhf_eval.results import EstimateRecord


def standard_error(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / np.sqrt(len(x)))


def scipy_interval(x: np.ndarray, method: str, resamples: int = 20_000) -> tuple[float, float]:
    result = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=resamples, method=method, random_state=np.random.default_rng(1)
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


# --- Wilson --------------------------------------------------------------------------------------


def test_wilson_8_of_10_matches_hand_computation():
    # z = 1.959963984540054, z² = 3.841458820694124, p = 0.8, n = 10
    # 1 + z²/n = 1.3841458820694124
    # center = (0.8 + 3.841458820694124/20) / 1.3841458820694124
    #        = 0.9920729410347062 / 1.3841458820694124 = 0.7167401597...
    # half   = z · sqrt(0.8·0.2/10 + 3.841458820694124/400) / 1.3841458820694124
    #        = 1.959963984540054 · sqrt(0.0256036470517353) / 1.3841458820694124 = 0.2265776888...
    # lo = 0.4901624715..., hi = 0.9433178485...
    estimate = wilson(8, 10)
    assert estimate.point == 0.8
    assert estimate.lo == pytest.approx(0.4901624715366418, abs=1e-12)
    assert estimate.hi == pytest.approx(0.9433178485456247, abs=1e-12)
    assert (estimate.n, estimate.method, estimate.confidence) == (10, "wilson", 0.95)


@pytest.mark.parametrize(
    ("k", "n", "confidence"), [(8, 10, 0.95), (3, 17, 0.9), (1, 250, 0.99), (499, 1000, 0.95)]
)
def test_wilson_matches_scipy_binomtest(k, n, confidence):
    reference = scipy.stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    estimate = wilson(k, n, confidence)
    assert estimate.lo == pytest.approx(reference.low, abs=1e-12)
    assert estimate.hi == pytest.approx(reference.high, abs=1e-12)


def test_wilson_all_failures_and_all_successes_touch_the_bounds():
    # At p = 0 the half-width equals the center exactly (both are (z²/2n) / (1 + z²/n)).
    none = wilson(0, 10)
    assert (none.point, none.lo) == (0.0, 0.0)
    assert none.hi == pytest.approx(
        scipy.stats.binomtest(0, 10).proportion_ci(method="wilson").high, abs=1e-12
    )
    every = wilson(10, 10)
    assert (every.point, every.hi) == (1.0, 1.0)
    assert every.lo == pytest.approx(1 - none.hi, abs=1e-12)


def test_wilson_with_no_samples_has_no_estimate():
    assert wilson(0, 0) == Estimate(None, None, None, 0, "wilson", 0.95)


def test_wilson_rejects_more_successes_than_trials():
    with pytest.raises(ValueError, match="successes"):
        wilson(11, 10)


def test_estimate_to_dict_is_an_estimate_record():
    record = EstimateRecord(**wilson(8, 10, 0.9).to_dict())
    assert record.model_dump() == {
        "point": 0.8,
        "lo": wilson(8, 10, 0.9).lo,
        "hi": wilson(8, 10, 0.9).hi,
        "n": 10,
        "method": "wilson",
        "confidence": 0.9,
        "warning": None,
    }
    assert all(type(v) in (float, int, str, type(None)) for v in wilson(8, 10).to_dict().values())


# --- proportion ----------------------------------------------------------------------------------


def test_proportion_drops_failures_instead_of_scoring_them_zero():
    values = [1] * 6 + [0] * 5 + [None, float("nan")]
    assert proportion(values) == wilson(6, 11)


def test_proportion_of_nothing_and_of_only_failures():
    assert proportion([]).point is None
    assert proportion([None, float("nan")]) == Estimate(None, None, None, 0, "wilson", 0.95)


def test_proportion_rejects_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        proportion([0, 1, 2])


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1])
@pytest.mark.parametrize(
    "call",
    [
        lambda c: wilson(1, 2, c),
        lambda c: proportion([0, 1], c),
        lambda c: bootstrap_mean([0.0, 1.0], c),
        lambda c: bootstrap_statistic(lambda i: i.mean(axis=1), 3, c),
        lambda c: paired_bootstrap([1.0, 2.0], [0.0, 1.0], c),
    ],
)
def test_confidence_outside_open_unit_interval_is_rejected(call, confidence):
    with pytest.raises(ValueError, match="confidence"):
        call(confidence)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="method"):
        bootstrap_mean([1.0, 2.0], method="basic")
    with pytest.raises(ValueError, match="one id per item"):
        bootstrap_mean([1.0, 2.0, 3.0], clusters=["a", "b"])
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="iterations"):
        bootstrap_mean([1.0, 2.0], iterations=0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        bootstrap_statistic(lambda i: i.sum(), 5)


# --- bootstrap_mean ------------------------------------------------------------------------------


def test_method_strings_name_the_procedure():
    x = [0.1, 0.4, 0.2, 0.9]
    assert bootstrap_mean(x, iterations=500).method == "studentized bootstrap (500 resamples)"
    assert (
        bootstrap_mean(x, iterations=500, method="percentile").method
        == "percentile bootstrap (500 resamples)"
    )
    assert bootstrap_mean(x, method="bca").method == "BCa bootstrap (10000 resamples)"
    assert bootstrap_mean(x, method="t").method == "t interval (independent items)"
    clustered = paired_bootstrap(x, [0.0] * 4, iterations=200, clusters=["a", "a", "b", "c"])
    assert clustered.method == (
        "paired expanded percentile bootstrap (200 resamples, clustered by 3 groups)"
    )


def test_percentile_bootstrap_matches_scipy():
    x = np.random.default_rng(7).normal(1.0, 2.0, size=60)
    estimate = bootstrap_mean(x, iterations=20_000)
    lo, hi = scipy_interval(x, "percentile")
    # Independent draws: with 20,000 resamples each 2.5% quantile has a Monte Carlo SD of
    # ~0.02 standard errors, so 0.1 SE is ~3.5 SDs of the difference.
    assert estimate.point == pytest.approx(x.mean(), rel=1e-12)
    assert estimate.lo == pytest.approx(lo, abs=0.1 * standard_error(x))
    assert estimate.hi == pytest.approx(hi, abs=0.1 * standard_error(x))


def test_bca_matches_scipy_on_skewed_data():
    x = np.random.default_rng(0).lognormal(0.0, 1.5, size=40)
    se = standard_error(x)
    estimate = bootstrap_mean(x, iterations=100_000, method="bca")
    lo, hi = scipy_interval(x, "BCa", resamples=100_000)
    # The draws differ, so only Monte Carlo noise should separate the two. Over 20 seeds at
    # 100,000 resamples the difference had an SD of 0.009 SE (lower bound) and 0.021 SE (upper,
    # a ~99th percentile); the tolerances are ~4 SDs. Dropping the bias correction z0 (~0.06
    # here) moves the bounds by ~0.1 and ~0.2 SE, so these tolerances catch it.
    assert estimate.lo == pytest.approx(lo, abs=0.04 * se)
    assert estimate.hi == pytest.approx(hi, abs=0.08 * se)
    # The correction matters here, so a BCa that returned the percentile interval would fail.
    percentile = bootstrap_mean(x, iterations=100_000, method="percentile")
    assert estimate.lo - percentile.lo > 0.1 * se
    assert estimate.hi - percentile.hi > 0.2 * se


def test_bca_equals_percentile_for_symmetric_data():
    # Mirrored data: jackknife deviations are symmetric so the acceleration is exactly 0, and the
    # bootstrap distribution is symmetric about the mean so z0 is 0 up to Monte Carlo noise.
    half = np.random.default_rng(3).normal(size=40)
    x = np.concatenate([half, -half])
    bca = bootstrap_mean(x, iterations=20_000, method="bca")
    percentile = bootstrap_mean(x, iterations=20_000, method="percentile")
    assert bca.lo == pytest.approx(percentile.lo, abs=0.1 * standard_error(x))
    assert bca.hi == pytest.approx(percentile.hi, abs=0.1 * standard_error(x))


def test_bca_counts_ties_half_so_balanced_binary_data_stays_centred():
    # 200 zeros and 200 ones: acceleration is 0 and the bootstrap distribution is symmetric about
    # 0.5, but ~4% of replicates equal 0.5 exactly. Counting them as "below" (Efron's strict
    # definition) would give z0 ≈ -0.05 and shift the interval down by ~0.005 on average.
    x = np.repeat([0.0, 1.0], 200)
    offsets = [
        (e.lo + e.hi) / 2 - 0.5
        for e in (bootstrap_mean(x, method="bca", seed=seed) for seed in range(8))
    ]
    assert abs(np.mean(offsets)) < 0.001


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_identical_values_give_a_degenerate_interval(method):
    assert bootstrap_mean([0.3] * 7, method=method) == Estimate(
        0.3,
        0.3,
        0.3,
        7,
        f"{'percentile' if method == 'percentile' else 'BCa'} bootstrap (10000 resamples)",
    )
    clustered = bootstrap_mean([0.3] * 7, method=method, clusters=[1, 1, 2, 2, 3, 3, 3])
    assert (clustered.point, clustered.lo, clustered.hi) == (0.3, 0.3, 0.3)


def test_no_values_and_only_failures_give_no_estimate():
    empty = bootstrap_mean([])
    assert (empty.point, empty.lo, empty.hi, empty.n) == (None, None, None, 0)
    failed = bootstrap_mean([None, float("nan")], method="bca", clusters=["a", "b"])
    assert (failed.point, failed.lo, failed.hi, failed.n) == (None, None, None, 0)


def test_failures_are_dropped_not_scored_as_zero():
    x = np.random.default_rng(4).random(50)
    with_failures = np.insert(x, [3, 10, 10, 49], np.nan)
    assert bootstrap_mean(with_failures) == bootstrap_mean(x)
    assert bootstrap_mean(with_failures).n == 50
    as_list = [None if np.isnan(v) else v for v in with_failures]
    assert bootstrap_mean(as_list, method="bca") == bootstrap_mean(x, method="bca")


def test_seed_reproduces_exactly_and_a_different_seed_differs():
    x = np.random.default_rng(5).random(200)
    assert bootstrap_mean(x, seed=11) == bootstrap_mean(x, seed=11)
    assert bootstrap_mean(x, seed=11) != bootstrap_mean(x, seed=12)
    c = np.arange(200) // 4
    assert bootstrap_mean(x, seed=3, clusters=c) == bootstrap_mean(x, seed=3, clusters=c)
    assert bootstrap_mean(x, seed=3, clusters=c) != bootstrap_mean(x, seed=4, clusters=c)


def test_result_does_not_depend_on_chunk_size(monkeypatch):
    x = np.random.default_rng(6).random(300)
    c = np.random.default_rng(6).integers(0, 40, size=300)
    ratio = lambda idx: x[idx].sum(axis=1) / (idx + 1).sum(axis=1)  # noqa: E731
    before = [bootstrap_mean(x, method="bca"), bootstrap_statistic(ratio, 300, clusters=c)]
    monkeypatch.setattr(resampling, "CHUNK_ELEMENTS", 1000)
    assert [bootstrap_mean(x, method="bca"), bootstrap_statistic(ratio, 300, clusters=c)] == before


# --- clusters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_singleton_clusters_are_the_item_bootstrap(method):
    # One item per cluster: cluster sums are the items and sizes are 1, so each resample's
    # sum(sums)/sum(sizes) is the item mean of the same index draw.
    x = np.random.default_rng(8).random(120)
    clustered = bootstrap_mean(x, method=method, clusters=[f"id{i}" for i in range(120)])
    plain = bootstrap_mean(x, method=method)
    assert (clustered.lo, clustered.hi) == pytest.approx((plain.lo, plain.hi), rel=1e-12)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_clusters_of_equal_identical_items_are_the_bootstrap_of_cluster_means(method):
    # Clusters of m identical items v_g: a resample of G clusters has mean m·Σv / (m·G) = Σv / G,
    # the mean of the resampled cluster values, from the same draws; the leave-one-cluster-out
    # jackknife is likewise the leave-one-out jackknife of the v_g.
    means = np.random.default_rng(9).random(25)
    m = 4
    clustered = bootstrap_mean(np.repeat(means, m), method=method, clusters=np.arange(25 * m) // m)
    of_means = bootstrap_mean(means, method=method)
    assert clustered.point == pytest.approx(of_means.point, rel=1e-12)
    assert (clustered.lo, clustered.hi) == pytest.approx((of_means.lo, of_means.hi), rel=1e-12)
    assert clustered.n == 100


def test_clustering_widens_the_interval_for_correlated_items():
    rng = np.random.default_rng(10)
    groups = np.repeat(np.arange(30), 10)
    x = rng.normal(size=30)[groups] + 0.3 * rng.normal(size=300)  # intra-class correlation ~0.9
    clustered = bootstrap_mean(x, clusters=groups)
    plain = bootstrap_mean(x)
    # Design effect 1 + (m - 1)·ICC ≈ 9.3, so the width should grow by about 3x.
    assert clustered.hi - clustered.lo > 2 * (plain.hi - plain.lo)


def test_a_single_cluster_gives_no_interval():
    estimate = bootstrap_mean([0.1, 0.5, 0.9], clusters=["q1"] * 3)
    assert estimate.point == pytest.approx(0.5)
    assert (estimate.lo, estimate.hi) == (None, None)
    assert bootstrap_statistic(lambda i: i.mean(axis=1), 3, clusters=[7, 7, 7]).lo is None


# --- bootstrap_statistic -------------------------------------------------------------------------


def test_ratio_of_sums_point_is_the_full_data_ratio():
    rng = np.random.default_rng(11)
    matches, lengths = rng.integers(0, 20, size=80), rng.integers(20, 40, size=80)

    def ratio(idx: np.ndarray) -> np.ndarray:
        return matches[idx].sum(axis=1) / lengths[idx].sum(axis=1)

    estimate = bootstrap_statistic(ratio, 80)
    assert estimate.point == matches.sum() / lengths.sum()
    assert estimate.lo < estimate.point < estimate.hi
    assert estimate.n == 80


def test_statistic_of_the_mean_is_bootstrap_mean():
    x = np.random.default_rng(12).random(150)
    by_statistic = bootstrap_statistic(lambda idx: x[idx].mean(axis=1), 150, seed=5)
    assert by_statistic == bootstrap_mean(x, seed=5, method="expanded")


def test_clustered_statistic_with_unequal_clusters_is_clustered_mean():
    # Unequal cluster sizes give resamples of different lengths; the mean over all their items
    # is the estimator bootstrap_mean uses, so both must agree up to summation order.
    rng = np.random.default_rng(13)
    groups = rng.integers(0, 15, size=90)
    x = rng.random(90)
    calls = []

    def mean(idx: np.ndarray) -> np.ndarray:
        calls.append(idx.shape)
        return x[idx].mean(axis=1)

    by_statistic = bootstrap_statistic(mean, 90, clusters=groups, iterations=3000)
    by_mean = bootstrap_mean(x, clusters=groups, iterations=3000)
    assert by_statistic.point == pytest.approx(by_mean.point, rel=1e-12)
    assert (by_statistic.lo, by_statistic.hi) == pytest.approx((by_mean.lo, by_mean.hi), rel=1e-9)
    assert len({k for _, k in calls}) > 2
    assert sum(b for b, _ in calls[1:]) == 3000


def test_statistic_of_no_items_has_no_estimate():
    assert bootstrap_statistic(lambda idx: idx.sum(axis=1), 0).point is None


# --- paired_bootstrap ----------------------------------------------------------------------------


def test_paired_identical_models_give_zero():
    x = np.random.default_rng(14).random(100)
    estimate = paired_bootstrap(x, x.copy())
    assert (estimate.point, estimate.lo, estimate.hi) == (0.0, 0.0, 0.0)
    assert estimate.method == "paired studentized bootstrap (10000 resamples)"
    assert estimate.warning == (
        "only 0 of 100 items differ between the models: no interval method held 95% with "
        "fewer than 20"
    )


def test_paired_constant_shift_is_recovered_exactly():
    # Dyadic values, so candidate - baseline is exactly 0.25 in floating point.
    baseline = np.random.default_rng(15).integers(0, 8, size=64) / 8
    estimate = paired_bootstrap(baseline + 0.25, baseline, clusters=np.arange(64) // 2)
    assert (estimate.point, estimate.lo, estimate.hi) == (0.25, 0.25, 0.25)


def test_paired_drops_pairs_with_a_failure_on_either_side():
    rng = np.random.default_rng(16)
    candidate, baseline = rng.random(40), rng.random(40)
    candidate[[2, 5]] = np.nan
    baseline[[5, 30]] = np.nan
    keep = ~(np.isnan(candidate) | np.isnan(baseline))
    estimate = paired_bootstrap(candidate, baseline, seed=2)
    assert estimate.n == 37
    expected = bootstrap_mean(candidate[keep] - baseline[keep], seed=2)
    assert (estimate.point, estimate.lo, estimate.hi) == (expected.point, expected.lo, expected.hi)


def test_paired_interval_is_narrower_than_unpaired_for_correlated_models():
    rng = np.random.default_rng(17)
    difficulty = rng.normal(size=200)
    baseline = difficulty + 0.2 * rng.normal(size=200)
    candidate = difficulty + 0.1 + 0.2 * rng.normal(size=200)
    paired = paired_bootstrap(candidate, baseline)
    alone = bootstrap_mean(candidate)
    assert paired.hi - paired.lo < 0.5 * (alone.hi - alone.lo)
    assert paired.point == pytest.approx(np.mean(candidate - baseline))


# --- coverage ------------------------------------------------------------------------------------


def test_wilson_coverage_is_close_to_nominal():
    # Exact coverage over the binomial distribution, no simulation: Wilson stays near 95%.
    n, p = 50, 0.3
    covered = sum(
        scipy.stats.binom.pmf(k, n, p)
        for k in range(n + 1)
        if wilson(k, n).lo <= p <= wilson(k, n).hi
    )
    assert 0.93 < covered < 0.97


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_coverage_is_close_to_nominal(method):
    # 1000 simulated normal data sets with true mean 1: the coverage estimate has SD ~0.007, and
    # the percentile interval under-covers by ~1 point at n = 40 (it uses the plug-in variance).
    rng = np.random.default_rng(18)
    covered = 0
    for seed in range(1000):
        x = rng.normal(1.0, 1.0, size=40)
        estimate = bootstrap_mean(x, iterations=2000, seed=seed, method=method)
        covered += estimate.lo <= 1.0 <= estimate.hi
    assert 0.92 < covered / 1000 < 0.97


# --- Clopper-Pearson and the default for one proportion -----------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 20), (3, 30), (10, 10), (4, 100), (57, 100)])
def test_clopper_pearson_matches_scipy_binomtest(k, n):
    reference = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    estimate = stats.clopper_pearson(k, n)
    assert estimate.lo == pytest.approx(reference.low, abs=1e-12)
    assert estimate.hi == pytest.approx(reference.high, abs=1e-12)
    # CRAN contingencytables' published values: 0 of 10 -> [0, 0.3085]
    assert (round(stats.clopper_pearson(0, 10).hi, 4)) == 0.3085


def test_proportion_falls_back_to_clopper_pearson_below_five():
    four = proportion([1] * 4 + [0] * 96)
    assert (four.lo, four.hi) == (
        stats.clopper_pearson(4, 100).lo,
        stats.clopper_pearson(4, 100).hi,
    )
    assert four.method == "Clopper-Pearson (fewer than 5 successes)"
    five = proportion([1] * 5 + [0] * 95)
    assert five == wilson(5, 100)
    almost_all = proportion([1] * 97 + [0] * 3)
    assert almost_all.method == "Clopper-Pearson (fewer than 5 failures)"


def test_clustered_proportion_of_no_success_is_not_degenerate():
    # DROP EM, 0 of 100 on 20 passages: the cluster bootstrap gave [0, 0]; the design effect
    # cannot be estimated (1), so the interval is Clopper-Pearson on 100 items, df-adjusted.
    clusters = np.arange(100) // 5
    estimate = proportion([0.0] * 100, clusters=clusters)
    assert estimate.point == 0 and estimate.lo == 0
    assert 0.036 < estimate.hi < 0.05
    assert "design effect 1.00" in estimate.method
    assert bootstrap_mean([0.0] * 100, clusters=clusters).hi == 0.0


def test_clustered_proportion_widens_with_the_design_effect():
    # Whole passages right or wrong: deff = the cluster size, 5.
    values = np.repeat(np.random.default_rng(3).random(40) < 0.4, 5).astype(float)
    clusters = np.arange(200) // 5
    estimate = proportion(values, clusters=clusters)
    plain = proportion(values)
    assert "design effect" in estimate.method
    deff = float(estimate.method.split("design effect ")[1].split(",")[0])
    assert deff == pytest.approx(5 * 40 / 39, rel=0.01)
    assert (estimate.hi - estimate.lo) > 2 * (plain.hi - plain.lo)


# --- studentized and t intervals, warnings -------------------------------------------------------


def test_t_interval_by_hand():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    # mean 3.5, sd sqrt(7), se sqrt(7)/2, t_{3, 0.975} = 3.182446
    estimate = bootstrap_mean(x, method="t")
    half = 3.182446305284263 * math.sqrt(7) / 2
    assert (estimate.lo, estimate.hi) == pytest.approx((3.5 - half, 3.5 + half))


def test_studentized_interval_is_asymmetric_for_skewed_data():
    x = np.random.default_rng(1).exponential(size=40)
    estimate = bootstrap_mean(x, iterations=20_000)
    assert estimate.method == "studentized bootstrap (20000 resamples)"
    # A right-skewed mean: the interval reaches further above the mean than below.
    assert estimate.hi - estimate.point > 1.2 * (estimate.point - estimate.lo)


def test_heavy_tails_and_few_clusters_are_warned():
    tailed = np.array([1.0] * 29 + [40.0])
    assert "skewed values (sample skewness 5.2) at n = 30" in bootstrap_mean(tailed).warning
    clustered = bootstrap_mean(np.arange(40.0), clusters=np.arange(40) // 4)
    assert clustered.warning == (
        "only 10 clusters: the interval may cover less than its level with fewer than 20"
    )
    assert bootstrap_mean(np.arange(40.0), clusters=np.arange(40) // 2).warning is None


def test_a_few_distinct_values_fall_back_to_the_expanded_percentile():
    estimate = bootstrap_mean([3.0, 1.0, 4.0], iterations=2000)
    assert estimate.method == "expanded percentile bootstrap (2000 resamples)"
    assert estimate.lo is not None and estimate.hi is not None
    assert "too few distinct values (n = 3)" in estimate.warning

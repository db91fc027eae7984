"""Coverage of each metric kind's default interval, and the gate's false-pass rate, simulated
with fixed seeds (the cells of docs/statistics.md, fewer data sets).

Goal (the issue's): coverage 93.5-96.5% at n >= 50 and at least 93% at n = 30. 0/1 data are
discrete, so their intervals over-cover where outcomes are few: for them only the lower end is
asserted, and the gate's false-pass rate at a true drop equal to the margin, at most 2.6% (2.5%
for an exact 95% interval). Cells where no method reaches the goal are asserted to warn.

Monte Carlo cells use 1,000-2,000 data sets: the coverage estimate has an SD of 0.5-0.7 points,
and the seeds are fixed, so a cell either passes every run or fails every run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlhf_common import stats
from rlhf_eval.estimation import compare_metric
from rlhf_eval.intervals import simulation as sim
from rlhf_eval.records import MetricSpec
from rlhf_eval.run_settings import StatsSettings

ACCURACY = MetricSpec("acc", "proportion")
SETTINGS = StatsSettings(bootstrap_iterations=2000)


def lower_goal(n: int) -> float:
    return 0.935 if n >= 50 else 0.93


def assert_goal(coverage: float, n: int) -> None:
    assert coverage >= lower_goal(n)
    if n >= 50:
        assert coverage <= 0.965


def as_samples(scores: np.ndarray) -> list[dict]:
    return [
        {"doc_id": f"d{i}", "metrics": {"acc": float(v)}, "error": None}
        for i, v in enumerate(scores)
    ]


def compared(b: int, c: int, n: int) -> stats.PairedTest:
    """What `rlhf-eval compare` and the gate compute for an accuracy metric whose candidate
    alone is right on b items and the baseline alone on c, of n."""
    candidate, baseline = sim.counts_to_pairs(b, c, n)
    return compare_metric(ACCURACY, as_samples(candidate), as_samples(baseline), SETTINGS, 0)


# --- paired 0/1 metrics: exact, through the comparison the gate uses --------------------------


@pytest.mark.parametrize("n", [30, 50, 100])
@pytest.mark.parametrize("scenario", ["90% alike", "96% alike", "98% alike, flips one way"])
def test_gate_on_paired_accuracy_passes_few_regressions(scenario, n):
    """True drop = margin. The old paired percentile bootstrap passed 8-54% of these."""
    cell = sim.paired_binary_exact(sim.PAIRED_BINARY[scenario], compared, n)
    assert cell.false_pass <= 0.026
    assert cell.coverage >= lower_goal(n)


@pytest.mark.parametrize("n", [30, 50, 100])
def test_paired_accuracy_coverage_with_a_small_true_gain(n):
    cell = sim.paired_binary_exact(sim.PAIRED_BINARY["97% alike, delta +0.01"], compared, n)
    assert cell.coverage >= lower_goal(n)


def test_the_old_paired_percentile_fails_these_cells():
    """The test above has power: the percentile bootstrap, the old default, fails it."""
    old = sim.paired_binary_exact(sim.PAIRED_BINARY["96% alike"], sim.paired_percentile(1000), 50)
    assert old.coverage < 0.80 and old.false_pass > 0.15


# --- one proportion: exact --------------------------------------------------------------------


RARE = np.linspace(0.001, 0.05, 100)
COMMON = np.linspace(0.05, 0.5, 100)


@pytest.mark.parametrize("n", [20, 30, 50, 100, 500])
def test_one_proportion_holds_for_rare_events(n):
    # Wilson alone dips to 84% near p = 1/n; the Clopper-Pearson fallback removes the dip.
    assert sim.binomial_coverage("wilson", n, RARE).min() < 0.92
    rare = sim.binomial_coverage("default", n, RARE)
    common = sim.binomial_coverage("default", n, COMMON)
    assert rare.min() >= 0.93
    # Elsewhere it is Wilson: discreteness makes exactly 95% impossible, the average is close.
    assert common.min() >= 0.92
    assert 0.945 <= common.mean() <= 0.965


# --- means ------------------------------------------------------------------------------------


def test_studentized_mean_of_skewed_data_at_n_30():
    cell = sim.simulate(
        sim.MEANS["exponential (skewness 2)"], sim.mean_method("auto", 1000), 30, 1000, 1
    )
    assert cell.coverage >= 0.93
    # ... where the old percentile interval covered 91%
    old = sim.simulate(
        sim.MEANS["exponential (skewness 2)"], sim.mean_method("percentile", 1000), 30, 1000, 1
    )
    assert old.coverage < 0.925


def test_paired_continuous_at_n_30():
    cell = sim.simulate(sim.mc2_like(0.9), sim.paired_mean_method("auto", 1000), 30, 1000, 2)
    assert cell.coverage >= 0.93 and cell.false_pass <= 0.05


def test_holm_family_wise_error_at_n_30():
    """4 headline metrics with no true difference: Holm at 5% on the default's p-values errs
    about 5% of the time; on the old percentile bootstrap's, 8.8%."""
    assert sim.holm_family_error("auto", 30, 4, 2000, 1000, seed=7) <= 0.065
    assert sim.holm_family_error("percentile", 30, 4, 2000, 1000, seed=7) >= 0.075


# --- slow: the rest of the table --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 50, 100])
@pytest.mark.parametrize(
    "name",
    [
        "normal",
        "exponential (skewness 2)",
        "beta(0.5, 4) (skewness 1.9)",
        "win rate (win .35, tie .2)",
    ],
)
def test_mean_coverage(name, n):
    cell = sim.simulate(sim.MEANS[name], sim.mean_method("auto", 1000), n, 2000, n)
    if name.startswith("win rate") and n < 50:
        assert cell.coverage >= lower_goal(n)  # 3 values: over-covers at n = 30 (97%)
    else:
        assert_goal(cell.coverage, n)


@pytest.mark.slow
def test_heavy_tailed_means_are_warned():
    """Lognormal data: no method reaches the goal at n <= 100; many estimates say so."""
    cell = sim.simulate(sim.MEANS["lognormal(0, 1)"], sim.mean_method("auto", 1000), 50, 1000, 3)
    assert cell.coverage < 0.935
    assert cell.warned >= 0.4


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 50, 100])
@pytest.mark.parametrize("scenario", [sim.mc2_like(0.9), sim.skewed_drops()], ids=["mc2", "skewed"])
def test_paired_continuous_coverage_and_gate(scenario, n):
    cell = sim.simulate(scenario, sim.paired_mean_method("auto", 1000), n, 2000, n)
    assert_goal(cell.coverage, n)
    assert cell.false_pass <= 0.045


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 50, 100])
def test_sparse_paired_differences_are_warned(n):
    """10% of items differ: below ~20 differing items nothing holds 95%; the estimate says so
    instead of posing as a sure interval."""
    cell = sim.simulate(sim.sparse_difference(0.1), sim.paired_mean_method("auto", 1000), n, 500, n)
    assert cell.warned >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("clusters", [20, 30, 50])
def test_clustered_mean_coverage(clusters):
    cell = sim.simulate(
        sim.clustered_normal(0.3), sim.mean_method("auto", 1000), clusters, 2000, clusters
    )
    assert_goal(cell.coverage, max(clusters, 30))


@pytest.mark.slow
@pytest.mark.parametrize("clusters", [30, 50, 100])
@pytest.mark.parametrize("p", [0.02, 0.3])
def test_clustered_proportion_coverage(p, clusters):
    """DROP-like exact match on passages: the cluster bootstrap collapsed for rare successes."""
    cell = sim.simulate(
        sim.clustered_binary(p, 0.2), sim.clustered_proportion, clusters, 2000, clusters
    )
    assert cell.coverage >= lower_goal(clusters)


@pytest.mark.slow
@pytest.mark.parametrize("clusters", [30, 50])
@pytest.mark.parametrize("rates", [(0.04, 0.06), (0.01, 0.03)], ids=["90%", "96%"])
def test_clustered_paired_accuracy_gate(rates, clusters):
    scenario = sim.clustered_paired_binary(*rates, 0.2)
    cell = sim.simulate(
        scenario, sim.clustered_paired_method("tango", 1000), clusters, 2000, clusters
    )
    assert cell.coverage >= lower_goal(clusters)
    assert cell.false_pass <= 0.026


@pytest.mark.slow
def test_clustered_paired_accuracy_with_few_discordant_pairs_is_warned():
    scenario = sim.clustered_paired_binary(0.0, 0.02, 0.2)
    cell = sim.simulate(scenario, sim.clustered_paired_method("tango", 1000), 100, 500, 4)
    assert cell.warned >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 50])
def test_corpus_bleu_coverage(n):
    scenario, score = sim.bleu_corpus()
    cell = sim.simulate(scenario, sim.statistic_method("expanded", 1000, score), n, 1500, n)
    assert cell.coverage >= lower_goal(n)


@pytest.mark.slow
def test_bbh_macro_average_with_10_items_per_subtask():
    cell = sim.simulate(sim.bbh_strata(10), sim.statistic_method("expanded", 1000), 0, 1000, 10)
    assert_goal(cell.coverage, 270)


@pytest.mark.slow
def test_length_controlled_win_rate_at_n_30():
    cell = sim.simulate(sim.lc_win_rate(), sim.lc_method("expanded", 500), 30, 600, 30)
    assert cell.coverage >= 0.93
    assert not math.isnan(cell.width)

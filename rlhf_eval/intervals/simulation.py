"""The data sets behind the coverage table (benchmarks/coverage.py) and tests/test_coverage.py:
each scenario draws data sets of n items whose true value is known, and each method is the
harness's own function from rlhf_common.stats, called once per data set.

Paired scenarios put the truth at a drop of exactly the gate's margin (MARGIN), so one run
gives both the interval's coverage and the gate's false-pass rate: a gate at 95% that passes
a metric when the interval's lower end lies above -MARGIN must pass at most 2.5% of them.
Paired 0/1 scenarios are exact: the counts (b, c) are enumerated with their multinomial
probabilities instead of being drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from scipy.stats import binom, multinomial, norm

from rlhf_common import stats
from rlhf_common.intervals.binomial import clopper_pearson_bounds, proportion_bounds, wilson_bounds
from rlhf_eval.length_control import counterfactual_win_rate, fit_logistic, glm_features
from rlhf_eval.metrics.bleu import bleu_from_statistics

MARGIN = 0.02
"""The gate's max drop in the paired scenarios; their true difference is -MARGIN."""


@dataclass(frozen=True)
class Scenario:
    """Data sets of n items with a known true value. `draw(rng, n)` returns one data set."""

    name: str
    truth: float
    draw: Callable[[np.random.Generator, int], Any]
    paired: bool = False


@dataclass(frozen=True)
class Cell:
    """One (scenario, method, n): coverage, and for paired scenarios the gate's false-pass
    rate; `warned` is the share of data sets whose estimate carried a warning and
    `unwarned_coverage` the coverage among the others."""

    coverage: float
    false_pass: float | None
    width: float
    warned: float
    unwarned_coverage: float | None
    sets: int


Method = Callable[[Any, int], "stats.Estimate | stats.PairedTest"]


def simulate(scenario: Scenario, method: Method, n: int, sets: int, seed: int) -> Cell:
    """Coverage of `method` over `sets` data sets of `scenario` at size n (fixed seed)."""
    rng = np.random.default_rng(seed)
    covered, passed, widths, warned = [], [], [], []
    for i in range(sets):
        result = method(scenario.draw(rng, n), seed + i)
        estimate = result.delta if isinstance(result, stats.PairedTest) else result
        lo = -math.inf if estimate.lo is None else estimate.lo
        hi = math.inf if estimate.hi is None else estimate.hi
        covered.append(lo <= scenario.truth <= hi)
        passed.append(lo >= -MARGIN - 1e-12)
        widths.append(hi - lo)
        warned.append(estimate.warning is not None)
    covered_, warned_ = np.array(covered), np.array(warned)
    return Cell(
        coverage=float(covered_.mean()),
        false_pass=float(np.mean(passed)) if scenario.paired else None,
        width=float(np.median(widths)),
        warned=float(warned_.mean()),
        unwarned_coverage=float(covered_[~warned_].mean()) if (~warned_).any() else None,
        sets=sets,
    )


# --- single-model means ---------------------------------------------------------------------------


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=n)


def _exponential(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.exponential(size=n)


def _beta_skewed(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.beta(0.5, 4.0, size=n)


def _lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(0.0, 1.0, size=n)


def _win_rate(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice([1.0, 0.5, 0.0], p=[0.35, 0.2, 0.45], size=n)


MEANS = {
    "normal": Scenario("normal", 0.0, _normal),
    "exponential (skewness 2)": Scenario("exponential", 1.0, _exponential),
    "beta(0.5, 4) (skewness 1.9)": Scenario("beta", 0.5 / 4.5, _beta_skewed),
    "lognormal(0, 1)": Scenario("lognormal", math.exp(0.5), _lognormal),
    "win rate (win .35, tie .2)": Scenario("win rate", 0.45, _win_rate),
}


def clustered_normal(icc: float = 0.3, mean_size: float = 5.0) -> Scenario:
    """Clusters of 1 + Poisson(mean_size - 1) items (so n counts clusters), normal values with
    intra-cluster correlation `icc`. Returns (values, cluster ids)."""

    def draw(rng: np.random.Generator, clusters: int) -> tuple[np.ndarray, np.ndarray]:
        sizes = 1 + rng.poisson(mean_size - 1, size=clusters)
        groups = np.repeat(np.arange(clusters), sizes)
        values = math.sqrt(icc) * rng.normal(size=clusters)[groups]
        return values + math.sqrt(1 - icc) * rng.normal(size=len(groups)), groups

    return Scenario(f"clustered normal (ICC {icc})", 0.0, draw)


def clustered_binary(p: float, icc: float = 0.2, mean_size: float = 5.0) -> Scenario:
    """0/1 items (exact match on passages): each cluster's rate ~ Beta with mean p and
    intra-cluster correlation icc; n counts clusters."""
    scale = 1 / icc - 1

    def draw(rng: np.random.Generator, clusters: int) -> tuple[np.ndarray, np.ndarray]:
        sizes = 1 + rng.poisson(mean_size - 1, size=clusters)
        groups = np.repeat(np.arange(clusters), sizes)
        rates = rng.beta(p * scale, (1 - p) * scale, size=clusters)
        return (rng.random(len(groups)) < rates[groups]).astype(float), groups

    return Scenario(f"clustered 0/1 (p {p}, ICC {icc})", p, draw)


def mean_method(method: stats.MeanMethod, iterations: int) -> Method:
    def run(data: Any, seed: int) -> stats.Estimate:
        values, groups = data if isinstance(data, tuple) else (data, None)
        return stats.bootstrap_mean(values, 0.95, iterations, seed, method, groups)

    return run


def clustered_proportion(data: tuple[np.ndarray, np.ndarray], seed: int) -> stats.Estimate:
    return stats.proportion(data[0], 0.95, clusters=data[1])


# --- paired differences ---------------------------------------------------------------------------


def mc2_like(rho: float = 0.9) -> Scenario:
    """Scores in (0, 1) as Φ of correlated normals (correlation rho); the candidate's latent
    is shifted so that its mean is MARGIN lower: E Φ(Z - s) = Φ(-s / sqrt 2)."""
    shift = -math.sqrt(2) * float(norm.ppf(0.5 - MARGIN))

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        z = rng.normal(size=n)
        other = rho * z + math.sqrt(1 - rho * rho) * rng.normal(size=n)
        return norm.cdf(other - shift), norm.cdf(z)

    return Scenario(f"MC2-like continuous, rho {rho}", -MARGIN, draw, paired=True)


def sparse_difference(share: float = 0.1, spread: float = 0.3) -> Scenario:
    """Continuous scores identical on 1 - share of the items; where they differ the difference
    is Normal(-MARGIN / share, spread)."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        baseline = rng.random(n)
        differs = rng.random(n) < share
        delta = np.where(differs, rng.normal(-MARGIN / share, spread, size=n), 0.0)
        return baseline + delta, baseline

    return Scenario(f"sparse continuous ({share:.0%} of items differ)", -MARGIN, draw, True)


def skewed_drops(scale: float = 0.1) -> Scenario:
    """Continuous scores whose difference is -MARGIN + scale (1 - Exp(1)): mostly small gains,
    now and then a large drop (skewness -2), as when a checkpoint breaks a few items badly."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        baseline = rng.random(n)
        return baseline - MARGIN + scale * (1 - rng.exponential(size=n)), baseline

    return Scenario("skewed drops (skewness -2)", -MARGIN, draw, paired=True)


def paired_mean_method(method: stats.MeanMethod, iterations: int) -> Method:
    def run(data: Any, seed: int) -> stats.PairedTest:
        return stats.paired_bootstrap_test(data[0], data[1], 0.95, iterations, seed, None, method)

    return run


@dataclass(frozen=True)
class PairedBinary:
    """Paired 0/1 scores: P(candidate right, baseline wrong) = q10, the reverse q01."""

    name: str
    q10: float
    q01: float

    @property
    def truth(self) -> float:
        return self.q10 - self.q01


PAIRED_BINARY = {
    "90% alike": PairedBinary("90% alike", 0.04, 0.06),
    "96% alike": PairedBinary("96% alike", 0.01, 0.03),
    "98% alike, flips one way": PairedBinary("98% alike, flips one way", 0.0, 0.02),
    "97% alike, delta +0.01": PairedBinary("97% alike, delta +0.01", 0.02, 0.01),
}


def paired_binary_exact(
    scenario: PairedBinary, interval: Callable[[int, int, int], stats.PairedTest], n: int
) -> Cell:
    """Exact coverage and false-pass rate: every (b, c) with probability above 1e-9 is weighed
    by its multinomial probability (the mass left out is below 1e-6)."""
    probs = [scenario.q10, scenario.q01, 1 - scenario.q10 - scenario.q01]
    b_max = int(binom.isf(1e-10, n, probs[0])) if probs[0] > 0 else 0
    c_max = int(binom.isf(1e-10, n, probs[1])) if probs[1] > 0 else 0
    covered = passed = width = warned = mass = 0.0
    for b in range(min(b_max, n) + 1):
        for c in range(min(c_max, n - b) + 1):
            weight = float(multinomial.pmf([b, c, n - b - c], n, probs))
            if weight < 1e-9:
                continue
            estimate = interval(b, c, n).delta
            mass += weight
            covered += weight * (estimate.lo <= scenario.truth <= estimate.hi)
            passed += weight * (estimate.lo >= -MARGIN - 1e-12)
            width += weight * (estimate.hi - estimate.lo)
            warned += weight * (getattr(estimate, "warning", None) is not None)
    at_margin = abs(scenario.truth + MARGIN) < 1e-12
    false_pass = passed / mass if at_margin else None
    return Cell(covered / mass, false_pass, width / mass, warned / mass, None, 0)


def counts_to_pairs(b: int, c: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 score vectors with b pairs (1, 0), c pairs (0, 1) and the rest (1, 1) and (0, 0)
    (which concordant cell does not change any interval here)."""
    candidate = np.zeros(n)
    baseline = np.zeros(n)
    candidate[:b] = 1
    baseline[b : b + c] = 1
    rest = n - b - c
    candidate[b + c : b + c + rest // 2] = 1
    baseline[b + c : b + c + rest // 2] = 1
    return candidate, baseline


def tango(b: int, c: int, n: int) -> stats.PairedTest:
    return stats.paired_proportion_test(*counts_to_pairs(b, c, n))


def paired_percentile(iterations: int) -> Callable[[int, int, int], stats.PairedTest]:
    """The old default: the percentile bootstrap of the paired differences."""

    def run(b: int, c: int, n: int) -> stats.PairedTest:
        a, base = counts_to_pairs(b, c, n)
        return stats.paired_bootstrap_test(
            a, base, 0.95, iterations, b * 7919 + c, None, "percentile"
        )

    return run


def clustered_paired_binary(q10: float, q01: float, icc: float = 0.2) -> Scenario:
    """Paired 0/1 scores on passages (DROP, SQuAD): each cluster's discordance rate
    ~ Beta(mean q10 + q01, intra-cluster correlation icc), split q10 : q01; n counts
    clusters. Returns (candidate, baseline, cluster ids)."""
    rate = q10 + q01
    scale = 1 / icc - 1

    def draw(rng: np.random.Generator, clusters: int) -> tuple[np.ndarray, ...]:
        sizes = 1 + rng.poisson(4, size=clusters)
        groups = np.repeat(np.arange(clusters), sizes)
        flips = (
            rng.random(len(groups)) < rng.beta(rate * scale, (1 - rate) * scale, clusters)[groups]
        )
        up = rng.random(len(groups)) < q10 / rate
        baseline = (rng.random(len(groups)) < 0.5).astype(float)
        candidate = baseline.copy()
        candidate[flips & up] = 1.0
        baseline[flips & up] = 0.0
        candidate[flips & ~up] = 0.0
        baseline[flips & ~up] = 1.0
        return candidate, baseline, groups

    name = f"clustered paired 0/1 ({1 - rate:.0%} alike, ICC {icc})"
    return Scenario(name, q10 - q01, draw, paired=True)


def clustered_paired_method(kind: str, iterations: int) -> Method:
    def run(data: Any, seed: int) -> stats.PairedTest:
        candidate, baseline, groups = data
        if kind == "tango":
            return stats.paired_proportion_test(candidate, baseline, 0.95, groups)
        return stats.paired_bootstrap_test(
            candidate, baseline, 0.95, iterations, seed, groups, "percentile"
        )

    return run


# --- one proportion (exact) -----------------------------------------------------------------------


def binomial_coverage(rule: str, n: int, grid: np.ndarray) -> np.ndarray:
    """Exact coverage at each p of `grid` of the rule "wilson", "clopper-pearson" or "default"
    (Wilson, Clopper-Pearson below 5 successes or failures)."""
    bounds = {
        "wilson": lambda k: wilson_bounds(k, n, 0.95),
        "clopper-pearson": lambda k: clopper_pearson_bounds(k, n, 0.95),
        "default": lambda k: proportion_bounds(k, n, 0.95)[:2],
    }[rule]
    k = np.arange(n + 1)
    lo, hi = np.array([bounds(int(i)) for i in k]).T
    pmf = binom.pmf(k[None, :], n, grid[:, None])
    inside = (lo[None, :] <= grid[:, None]) & (grid[:, None] <= hi[None, :])
    return (pmf * inside).sum(axis=1)


# --- corpus statistics ----------------------------------------------------------------------------


def bleu_corpus() -> tuple[Scenario, Callable[[np.ndarray], np.ndarray]]:
    """Sentence statistics in sacrebleu's layout (lengths, matches and totals for n = 1..4):
    reference 10 + Poisson(15) tokens, hypothesis 0.8-1.2 times as long, each sentence's
    unigram precision ~ Beta(6, 4) and n-gram precision its n-th power. The truth is corpus
    BLEU of the expected statistics (a 2M-sentence corpus stands in for them)."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        ref = 10 + rng.poisson(15, size=n)
        hyp = np.maximum(1, np.round(ref * rng.uniform(0.8, 1.2, size=n))).astype(int)
        precision = rng.beta(6, 4, size=n)
        totals = np.stack([np.maximum(hyp - k, 0) for k in range(4)], axis=1)
        matches = rng.binomial(totals, precision[:, None] ** np.arange(1, 5))
        return np.column_stack([hyp, ref, matches, totals]).astype(float)

    big = draw(np.random.default_rng(12345), 2_000_000)
    truth = float(bleu_from_statistics(big.sum(axis=0)[None])[0])
    return Scenario("corpus BLEU", truth, draw), bleu_from_statistics


def bbh_strata(per_subtask: int, subtasks: int = 27) -> Scenario:
    """A BBH-like macro average: `subtasks` strata of `per_subtask` 0/1 items, the subtasks'
    accuracies spread evenly over [0.2, 0.8]; n is ignored (the design fixes it). Returns
    (0/1 values, subtask labels)."""
    rates = np.linspace(0.2, 0.8, subtasks)

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(subtasks), per_subtask)
        return (rng.random(len(labels)) < rates[labels]).astype(float), labels

    return Scenario(f"BBH macro, {per_subtask} per subtask", float(rates.mean()), draw)


def statistic_method(method: stats.StatisticMethod, iterations: int, score=None) -> Method:
    """A corpus statistic: with `score`, rows of summed statistics -> metric (BLEU); without,
    the macro average of 0/1 values over strata (BBH)."""

    def run(data: Any, seed: int) -> stats.Estimate:
        if score is not None:
            table = data

            def statistic(idx: np.ndarray) -> np.ndarray:
                return score(np.stack([col[idx].sum(axis=1) for col in table.T], axis=-1))

            return stats.bootstrap_statistic(
                statistic, len(table), 0.95, iterations, seed, method=method
            )
        values, labels = data
        count = np.bincount(labels).astype(float)

        def macro(idx: np.ndarray) -> np.ndarray:
            # Stratified resamples hold every stratum's items in the same slots of each row,
            # so one 0/1 slot-to-stratum matrix sums them all.
            slots = labels[idx[0]]
            assert np.all(labels[idx] == slots), "macro expects stratified resamples"
            onehot = (slots[:, None] == np.arange(len(count))[None, :]).astype(float)
            return (values[idx] @ onehot / count).mean(axis=1)

        return stats.bootstrap_statistic(
            macro, len(values), 0.95, iterations, seed, strata=labels, method=method
        )

    return run


def lc_win_rate(theta: float = 0.2, phi: float = 1.0) -> Scenario:
    """Verdicts from the length-controlled GLM itself: length differences ~ Normal(0, 100)
    tokens, P(model preferred) = sigmoid(theta + phi tanh(delta / sd)); the LC win rate is
    sigmoid(theta). Returns (preferences, lengths, baseline lengths)."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        delta = rng.normal(0, 100, size=n)
        y = (rng.random(n) < expit(theta + phi * np.tanh(delta / 100))).astype(float)
        return y, 300 + delta, np.full(n, 300.0)

    return Scenario("length-controlled win rate", float(expit(theta)), draw)


def lc_method(method: stats.StatisticMethod, iterations: int) -> Method:
    def run(data: Any, seed: int) -> stats.Estimate:
        y, lengths, baseline = data
        delta = lengths - baseline
        penalty = np.array([0.0, 0.01])

        def statistic(idx: np.ndarray) -> np.ndarray:
            return counterfactual_win_rate(fit_logistic(glm_features(delta[idx]), y[idx], penalty))

        return stats.bootstrap_statistic(statistic, len(y), 0.95, iterations, seed, method=method)

    return run


# --- Holm ---------------------------------------------------------------------------------------


def holm_family_error(
    method: stats.MeanMethod, n: int, metrics: int, families: int, iterations: int, seed: int
) -> float:
    """Share of families of `metrics` independent null comparisons (normal paired differences
    of n items) in which Holm's adjusted p-values reject any at 0.05."""
    rng = np.random.default_rng(seed)
    errors = 0
    for family in range(families):
        p_values = [
            stats.paired_bootstrap_test(
                rng.normal(size=n), np.zeros(n), 0.95, iterations, seed + family, None, method
            ).p_value
            for _ in range(metrics)
        ]
        errors += any(p is not None and p < 0.05 for p in stats.holm(p_values))
    return errors / families

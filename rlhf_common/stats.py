"""Point estimates with confidence intervals, and tests that agree with them: one proportion
(Wilson, Clopper-Pearson for small counts), paired proportions (Tango's score interval), means
and corpus statistics (bootstrap: expanded percentile, BCa, studentised; or a t interval),
p-values from the same method as each interval, and Holm's correction.

Every Estimate names its method; where our coverage simulations (docs/statistics.md) found that
no method holds its level, it carries a warning saying why instead of posing as a sure interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.stats import t as student_t

from rlhf_common.intervals import bootstrap as intervals
from rlhf_common.intervals import trust
from rlhf_common.intervals.binomial import (
    clopper_pearson_bounds,
    design_effect,
    effective_divisor,
    proportion_bounds,
    wilson_bounds,
)
from rlhf_common.intervals.paired_binary import mcnemar_p_value, paired_design_effect, tango_bounds
from rlhf_common.intervals.resampling import (
    Statistic,
    call_statistic,
    can_resample,
    cluster_codes,
    drop_missing,
    group_strata,
    mean_replicates,
    statistic_replicates,
    studentized_replicates,
    unit_counts,
)

MeanMethod = Literal["auto", "percentile", "expanded", "bca", "studentized", "t"]
"""How an interval for a mean is made. "auto", the default, is the studentised bootstrap for
independent items and the expanded percentile for clusters: the pair that held coverage best in
docs/statistics.md. The others: the plain percentile bootstrap (kept for comparison; it
under-covers at small n), Hesterberg's expanded percentile, BCa, the studentised bootstrap
(unclustered data only), or a t interval (cluster-robust with clusters)."""
StatisticMethod = Literal["percentile", "expanded"]

_LABELS = {
    "percentile": "percentile bootstrap",
    "expanded": "expanded percentile bootstrap",
    "bca": "BCa bootstrap",
    "studentized": "studentized bootstrap",
}


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval; None where it cannot be estimated.
    `warning` says why the interval cannot be trusted to hold its level (None when it can)."""

    point: float | None
    lo: float | None
    hi: float | None
    n: int
    method: str
    confidence: float = 0.95
    warning: str | None = None

    def to_dict(self) -> dict:
        """The fields as a dict, matching `rlhf_eval.results.EstimateRecord`."""
        return asdict(self)


@dataclass(frozen=True)
class PairedTest:
    """A paired difference with its interval, and the two-sided p-value of delta = 0 from the
    same method (it is below 1 - confidence exactly when the interval excludes 0, up to Monte
    Carlo noise); None where there is no interval."""

    delta: Estimate
    p_value: float | None


# --- one proportion -------------------------------------------------------------------------------


def wilson(successes: float, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion (see intervals.binomial.wilson_bounds).
    `successes` may be fractional (e.g. ties counted as half a win). n == 0 gives None."""
    _check_counts(successes, n, confidence)
    if n == 0:
        return Estimate(None, None, None, 0, "wilson", confidence)
    lo, hi = wilson_bounds(successes, n, confidence)
    return Estimate(successes / n, lo, hi, n, "wilson", confidence)


def clopper_pearson(successes: float, n: int, confidence: float = 0.95) -> Estimate:
    """Clopper-Pearson exact interval: coverage at least `confidence` for every p."""
    _check_counts(successes, n, confidence)
    if n == 0:
        return Estimate(None, None, None, 0, "Clopper-Pearson", confidence)
    lo, hi = clopper_pearson_bounds(successes, n, confidence)
    return Estimate(successes / n, lo, hi, n, "Clopper-Pearson", confidence)


def proportion(
    values: Sequence[float | None],
    confidence: float = 0.95,
    clusters: Sequence[Hashable] | None = None,
) -> Estimate:
    """Mean of 0/1 outcomes: Wilson, or Clopper-Pearson with fewer than 5 successes or failures
    (where Wilson's coverage dips to 84%). NaN/None are failed samples and are dropped.

    With `clusters` (items sharing a passage) the interval is the same rule applied to the
    effective sample n / deff, deff the design effect (intervals.binomial.design_effect): a
    cluster bootstrap of 0/1 data collapses to [0, 0] when no item succeeds, this does not."""
    _check_confidence(confidence)
    x, groups = drop_missing(values, clusters)
    if np.any((x < 0) | (x > 1)):
        raise ValueError("proportion needs values in [0, 1]; use bootstrap_mean for other scores")
    n, successes = len(x), float(x.sum())
    if n == 0:
        return Estimate(None, None, None, 0, "wilson", confidence)
    if groups is None:
        lo, hi, name = proportion_bounds(successes, n, confidence)
        return Estimate(successes / n, lo, hi, n, _proportion_label(name, successes, n), confidence)
    clusters_n = int(groups.max()) + 1
    deff = design_effect(x, groups)
    divisor = effective_divisor(deff, clusters_n, confidence)
    lo, hi, name = proportion_bounds(successes / divisor, n / divisor, confidence)
    method = (
        f"{_proportion_label(name, successes / divisor, n / divisor)}, clustered by "
        f"{clusters_n} groups (design effect {deff:.2f}, effective n {n / divisor:.1f})"
    )
    warning = trust.clustered_proportion_warning(clusters_n, successes, n)
    return Estimate(successes / n, lo, hi, n, method, confidence, warning)


def _proportion_label(name: str, successes: float, n: float) -> str:
    if name == "Wilson":
        return "wilson"
    side = "successes" if successes <= n - successes else "failures"
    return f"Clopper-Pearson (fewer than 5 {side})"


# --- means ----------------------------------------------------------------------------------------


def bootstrap_mean(
    values: Sequence[float | None],
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    method: MeanMethod = "auto",
    clusters: Sequence[Hashable] | None = None,
) -> Estimate:
    """Mean with a bootstrap (or t) interval; see MeanMethod and docs/statistics.md.

    NaN/None values are failed samples: they are dropped, never scored as zero. With `clusters`
    (one id per value) whole clusters are resampled and the estimator of each resample is the
    mean over all items it contains, sum(cluster sums) / sum(cluster sizes); the point estimate
    is the plain item mean. BCa takes its acceleration from a leave-one-cluster-out jackknife,
    the expanded percentile its expansion from the number of clusters. Identical values give
    the degenerate interval [v, v]; fewer than two clusters give no interval.
    """
    return _mean_test(values, clusters, confidence, iterations, seed, method, "").delta


def _mean_test(
    values: Sequence[float | None],
    clusters: Sequence[Hashable] | None,
    confidence: float,
    iterations: int,
    seed: int,
    method: MeanMethod,
    prefix: str,
) -> PairedTest:
    """The interval of a mean and the p-value of mean = 0 by the same method."""
    _check_confidence(confidence)
    _check_iterations(iterations)
    if method not in (*_LABELS, "t", "auto"):
        raise ValueError(
            "method must be 'auto', 'percentile', 'expanded', 'bca', 'studentized' or 't', "
            f"got {method!r}"
        )
    x, groups = drop_missing(values, clusters)
    automatic = method == "auto"
    if automatic:
        method = "studentized" if groups is None else "expanded"
    if method == "studentized" and groups is not None:
        raise ValueError("the studentized bootstrap takes unclustered values; use 'expanded'")
    description = prefix + _describe(method, iterations, groups)
    if len(x) == 0:
        return PairedTest(Estimate(None, None, None, 0, description, confidence), None)
    warning = trust.mean_warning(x, groups, paired=bool(prefix))
    if np.all(x == x[0]):
        # Every resample gives the same mean: no need to draw them.
        v = float(x[0])
        p = 1.0 if v == 0 else 2 / (iterations + 1)
        return PairedTest(Estimate(v, v, v, len(x), description, confidence, warning), p)
    point = float(x.mean())
    if groups is not None and groups.max() == 0:
        return PairedTest(Estimate(point, None, None, len(x), description, confidence), None)
    units = len(x) if groups is None else int(groups.max()) + 1
    if method == "t":
        lo, hi, p = _t_interval(x, groups, confidence)
    elif method == "studentized":
        means, errors = studentized_replicates(x, iterations, seed)
        se = float(x.std(ddof=1) / math.sqrt(len(x)))
        t_star = intervals.t_statistics(means, errors, point)
        lo, hi = intervals.studentized_bounds(point, se, t_star, confidence)
        p = intervals.studentized_p_value(point, se, t_star)
        if automatic and not (math.isfinite(lo) and math.isfinite(hi)):
            # Resamples of one repeated value (se* = 0) beyond the tail: a handful of distinct
            # values. The expanded percentile reads the same draws' means instead.
            expansion, df = intervals.design_expansion(np.array([units]))
            lo, hi = intervals.expanded_bounds(means, confidence, expansion, df)
            p = intervals.expanded_p_value(means, expansion, df)
            description = prefix + _describe("expanded", iterations, None)
            warning = warning or (
                f"too few distinct values (n = {len(x)}) for the studentized bootstrap; the "
                "expanded percentile shown may cover less than its level"
            )
    else:
        replicates = mean_replicates(x, groups, iterations, seed)
        if method == "percentile":
            lo, hi = intervals.percentile_bounds(replicates, confidence)
            p = intervals.percentile_p_value(replicates)
        elif method == "expanded":
            expansion, df = intervals.design_expansion(np.array([units]))
            lo, hi = intervals.expanded_bounds(replicates, confidence, expansion, df)
            p = intervals.expanded_p_value(replicates, expansion, df)
        else:
            jackknife = _jackknife_means(x, groups)
            lo, hi = intervals.bca_bounds(replicates, point, jackknife, confidence)
            p = intervals.bca_p_value(replicates, point, jackknife)
    lo_, hi_ = (None if not math.isfinite(lo) else lo), (None if not math.isfinite(hi) else hi)
    if lo_ is None or hi_ is None:
        warning = warning or "the studentized bootstrap gave an unbounded interval"
    estimate = Estimate(point, lo_, hi_, len(x), description, confidence, warning)
    return PairedTest(estimate, p)


def _t_interval(
    x: np.ndarray, groups: np.ndarray | None, confidence: float
) -> tuple[float, float, float]:
    """mean ± t_{df} se with se = sd/sqrt(n), df = n - 1; with clusters the cluster-robust
    se sqrt(G/(G-1) Σ_g (S_g - n_g x̄)²) / n, df = G - 1. Returns (lo, hi, p of mean = 0)."""
    point = float(x.mean())
    if groups is None:
        se, df = float(x.std(ddof=1) / math.sqrt(len(x))), len(x) - 1
    else:
        residual = np.bincount(groups, weights=x) - np.bincount(groups) * point
        g = len(residual)
        se, df = math.sqrt(g / (g - 1) * float(np.sum(residual**2))) / len(x), g - 1
    q = float(student_t.ppf((1 + confidence) / 2, df))
    p = 1.0 if se == 0 else float(min(1.0, 2 * student_t.sf(abs(point) / se, df)))
    return point - q * se, point + q * se, p


def _jackknife_means(x: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    if groups is None:
        return (x.sum() - x) / (len(x) - 1)
    sums = np.bincount(groups, weights=x)
    sizes = np.bincount(groups).astype(float)
    return (sums.sum() - sums) / (sizes.sum() - sizes)


# --- corpus statistics ----------------------------------------------------------------------------


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
    strata: Sequence[Hashable] | None = None,
    method: StatisticMethod = "expanded",
) -> Estimate:
    """Bootstrap interval for a corpus-level statistic such as BLEU or a ratio of sums.

    `statistic(indices)` takes an int array of shape (B, k), one resample of item indices per row,
    and returns shape (B,); the point estimate is `statistic(np.arange(n)[None])[0]`. With
    `clusters` whole clusters are resampled, so k varies between resamples when clusters differ
    in size: the statistic is then called once per distinct k within each chunk. Fewer than two
    clusters give no interval.

    With `strata` (one label per item, e.g. a benchmark's subtask) the resampling is stratified
    (Davison & Hinkley 1997, §3.7): each stratum's items (or clusters, which must then lie within
    one stratum) are drawn with replacement from that stratum alone, so every replicate keeps
    each stratum's size. That is the design of a benchmark with fixed subtask sizes, and what a
    macro average over subtasks needs (no replicate loses a subtask). No stratum with two items
    (clusters) to draw from gives no interval. The expanded percentile takes its expansion from
    the units per stratum (intervals.bootstrap.design_expansion).
    """
    return _statistic_test(
        statistic, n, confidence, iterations, seed, clusters, strata, method, False, None
    ).delta


def _statistic_test(
    statistic: Statistic,
    n: int,
    confidence: float,
    iterations: int,
    seed: int,
    clusters: Sequence[Hashable] | None,
    strata: Sequence[Hashable] | None,
    method: StatisticMethod,
    paired: bool,
    differing: int | None,
) -> PairedTest:
    _check_confidence(confidence)
    _check_iterations(iterations)
    if method not in ("percentile", "expanded"):
        raise ValueError(f"a statistic's method must be 'percentile' or 'expanded', got {method!r}")
    groups = None if clusters is None else cluster_codes(clusters, n)
    layers = None if strata is None else group_strata(strata, groups, n)
    prefix = "paired " if paired else ""
    description = prefix + _describe(method, iterations, groups, layers)
    if n == 0:
        return PairedTest(Estimate(None, None, None, 0, description, confidence), None)
    point = float(call_statistic(statistic, np.arange(n)[None])[0])
    if not can_resample(groups, layers):
        return PairedTest(Estimate(point, None, None, n, description, confidence), None)
    units, per_stratum = unit_counts(n, groups, layers)
    if paired and differing is None:
        # Each item alone: where the two models' statistics agree, its difference is 0.
        differing = int(np.count_nonzero(call_statistic(statistic, np.arange(n)[:, None])))
    warning = trust.statistic_warning(n, units, per_stratum, differing, groups is not None)
    replicates = statistic_replicates(statistic, n, groups, iterations, seed, layers)
    if np.all(replicates == point):
        lo = hi = point
        p = 1.0 if point == 0 else 2 / (iterations + 1)
    elif method == "percentile":
        lo, hi = intervals.percentile_bounds(replicates, confidence)
        p = intervals.percentile_p_value(replicates)
    else:
        expansion, df = intervals.design_expansion(per_stratum)
        lo, hi = intervals.expanded_bounds(replicates, confidence, expansion, df)
        p = intervals.expanded_p_value(replicates, expansion, df)
    return PairedTest(Estimate(point, lo, hi, n, description, confidence, warning), p)


# --- paired comparisons ---------------------------------------------------------------------------


def paired_bootstrap(
    candidate: Sequence[float | None],
    baseline: Sequence[float | None],
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
    method: MeanMethod = "auto",
) -> Estimate:
    """Mean paired difference candidate - baseline with its interval (see paired_bootstrap_test)."""
    return paired_bootstrap_test(
        candidate, baseline, confidence, iterations, seed, clusters, method
    ).delta


def paired_bootstrap_test(
    candidate: Sequence[float | None],
    baseline: Sequence[float | None],
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
    method: MeanMethod = "auto",
) -> PairedTest:
    """Mean paired difference candidate - baseline, its interval and the p-value of no
    difference by the same method (by default the studentised bootstrap, the expanded
    percentile with clusters).

    The arrays are aligned item by item by the caller; a pair with NaN/None on either side is
    dropped, so n counts the items both models answered. Resampling pairs (or whole clusters of
    pairs) keeps the correlation between the two models' scores on the same item, which is what
    makes the paired interval narrower than comparing two independent intervals. For 0/1
    scores use paired_proportion_test: a bootstrap sees only the discordant pairs.
    """
    a, b = _aligned(candidate, baseline)
    return _mean_test(a - b, clusters, confidence, iterations, seed, method, "paired ")


def paired_proportion_test(
    candidate: Sequence[float | None],
    baseline: Sequence[float | None],
    confidence: float = 0.95,
    clusters: Sequence[Hashable] | None = None,
) -> PairedTest:
    """Difference of two models' accuracies on the same 0/1-scored items: Tango's score
    interval and its score test (McNemar's), intervals.paired_binary.

    Pairs with NaN/None on either side are dropped. With `clusters` (pairs sharing a passage)
    the discordant counts and n are divided by the design effect of the mean difference first.
    """
    _check_confidence(confidence)
    a, b = _aligned(candidate, baseline)
    keep = ~(np.isnan(a) | np.isnan(b))
    if not np.all(np.isin(a[keep], (0.0, 1.0)) & np.isin(b[keep], (0.0, 1.0))):
        raise ValueError("paired_proportion_test needs 0/1 scores; use paired_bootstrap_test")
    d, groups = drop_missing(np.where(keep, a - b, np.nan), clusters)
    n = len(d)
    wins, losses = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    method = f"Tango score interval for paired proportions (n={n}, discordant b={wins}, c={losses}"
    if n == 0:
        return PairedTest(Estimate(None, None, None, 0, method + ")", confidence), None)
    deff, warning = 1.0, None
    if groups is not None:
        clusters_n = int(groups.max()) + 1
        deff = paired_design_effect(d, groups)
        method += f", clustered by {clusters_n} groups, design effect {deff:.2f}"
        warning = trust.clustered_pairs_warning(clusters_n, wins + losses)
        deff = effective_divisor(deff, clusters_n, confidence)
    lo, hi = tango_bounds(wins / deff, losses / deff, n / deff, confidence)
    p = mcnemar_p_value(wins / deff, losses / deff)
    return PairedTest(
        Estimate((wins - losses) / n, lo, hi, n, method + ")", confidence, warning), p
    )


def paired_statistic_test(
    candidate: Callable[[np.ndarray], np.ndarray],
    baseline: Callable[[np.ndarray], np.ndarray],
    n: int,
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
    strata: Sequence[Hashable] | None = None,
    method: StatisticMethod = "expanded",
    differing: int | None = None,
) -> PairedTest:
    """Paired bootstrap of a corpus-level statistic: candidate(idx) - baseline(idx).

    Both statistics see the very same resampled item indices in every replicate (items aligned
    by the caller), which is what pairs them (Koehn 2004, "Statistical significance tests for
    machine translation evaluation"); each takes indices of shape (B, k) and returns (B,), as in
    bootstrap_statistic. The point is the difference on the full data. `clusters` and `strata`
    resample as in bootstrap_statistic. The warning counts the items on which the models
    differ: `differing` where the caller knows it (rows of sufficient statistics that differ),
    else the items whose statistic, scored alone, differs.
    """

    def difference(indices: np.ndarray) -> np.ndarray:
        return call_statistic(candidate, indices) - call_statistic(baseline, indices)

    return _statistic_test(
        difference, n, confidence, iterations, seed, clusters, strata, method, True, differing
    )


def bootstrap_p_value(replicates: np.ndarray, null: float = 0.0) -> float:
    """Two-sided percentile-bootstrap p-value for "the statistic equals `null`"
    (intervals.bootstrap.percentile_p_value)."""
    return intervals.percentile_p_value(replicates, null)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    Sorting the m p-values as p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where it is below alpha controls
    the family-wise error rate at alpha. None (no test) stays None and does not count in m.
    """
    tested = [(p, i) for i, p in enumerate(p_values) if p is not None]
    for p, _ in tested:
        if not 0 <= p <= 1:
            raise ValueError(f"p-values must lie in [0, 1], got {p}")
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(tested)
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


# --- helpers --------------------------------------------------------------------------------------


def _aligned(
    candidate: Sequence[float | None], baseline: Sequence[float | None]
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"a paired test needs two 1-D arrays of equal length, got {a.shape} and {b.shape}"
        )
    return a, b


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _check_iterations(iterations: int) -> None:
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")


def _check_counts(successes: float, n: int, confidence: float) -> None:
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson needs 0 <= successes <= n, got successes={successes}, n={n}")


def _describe(
    method: str, iterations: int, groups: np.ndarray | None, layers: np.ndarray | None = None
) -> str:
    clustered = "" if groups is None else f", clustered by {len(np.unique(groups))} groups"
    stratified = "" if layers is None else f", stratified by {len(np.unique(layers))} strata"
    if method == "t":
        kind = "t interval" if groups is None else "cluster-robust t interval"
        return f"{kind} ({clustered[2:] or 'independent items'})"
    return f"{_LABELS[method]} ({iterations} resamples{clustered}{stratified})"

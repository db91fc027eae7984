"""When an interval cannot be trusted: the rules, each read off the coverage simulations of
benchmarks/coverage.py (docs/statistics.md), that put a warning beside a number instead of a
confident-looking interval. Each returns the warning's text, or None."""

from __future__ import annotations

import numpy as np

MIN_DIFFERING = 20
"""Paired continuous scores (and paired corpus statistics) where the two models agree exactly on
most items: with fewer than this many items that differ (and under half of them), no method we
measured held 95%: 10% of items differing covers 74-94% up to n = 100 (at best, studentised)."""
MIN_CLUSTERS = 20
"""Clustered items: below this many clusters the cluster-robust variance is too noisy."""
SKEWED = 2.0
"""Single-model means at n <= HEAVY_TAIL_N: a sample skewness above this marks the heavy-tailed
(lognormal-like) metrics for which no method reached 93.5% (studentised: 92-93.7%)."""
HEAVY_TAIL_N = 100


def mean_warning(x: np.ndarray, groups: np.ndarray | None, paired: bool) -> str | None:
    """The warning for the interval of a mean (of paired differences when `paired`)."""
    if paired:
        warning = sparse_warning(int(np.count_nonzero(x)), len(x))
        if warning:
            return warning
    if groups is not None:
        return cluster_warning(int(groups.max()) + 1)
    if not paired and len(x) <= HEAVY_TAIL_N:
        skew = skewness(x)
        if skew > SKEWED:
            return (
                f"skewed values (sample skewness {skew:.1f}) at n = {len(x)}: means of "
                f"heavy-tailed metrics covered 92-93.7% at n <= {HEAVY_TAIL_N}"
            )
    return None


def statistic_warning(
    n: int, units: int, per_stratum: np.ndarray, differing: int | None, clustered: bool
) -> str | None:
    """The warning for a corpus statistic's interval (or a paired difference of one)."""
    if differing is not None:
        warning = sparse_warning(differing, n)
        if warning:
            return warning
    if clustered and units < MIN_CLUSTERS:
        return cluster_warning(units)
    return None


def clustered_proportion_warning(clusters: int, successes: float, n: int) -> str | None:
    """0/1 items in clusters: the design effect of a handful of successes (or failures)
    cannot be estimated (p = 0.02 on 100 passages covered 92.7%)."""
    rarer = min(successes, n - successes)
    if rarer < MIN_DIFFERING:
        side = "successes" if successes <= n - successes else "failures"
        return (
            f"only {rarer:g} {side} in {clusters} clusters: too few to estimate how "
            f"clustering widens the interval"
        )
    return cluster_warning(clusters)


def clustered_pairs_warning(clusters: int, discordant: int) -> str | None:
    """Paired 0/1 scores in clusters: the design effect of the discordant pairs cannot be
    estimated from a handful of them (Tango with it covered 93% at 100 clusters, 98% alike)."""
    if discordant < MIN_DIFFERING:
        return (
            f"only {discordant} discordant pairs in {clusters} clusters: too few to estimate "
            f"how clustering widens the interval"
        )
    return cluster_warning(clusters)


def sparse_warning(differing: int, n: int) -> str | None:
    """Few items on which the two models' scores differ (see MIN_DIFFERING)."""
    if differing >= MIN_DIFFERING or 2 * differing >= n:
        return None
    return (
        f"only {differing} of {n} items differ between the models: no interval method held "
        f"95% with fewer than {MIN_DIFFERING}"
    )


def cluster_warning(clusters: int) -> str | None:
    if clusters >= MIN_CLUSTERS:
        return None
    return (
        f"only {clusters} clusters: the interval may cover less than its level with fewer "
        f"than {MIN_CLUSTERS}"
    )


def skewness(x: np.ndarray) -> float:
    """Sample skewness g1 = m3 / m2^1.5 (0 for constant values)."""
    centred = x - x.mean()
    m2 = float(np.mean(centred**2))
    return 0.0 if m2 == 0 else float(np.mean(centred**3)) / m2**1.5

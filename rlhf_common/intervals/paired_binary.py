"""Two models' 0/1 scores on the same items: Tango's score interval for the difference of
paired proportions, its score (McNemar) test, and a design effect for items in clusters.

With b items only the candidate got right and c only the baseline got right, out of n, the
difference is δ̂ = (b - c) / n. A bootstrap of the paired differences sees only the b + c
discordant items: with few of them it collapses (to [0, 0] when there are none) and passes
regressions at the gate. The score interval keeps the variance of the discordant cells under
each hypothesised δ, so it stays honest when discordant pairs are rare.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

_EDGE = 1e-12  # the score statistic is evaluated strictly inside (-1, 1)


def tango_statistic(delta: float, b: float, c: float, n: float) -> float:
    """Tango's (1998, Stat Med 17:891, eq. 5) score statistic for H0: δ = delta,

    Z(δ) = (b - c - nδ) / sqrt(n (2 q̂21 + δ(1 - δ))),

    where q̂21, the restricted maximum-likelihood estimate of the probability of the c cell under
    H0, is (sqrt(B² - 4AC) - B) / 2A with A = 2n, B = -b - c + (2n - b + c)δ, C = -c δ(1 - δ).
    Counts may be non-integer (effective counts of clustered items)."""
    numerator = b - c - n * delta
    if numerator == 0:
        return 0.0
    a_coef = 2 * n
    b_coef = -b - c + (2 * n - b + c) * delta
    c_coef = -c * delta * (1 - delta)
    q21 = (math.sqrt(max(b_coef * b_coef - 4 * a_coef * c_coef, 0.0)) - b_coef) / (2 * a_coef)
    variance = n * (2 * q21 + delta * (1 - delta))
    if variance <= 0:
        return math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def tango_bounds(b: float, c: float, n: float, confidence: float) -> tuple[float, float]:
    """Tango's score interval {δ : |Z(δ)| <= z_{(1+confidence)/2}}, each end found by Brent's
    method between the estimate and ±1 (Z decreases in δ). Unlike a bootstrap it is never
    degenerate: with no discordant pair at all it is still about ±z²/(n + z²) wide."""
    z = float(norm.ppf((1 + confidence) / 2))
    estimate = (b - c) / n
    if estimate <= -1 + _EDGE:
        lo = -1.0
    else:
        lo = brentq(lambda d: tango_statistic(d, b, c, n) - z, -1 + _EDGE, estimate, xtol=1e-13)
    if estimate >= 1 - _EDGE:
        hi = 1.0
    else:
        hi = brentq(lambda d: tango_statistic(d, b, c, n) + z, estimate, 1 - _EDGE, xtol=1e-13)
    return float(lo), float(hi)


def mcnemar_p_value(b: float, c: float) -> float:
    """Two-sided p-value of Tango's score test at δ = 0, which is McNemar's (1947) test without
    continuity correction: Z(0) = (b - c) / sqrt(b + c). It rejects exactly when the score
    interval excludes 0. No discordant pair gives 1."""
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2 * norm.sf(abs(b - c) / math.sqrt(b + c))))


def paired_design_effect(differences: np.ndarray, groups: np.ndarray) -> float:
    """Kish's design effect of the mean paired difference (values -1, 0, 1) under clustering:
    the cluster-robust variance G/(G-1) Σ_g (D_g - n_g d̄)² / n² over the independent-pairs
    variance ((b + c)/n - d̄²) / n, floored at 1; 1 where the latter is 0 (no discordant pair,
    or all pairs discordant one way) and the ratio cannot be estimated.

    Dividing b, c and n by it before Tango's interval inflates the score variance by the same
    factor at every δ, the design-effect adjustment of Obuchowski (1998, Stat Med 17:1495) for
    McNemar's test with clustered pairs."""
    n = len(differences)
    mean = float(differences.mean())
    independent = (float(np.count_nonzero(differences)) / n - mean * mean) / n
    sizes = np.bincount(groups).astype(float)
    clusters = len(sizes)
    if independent <= 0 or clusters < 2:
        return 1.0
    residual = np.bincount(groups, weights=differences) - sizes * mean
    robust = clusters / (clusters - 1) * float(np.sum(residual * residual)) / (n * n)
    return max(1.0, robust / independent)

"""Intervals for one binomial proportion: Wilson, Clopper-Pearson, the harness's default (Wilson,
Clopper-Pearson for small counts) and the design effect that adapts them to clustered items."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta, norm
from scipy.stats import t as student_t

SMALL_COUNT = 5
"""Below this many successes (or failures) the default interval is Clopper-Pearson: Wilson's
exact coverage dips to 84% for p near 1/n (one or two successes give a lower bound above p);
with the fallback the minimum over p stays at Wilson's usual 92-93% (docs/statistics.md)."""


def wilson_bounds(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927, JASA 22:209).

    With p = successes / n and z the two-sided normal quantile:
    center = (p + z²/2n) / (1 + z²/n), half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    """
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At p = 0 (p = 1) the bound is exactly 0 (1) in exact arithmetic; floats miss it by an ulp.
    lo = 0.0 if successes == 0 else center - half
    hi = 1.0 if successes == n else center + half
    return lo, hi


def clopper_pearson_bounds(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """Clopper & Pearson (1934, Biometrika 26:404): the beta quantiles B(α/2; k, n-k+1) and
    B(1-α/2; k+1, n-k), α = 1 - confidence; the exact binomial test inverted, so coverage is
    at least the nominal level for every p. Non-integer counts (effective counts of
    clustered data) enter the beta parameters as they are."""
    alpha = 1 - confidence
    lo = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi


def small_count(successes: float, n: float) -> bool:
    """Whether the default interval falls back to Clopper-Pearson (see SMALL_COUNT)."""
    return min(successes, n - successes) < SMALL_COUNT


def proportion_bounds(successes: float, n: float, confidence: float) -> tuple[float, float, str]:
    """The default interval for one proportion: Wilson, or Clopper-Pearson when fewer than
    SMALL_COUNT successes or failures; returns (lo, hi, the method's name)."""
    if small_count(successes, n):
        return (*clopper_pearson_bounds(successes, n, confidence), "Clopper-Pearson")
    return (*wilson_bounds(successes, n, confidence), "Wilson")


def design_effect(values: np.ndarray, groups: np.ndarray) -> float:
    """Kish's design effect of the item mean under clustering: the cluster-robust (sandwich)
    variance G/(G-1) Σ_g (S_g - n_g p̂)² / n² over the independent-items variance p̂(1-p̂)/n,
    floored at 1 (clustering is not assumed to help). 1 where p̂ is 0 or 1, where it cannot be
    estimated.

    The clustered proportion's interval is then the default interval on the effective sample
    n / deff with p̂ n / deff successes (Korn & Graubard 1998; Dean & Pagano 2015 found the
    design-effect Wilson the most reliable for clustered binomial data)."""
    n = len(values)
    p = float(values.mean())
    sizes = np.bincount(groups).astype(float)
    clusters = len(sizes)
    if p in (0.0, 1.0) or clusters < 2:
        return 1.0
    residual = np.bincount(groups, weights=values) - sizes * p
    robust = clusters / (clusters - 1) * float(np.sum(residual * residual)) / (n * n)
    return max(1.0, robust / (p * (1 - p) / n))


def effective_divisor(deff: float, clusters: int, confidence: float) -> float:
    """What clustered counts are divided by: the design effect times (t_{G-1} / z)², Korn &
    Graubard's (1998, Survey Methodology 24:193) degrees-of-freedom adjustment of the effective
    sample size, so that few clusters widen the interval as a t quantile would."""
    z = float(norm.ppf((1 + confidence) / 2))
    t = float(student_t.ppf((1 + confidence) / 2, max(clusters - 1, 1)))
    return deff * (t / z) ** 2

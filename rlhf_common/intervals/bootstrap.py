"""Intervals and matching p-values read off bootstrap replicates: percentile, Hesterberg's
expanded percentile, BCa and the studentised (bootstrap-t) interval.

Each p-value is the smallest two-sided level at which its own interval excludes the null, so a
test and its interval always agree, and Holm's correction inherits the interval's size.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t


def percentile_bounds(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The (1 - confidence)/2 and (1 + confidence)/2 quantiles of the replicates."""
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(replicates, [alpha, 1 - alpha])
    return float(lo), float(hi)


def percentile_p_value(replicates: np.ndarray, null: float = 0.0) -> float:
    """p = min(1, 2 min((1 + #{θ* <= null}) / (B + 1), (1 + #{θ* >= null}) / (B + 1))): the
    smallest two-sided level at which the percentile interval would exclude `null`, with the
    +1 of Davison & Hinkley (1997, eq. 4.11) so that a Monte Carlo p-value is never 0 (its
    floor is 2 / (B + 1)). Replicates all equal to `null` give 1."""
    r = np.asarray(replicates, dtype=float)
    if r.ndim != 1 or len(r) == 0:
        raise ValueError("bootstrap_p_value needs a non-empty 1-D array of replicates")
    return float(min(1.0, 2 * _tail_share(r, null)))


def design_expansion(units_per_stratum: np.ndarray) -> tuple[float, int]:
    """(expansion, degrees of freedom) of a resampling design with m_h units in stratum h.

    The bootstrap variance of a stratum's mean is (m_h - 1)/m_h of the unbiased one. For a
    statistic weighing strata equally, with equal variances, the bootstrap variance falls short
    by the factor expansion² = Σ 1/m_h / Σ (m_h - 1)/m_h² (n / (n - 1) without strata), and the
    unbiased variance has Σ (m_h - 1) degrees of freedom. Strata of one unit carry no
    variance either way and are left out."""
    m = np.asarray(units_per_stratum, dtype=float)
    m = m[m >= 2]
    if len(m) == 0:
        return 1.0, 1
    return float(np.sqrt(np.sum(1 / m) / np.sum((m - 1) / m**2))), int(np.sum(m - 1))


def expanded_levels(confidence: float, expansion: float, df: int) -> tuple[float, float]:
    """Hesterberg's (2015, "What teachers should know about the bootstrap", §5.2) expanded
    percentile levels Φ(± expansion · t_{df, (1 + confidence)/2}): the percentile interval
    widened to undo the plug-in variance (n, not n - 1) and the normal, not t, quantile."""
    z = expansion * float(student_t.ppf((1 + confidence) / 2, df))
    low = float(norm.cdf(-z))
    return low, 1 - low


def expanded_bounds(
    replicates: np.ndarray, confidence: float, expansion: float, df: int
) -> tuple[float, float]:
    lo, hi = np.quantile(replicates, expanded_levels(confidence, expansion, df))
    return float(lo), float(hi)


def expanded_p_value(replicates: np.ndarray, expansion: float, df: int, null: float = 0.0) -> float:
    """Inverts expanded_levels: with q the tail share at the null (as in percentile_p_value),
    the level q is reached at nominal two-sided p = 2 T_df(Φ⁻¹(q) / expansion)."""
    q = min(_tail_share(np.asarray(replicates, dtype=float), null), 0.5)
    return float(min(1.0, 2 * student_t.cdf(norm.ppf(q) / expansion, df)))


def bca_bounds(
    replicates: np.ndarray, point: float, jackknife: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated interval (Efron & Tibshirani 1993, §14.3).

    z0 = Φ⁻¹(share of replicates below the point estimate), counting ties as half so that 0/1
    data, with its many replicates exactly at the point, gets no spurious bias correction (for
    continuous data this is Efron's definition). Acceleration a = Σd³ / (6 (Σd²)^{3/2}) with
    d = mean(jackknife) - jackknife. The interval takes the replicates' quantiles at
    Φ(z0 + (z0 + z_α) / (1 - a (z0 + z_α))) for α = (1 - confidence)/2 and 1 - α.
    """
    z0, acceleration = _bca_constants(replicates, point, jackknife)
    z = norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2])
    levels = norm.cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
    lo, hi = np.quantile(replicates, levels)
    return float(lo), float(hi)


def bca_p_value(
    replicates: np.ndarray, point: float, jackknife: np.ndarray, null: float = 0.0
) -> float:
    """Inverts the BCa level map: the quantile level q of the null (its tail share) is reached
    at z_α = w / (1 + a w) - z0 with w = Φ⁻¹(q) - z0; p = 2 Φ(z_α) for the nearer tail. A
    level the map never reaches (1 + a w <= 0) lies outside every BCa interval: p is the floor."""
    r = np.asarray(replicates, dtype=float)
    z0, acceleration = _bca_constants(r, point, jackknife)
    floor = 2 / (len(r) + 1)
    below = (1 + np.count_nonzero(r <= null)) / (len(r) + 1)
    above = (1 + np.count_nonzero(r >= null)) / (len(r) + 1)
    # Lower tail: the lower bound sits at level q_below when w = Φ⁻¹(q_below) - z0 equals
    # u / (1 - a u), u = z0 + z_α. Upper tail likewise, mirrored, with u = z0 - z_α.
    tails = []
    for w, mirrored in (
        (float(norm.ppf(below)) - z0, False),
        (-float(norm.ppf(above)) - z0, True),
    ):
        if 1 + acceleration * w <= 0:
            tails.append(0.0)
            continue
        u = w / (1 + acceleration * w)
        tails.append(float(norm.cdf(z0 - u if mirrored else u - z0)))
    return float(min(1.0, max(floor, 2 * min(tails))))


def studentized_bounds(
    point: float, se: float, t_replicates: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Bootstrap-t interval (Efron & Tibshirani 1993, §12.5): with t* = (θ* - θ̂) / se*,
    [θ̂ - t*_{1-α} se, θ̂ - t*_{α} se] for α = (1 - confidence)/2. Replicates whose se* is 0
    give t* = ±inf (or 0 at the point); a bound past them is infinite."""
    alpha = (1 - confidence) / 2
    t_lo, t_hi = np.quantile(t_replicates, [alpha, 1 - alpha], method="inverted_cdf")
    return float(point - t_hi * se), float(point - t_lo * se)


def studentized_p_value(point: float, se: float, t_replicates: np.ndarray, null: float = 0.0):
    """The tail share of the observed t = (θ̂ - null) / se among the t*, doubled, +1 as in
    percentile_p_value."""
    if se == 0:
        return 1.0 if point == null else 2 / (len(t_replicates) + 1)
    return float(min(1.0, 2 * _tail_share(np.asarray(t_replicates), (point - null) / se)))


def t_statistics(replicates: np.ndarray, errors: np.ndarray, point: float) -> np.ndarray:
    """t* = (θ* - θ̂) / se*, with ±inf where se* = 0 and θ* differs from θ̂, 0 where it does not."""
    diff = replicates - point
    safe = np.where(errors > 0, errors, 1.0)
    return np.where(errors > 0, diff / safe, np.sign(diff) * np.where(diff != 0, np.inf, 0.0))


def _tail_share(replicates: np.ndarray, null: float) -> float:
    below = (1 + np.count_nonzero(replicates <= null)) / (len(replicates) + 1)
    above = (1 + np.count_nonzero(replicates >= null)) / (len(replicates) + 1)
    return min(below, above)


def _bca_constants(
    replicates: np.ndarray, point: float, jackknife: np.ndarray
) -> tuple[float, float]:
    below = np.count_nonzero(replicates < point) + 0.5 * np.count_nonzero(replicates == point)
    # Clip so a point outside every replicate gives a large finite bias, not an infinite one.
    share = np.clip(below / len(replicates), 0.5 / len(replicates), 1 - 0.5 / len(replicates))
    z0 = float(norm.ppf(share))
    d = jackknife.mean() - jackknife
    spread = np.sum(d * d)
    acceleration = float(np.sum(d**3) / (6 * spread**1.5)) if spread > 0 else 0.0
    return z0, acceleration

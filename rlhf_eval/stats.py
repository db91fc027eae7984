"""Point estimates with confidence intervals (Wilson; bootstrap: BCa, clustered, stratified,
paired), bootstrap p-values and Holm's correction."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm

# Elements per chunk of resampled indices. Each element costs an int32 index plus the float64 it
# gathers, so a chunk holds ~24 MB; chunks this size stay cache-friendly and measured faster than
# larger ones, while memory stays bounded whatever the iteration count.
_CHUNK_ELEMENTS = 2**21


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval; None where it cannot be estimated."""

    point: float | None
    lo: float | None
    hi: float | None
    n: int
    method: str
    confidence: float = 0.95

    def to_dict(self) -> dict:
        """The fields as a dict, matching `rlhf_eval.results.EstimateRecord`."""
        return asdict(self)


def wilson(successes: float, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion (Wilson 1927, JASA 22:209).

    With p = successes / n and z the two-sided normal quantile:
    center = (p + z²/2n) / (1 + z²/n), half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    `successes` may be fractional (e.g. ties counted as half a win). n == 0 gives None throughout.
    """
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson needs 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(None, None, None, 0, "wilson", confidence)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At p = 0 (p = 1) the bound is exactly 0 (1) in exact arithmetic; floats miss it by an ulp.
    lo = 0.0 if successes == 0 else center - half
    hi = 1.0 if successes == n else center + half
    return Estimate(p, lo, hi, n, "wilson", confidence)


def proportion(values: Sequence[float | None], confidence: float = 0.95) -> Estimate:
    """Mean of 0/1 outcomes with a Wilson interval; NaN/None are failed samples and are dropped."""
    x = _finite(values)
    if np.any((x < 0) | (x > 1)):
        raise ValueError("proportion needs values in [0, 1]; use bootstrap_mean for other scores")
    return wilson(float(x.sum()), len(x), confidence)


def bootstrap_mean(
    values: Sequence[float | None],
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    method: Literal["percentile", "bca"] = "percentile",
    clusters: Sequence[Hashable] | None = None,
) -> Estimate:
    """Mean with a percentile or BCa bootstrap interval (Efron & Tibshirani 1993, ch. 13-14).

    NaN/None values are failed samples: they are dropped, never scored as zero. With `clusters`
    (one id per value) whole clusters are resampled and the estimator of each resample is the mean
    over all items it contains, sum(cluster sums) / sum(cluster sizes); the point estimate is the
    plain item mean. BCa then takes its acceleration from a leave-one-cluster-out jackknife.
    Identical values give the degenerate interval [v, v]; fewer than two clusters give no interval.
    """
    _check_confidence(confidence)
    _check_iterations(iterations)
    if method not in ("percentile", "bca"):
        raise ValueError(f"bootstrap method must be 'percentile' or 'bca', got {method!r}")
    x, groups = _drop_missing(values, clusters)
    label = "percentile" if method == "percentile" else "BCa"
    description = _describe(f"{label} bootstrap", iterations, groups)
    if len(x) == 0:
        return Estimate(None, None, None, 0, description, confidence)
    if np.all(x == x[0]):
        v = float(x[0])
        return Estimate(v, v, v, len(x), description, confidence)
    point = float(x.mean())
    if groups is not None and groups.max() == 0:
        return Estimate(point, None, None, len(x), description, confidence)

    replicates = _mean_replicates(x, groups, iterations, seed)
    if method == "percentile":
        lo, hi = _percentile_interval(replicates, confidence)
    else:
        if groups is None:
            jackknife = (x.sum() - x) / (len(x) - 1)
        else:
            sums = np.bincount(groups, weights=x)
            sizes = np.bincount(groups).astype(float)
            jackknife = (sums.sum() - sums) / (sizes.sum() - sizes)
        lo, hi = _bca_interval(replicates, point, jackknife, confidence)
    return Estimate(point, lo, hi, len(x), description, confidence)


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
    strata: Sequence[Hashable] | None = None,
) -> Estimate:
    """Percentile bootstrap interval for a corpus-level statistic such as BLEU or a ratio of sums.

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
    (clusters) to draw from gives no interval.
    """
    _check_confidence(confidence)
    _check_iterations(iterations)
    groups = None if clusters is None else _cluster_codes(clusters, n)
    layers = None if strata is None else _group_strata(strata, groups, n)
    description = _describe("percentile bootstrap", iterations, groups, layers)
    if n == 0:
        return Estimate(None, None, None, 0, description, confidence)
    point = float(_call(statistic, np.arange(n)[None])[0])
    if not _can_resample(groups, layers):
        return Estimate(point, None, None, n, description, confidence)

    lo, hi = _percentile_interval(
        _statistic_replicates(statistic, n, groups, iterations, seed, layers), confidence
    )
    return Estimate(point, lo, hi, n, description, confidence)


def paired_bootstrap(
    candidate: Sequence[float | None],
    baseline: Sequence[float | None],
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
) -> Estimate:
    """Mean paired difference candidate - baseline with a percentile bootstrap interval.

    The arrays are aligned item by item by the caller; a pair with NaN/None on either side is
    dropped, so n counts the items both models answered. Resampling pairs (or whole clusters of
    pairs) keeps the correlation between the two models' scores on the same item, which is what
    makes the paired interval narrower than comparing two independent intervals.
    """
    return paired_bootstrap_test(candidate, baseline, confidence, iterations, seed, clusters).delta


@dataclass(frozen=True)
class PairedTest:
    """A paired difference with its interval, and the two-sided bootstrap p-value of delta = 0
    taken from the same resamples (None where there is no interval)."""

    delta: Estimate
    p_value: float | None


def paired_bootstrap_test(
    candidate: Sequence[float | None],
    baseline: Sequence[float | None],
    confidence: float = 0.95,
    iterations: int = 10_000,
    seed: int = 0,
    clusters: Sequence[Hashable] | None = None,
) -> PairedTest:
    """`paired_bootstrap`'s interval plus a p-value for "no difference" (see bootstrap_p_value).

    The interval is exactly paired_bootstrap's: the same seed draws the same resamples.
    """
    _check_confidence(confidence)
    _check_iterations(iterations)
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired_bootstrap needs two 1-D arrays of equal length, got {a.shape} and {b.shape}"
        )
    x, groups = _drop_missing(a - b, clusters)
    description = "paired " + _describe("percentile bootstrap", iterations, groups)
    if len(x) == 0:
        return PairedTest(Estimate(None, None, None, 0, description, confidence), None)
    if np.all(x == x[0]):
        # Every resample gives the same difference: no need to draw them.
        v = float(x[0])
        p = bootstrap_p_value(np.full(iterations, v))
        return PairedTest(Estimate(v, v, v, len(x), description, confidence), p)
    point = float(x.mean())
    if groups is not None and groups.max() == 0:
        return PairedTest(Estimate(point, None, None, len(x), description, confidence), None)
    replicates = _mean_replicates(x, groups, iterations, seed)
    lo, hi = _percentile_interval(replicates, confidence)
    return PairedTest(
        Estimate(point, lo, hi, len(x), description, confidence), bootstrap_p_value(replicates)
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
) -> PairedTest:
    """Paired bootstrap of a corpus-level statistic: candidate(idx) - baseline(idx).

    Both statistics see the very same resampled item indices in every replicate (items aligned
    by the caller), which is what pairs them (Koehn 2004, "Statistical significance tests for
    machine translation evaluation"); each takes indices of shape (B, k) and returns (B,), as in
    bootstrap_statistic. The point is the difference on the full data. `clusters` and `strata`
    resample as in bootstrap_statistic.
    """
    _check_confidence(confidence)
    _check_iterations(iterations)
    groups = None if clusters is None else _cluster_codes(clusters, n)
    layers = None if strata is None else _group_strata(strata, groups, n)
    description = "paired " + _describe("percentile bootstrap", iterations, groups, layers)
    if n == 0:
        return PairedTest(Estimate(None, None, None, 0, description, confidence), None)

    def difference(indices: np.ndarray) -> np.ndarray:
        return _call(candidate, indices) - _call(baseline, indices)

    point = float(difference(np.arange(n)[None])[0])
    if not _can_resample(groups, layers):
        return PairedTest(Estimate(point, None, None, n, description, confidence), None)
    replicates = _statistic_replicates(difference, n, groups, iterations, seed, layers)
    lo, hi = _percentile_interval(replicates, confidence)
    return PairedTest(
        Estimate(point, lo, hi, n, description, confidence), bootstrap_p_value(replicates)
    )


def bootstrap_p_value(replicates: np.ndarray, null: float = 0.0) -> float:
    """Two-sided p-value for "the statistic equals `null`", from its bootstrap replicates.

    p = min(1, 2 min((1 + #{θ* <= null}) / (B + 1), (1 + #{θ* >= null}) / (B + 1))): the
    smallest two-sided level at which the percentile interval would exclude `null`, with the
    +1 of Davison & Hinkley (1997, eq. 4.11) so that a Monte Carlo p-value is never 0 (its
    floor is 2 / (B + 1)). Replicates all equal to `null` give 1.
    """
    r = np.asarray(replicates, dtype=float)
    if r.ndim != 1 or len(r) == 0:
        raise ValueError("bootstrap_p_value needs a non-empty 1-D array of replicates")
    below = (1 + np.count_nonzero(r <= null)) / (len(r) + 1)
    above = (1 + np.count_nonzero(r >= null)) / (len(r) + 1)
    return float(min(1.0, 2 * min(below, above)))


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


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _check_iterations(iterations: int) -> None:
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")


def _finite(values: Sequence[float | None]) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def _drop_missing(
    values: Sequence[float | None], clusters: Sequence[Hashable] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop NaN/None values (and their cluster ids); return values and dense cluster codes."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    keep = ~np.isnan(x)
    if clusters is None:
        return x[keep], None
    codes = _cluster_codes(clusters, len(x))
    # Re-code after dropping so a cluster whose items all failed is not resampled as empty.
    _, codes = np.unique(codes[keep], return_inverse=True)
    return x[keep], codes


def _cluster_codes(clusters: Sequence[Hashable], n: int) -> np.ndarray:
    """Dense integer codes 0..G-1 for hashable cluster ids, in order of first appearance."""
    if len(clusters) != n:
        raise ValueError(f"clusters must give one id per item: got {len(clusters)} for {n} items")
    first_seen: dict[Hashable, int] = {}
    return np.array([first_seen.setdefault(c, len(first_seen)) for c in clusters], dtype=np.int64)


def _group_strata(strata: Sequence[Hashable], groups: np.ndarray | None, n: int) -> np.ndarray:
    """The stratum code of each resampling unit: of each cluster code, or of each item when
    there are no clusters. A cluster whose items lie in two strata is a ValueError."""
    if len(strata) != n:
        raise ValueError(f"strata must give one label per item: got {len(strata)} for {n} items")
    codes = _cluster_codes(strata, n)
    if groups is None:
        return codes
    layers = np.full(groups.max() + 1 if n else 0, -1, dtype=np.int64)
    for group, layer in zip(groups, codes, strict=True):
        if layers[group] not in (-1, layer):
            raise ValueError(
                "every cluster must lie within one stratum: a cluster has items in two strata"
            )
        layers[group] = layer
    return layers


def _can_resample(groups: np.ndarray | None, layers: np.ndarray | None) -> bool:
    """Whether resampling can vary: two clusters in all, or two in some stratum."""
    if layers is not None:
        return bool(np.bincount(layers).max() >= 2) if len(layers) else False
    return groups is None or groups.max() > 0


def _describe(
    kind: str, iterations: int, groups: np.ndarray | None, layers: np.ndarray | None = None
) -> str:
    clustered = "" if groups is None else f", clustered by {len(np.unique(groups))} groups"
    stratified = "" if layers is None else f", stratified by {len(np.unique(layers))} strata"
    return f"{kind} ({iterations} resamples{clustered}{stratified})"


def _index_chunks(
    rng: np.random.Generator, n: int, iterations: int, rows: int | None = None
) -> Iterator[np.ndarray]:
    """Yield int32 arrays of indices in [0, n), drawn with replacement: `iterations` rows in all."""
    rows = max(1, _CHUNK_ELEMENTS // n if rows is None else rows)
    for start in range(0, iterations, rows):
        yield rng.integers(0, n, size=(min(rows, iterations - start), n), dtype=np.int32)


def _call(statistic: Callable[[np.ndarray], np.ndarray], indices: np.ndarray) -> np.ndarray:
    result = np.asarray(statistic(indices), dtype=float)
    if result.shape != (len(indices),):
        raise ValueError(
            f"statistic must map indices of shape (B, k) to shape (B,): "
            f"got {result.shape} for indices of shape {indices.shape}"
        )
    return result


def _mean_replicates(
    x: np.ndarray, groups: np.ndarray | None, iterations: int, seed: int
) -> np.ndarray:
    """Bootstrap replicates of the item mean; with groups, whole clusters are resampled."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.concatenate(
            [x[idx].mean(axis=1) for idx in _index_chunks(rng, len(x), iterations)]
        )
    sums = np.bincount(groups, weights=x)
    sizes = np.bincount(groups).astype(float)
    return np.concatenate(
        [
            sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
            for idx in _index_chunks(rng, len(sums), iterations)
        ]
    )


def _statistic_replicates(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    groups: np.ndarray | None,
    iterations: int,
    seed: int,
    layers: np.ndarray | None = None,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if groups is None and layers is None:
        return np.concatenate([_call(statistic, idx) for idx in _index_chunks(rng, n, iterations)])
    if groups is None:
        groups = np.arange(n)  # stratified items: each item is its own resampling unit
    return _clustered_statistic(statistic, groups, iterations, rng, layers)


def _stratified_chunks(
    rng: np.random.Generator, layers: np.ndarray, iterations: int, rows: int
) -> Iterator[np.ndarray]:
    """Like _index_chunks over units 0..G-1, but each stratum's units are drawn from that
    stratum only: every row holds, stratum by stratum, as many units as the stratum has."""
    members = [np.flatnonzero(layers == layer) for layer in np.unique(layers)]
    rows = max(1, rows)
    for start in range(0, iterations, rows):
        size = min(rows, iterations - start)
        yield np.concatenate(
            [m[rng.integers(0, len(m), size=(size, len(m)), dtype=np.int32)] for m in members],
            axis=1,
        )


def _clustered_statistic(
    statistic: Callable[[np.ndarray], np.ndarray],
    groups: np.ndarray,
    iterations: int,
    rng: np.random.Generator,
    layers: np.ndarray | None = None,
) -> np.ndarray:
    """Replicates of `statistic` over resamples of whole clusters, items of a cluster together;
    with `layers` (each cluster's stratum) clusters are drawn within their stratum."""
    order = np.argsort(groups, kind="stable")  # items grouped by cluster, original order within
    sizes = np.bincount(groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_groups = len(sizes)
    # Rows per chunk from the item count, so the expanded item indices average the chunk budget.
    rows = _CHUNK_ELEMENTS // len(groups)
    if layers is None:
        chunks = _index_chunks(rng, n_groups, iterations, rows=rows)
    else:
        chunks = _stratified_chunks(rng, layers, iterations, rows)
    replicates = []
    for drawn in chunks:
        lengths = sizes[drawn].sum(axis=1)
        # Flatten every row's clusters into one run of item positions: cluster c contributes
        # order[starts[c] : starts[c] + sizes[c]].
        flat_sizes = sizes[drawn.ravel()]
        offsets = np.repeat(starts[drawn.ravel()] - np.cumsum(flat_sizes) + flat_sizes, flat_sizes)
        flat = order[offsets + np.arange(flat_sizes.sum())]
        row_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        chunk = np.empty(len(drawn))
        for k in np.unique(lengths):
            rows_k = np.flatnonzero(lengths == k)
            chunk[rows_k] = _call(statistic, flat[row_starts[rows_k, None] + np.arange(k)])
        replicates.append(chunk)
    return np.concatenate(replicates)


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(replicates, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _bca_interval(
    replicates: np.ndarray, point: float, jackknife: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated interval (Efron & Tibshirani 1993, §14.3).

    z0 = Φ⁻¹(share of replicates below the point estimate), counting ties as half so that 0/1
    data, with its many replicates exactly at the point, gets no spurious bias correction (for
    continuous data this is Efron's definition). Acceleration a = Σd³ / (6 (Σd²)^{3/2}) with
    d = mean(jackknife) - jackknife. The interval takes the replicates' quantiles at
    Φ(z0 + (z0 + z_α) / (1 - a (z0 + z_α))) for α = (1 - confidence)/2 and 1 - α.
    """
    below = np.count_nonzero(replicates < point) + 0.5 * np.count_nonzero(replicates == point)
    # Clip so a point outside every replicate gives a large finite bias, not an infinite one.
    share = np.clip(below / len(replicates), 0.5 / len(replicates), 1 - 0.5 / len(replicates))
    z0 = norm.ppf(share)
    d = jackknife.mean() - jackknife
    spread = np.sum(d * d)
    acceleration = np.sum(d**3) / (6 * spread**1.5) if spread > 0 else 0.0
    z = norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2])
    levels = norm.cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
    lo, hi = np.quantile(replicates, levels)
    return float(lo), float(hi)

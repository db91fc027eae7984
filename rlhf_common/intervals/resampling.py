"""Bootstrap replicates: resampled item indices (plain, clustered, stratified), drawn in chunks
and vectorised, and the replicates of a mean or of any statistic of the indices."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence

import numpy as np

# Elements per chunk of resampled indices. Each element costs an int32 index plus the float64 it
# gathers, so a chunk holds ~24 MB; chunks this size stay cache-friendly and measured faster than
# larger ones, while memory stays bounded whatever the iteration count.
CHUNK_ELEMENTS = 2**21

Statistic = Callable[[np.ndarray], np.ndarray]


def cluster_codes(clusters: Sequence[Hashable], n: int) -> np.ndarray:
    """Dense integer codes 0..G-1 for hashable cluster ids, in order of first appearance."""
    if len(clusters) != n:
        raise ValueError(f"clusters must give one id per item: got {len(clusters)} for {n} items")
    first_seen: dict[Hashable, int] = {}
    return np.array([first_seen.setdefault(c, len(first_seen)) for c in clusters], dtype=np.int64)


def drop_missing(
    values: Sequence[float | None], clusters: Sequence[Hashable] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop NaN/None values (and their cluster ids); return values and dense cluster codes."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    keep = ~np.isnan(x)
    if clusters is None:
        return x[keep], None
    codes = cluster_codes(clusters, len(x))
    # Re-code after dropping so a cluster whose items all failed is not resampled as empty.
    _, codes = np.unique(codes[keep], return_inverse=True)
    return x[keep], codes


def group_strata(strata: Sequence[Hashable], groups: np.ndarray | None, n: int) -> np.ndarray:
    """The stratum code of each resampling unit: of each cluster code, or of each item when
    there are no clusters. A cluster whose items lie in two strata is a ValueError."""
    if len(strata) != n:
        raise ValueError(f"strata must give one label per item: got {len(strata)} for {n} items")
    codes = cluster_codes(strata, n)
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


def can_resample(groups: np.ndarray | None, layers: np.ndarray | None) -> bool:
    """Whether resampling can vary: two clusters in all, or two in some stratum."""
    if layers is not None:
        return bool(np.bincount(layers).max() >= 2) if len(layers) else False
    return groups is None or groups.max() > 0


def unit_counts(
    n: int, groups: np.ndarray | None, layers: np.ndarray | None
) -> tuple[int, np.ndarray]:
    """(resampling units, units per stratum): the units are the clusters, or the items; a
    design without strata is one stratum."""
    units = n if groups is None else int(groups.max()) + 1 if n else 0
    if layers is None:
        return units, np.array([units])
    return units, np.bincount(layers)


def index_chunks(
    rng: np.random.Generator, n: int, iterations: int, rows: int | None = None
) -> Iterator[np.ndarray]:
    """Yield int32 arrays of indices in [0, n), drawn with replacement: `iterations` rows in all."""
    rows = max(1, CHUNK_ELEMENTS // n if rows is None else rows)
    for start in range(0, iterations, rows):
        yield rng.integers(0, n, size=(min(rows, iterations - start), n), dtype=np.int32)


def call_statistic(statistic: Statistic, indices: np.ndarray) -> np.ndarray:
    result = np.asarray(statistic(indices), dtype=float)
    if result.shape != (len(indices),):
        raise ValueError(
            f"statistic must map indices of shape (B, k) to shape (B,): "
            f"got {result.shape} for indices of shape {indices.shape}"
        )
    return result


def mean_replicates(
    x: np.ndarray, groups: np.ndarray | None, iterations: int, seed: int
) -> np.ndarray:
    """Bootstrap replicates of the item mean; with groups, whole clusters are resampled."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.concatenate(
            [x[idx].mean(axis=1) for idx in index_chunks(rng, len(x), iterations)]
        )
    sums = np.bincount(groups, weights=x)
    sizes = np.bincount(groups).astype(float)
    return np.concatenate(
        [
            sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
            for idx in index_chunks(rng, len(sums), iterations)
        ]
    )


def studentized_replicates(
    x: np.ndarray, iterations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Replicates of the mean and of its standard error sd(ddof=1)/sqrt(n), from the same
    index draws as mean_replicates with the same seed. Values are centred first so the
    sum of squares loses no precision."""
    rng = np.random.default_rng(seed)
    n = len(x)
    centre = x.mean()
    centred = x - centre
    means, squares = [], []
    for idx in index_chunks(rng, n, iterations):
        drawn = centred[idx]
        means.append(drawn.mean(axis=1))
        squares.append(np.einsum("ij,ij->i", drawn, drawn) / n)
    mean = np.concatenate(means)
    variance = np.maximum(np.concatenate(squares) - mean * mean, 0.0) * n / (n - 1)
    return mean + centre, np.sqrt(variance / n)


def statistic_replicates(
    statistic: Statistic,
    n: int,
    groups: np.ndarray | None,
    iterations: int,
    seed: int,
    layers: np.ndarray | None = None,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if groups is None and layers is None:
        return np.concatenate(
            [call_statistic(statistic, idx) for idx in index_chunks(rng, n, iterations)]
        )
    if groups is None:
        groups = np.arange(n)  # stratified items: each item is its own resampling unit
    return clustered_statistic(statistic, groups, iterations, rng, layers)


def stratified_chunks(
    rng: np.random.Generator, layers: np.ndarray, iterations: int, rows: int
) -> Iterator[np.ndarray]:
    """Like index_chunks over units 0..G-1, but each stratum's units are drawn from that
    stratum only: every row holds, stratum by stratum, as many units as the stratum has."""
    members = [np.flatnonzero(layers == layer) for layer in np.unique(layers)]
    rows = max(1, rows)
    for start in range(0, iterations, rows):
        size = min(rows, iterations - start)
        yield np.concatenate(
            [m[rng.integers(0, len(m), size=(size, len(m)), dtype=np.int32)] for m in members],
            axis=1,
        )


def clustered_statistic(
    statistic: Statistic,
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
    rows = CHUNK_ELEMENTS // len(groups)
    if layers is None:
        chunks = index_chunks(rng, n_groups, iterations, rows=rows)
    else:
        chunks = stratified_chunks(rng, layers, iterations, rows)
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
            chunk[rows_k] = call_statistic(statistic, flat[row_starts[rows_k, None] + np.arange(k)])
        replicates.append(chunk)
    return np.concatenate(replicates)

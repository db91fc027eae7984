"""Best-of-N sampling as pure functions: the expected reward of the completion a proxy reward
model ranks first among N samples, estimated without bias from n >= N samples, and the KL
divergence of best-of-N from the sampling policy.

From n samples of one prompt, the best of a random N-subset is the sample of proxy rank i
(1 = lowest) with probability C(i-1, N-1) / C(n, N): the subset must hold it and N-1 of the i-1
samples below it. Weighting every sample so averages over all C(n, N) subsets at once, which
is the unbiased estimator of the best-of-N expectation (Nakano et al. 2021, WebGPT appendix;
Gao et al. 2022 sec. 2.2) and has lower variance than drawing independent subsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def best_of_n_weights(proxy: Sequence[float], n_best: int) -> np.ndarray:
    """P(sample j is the proxy's choice among a random n_best-subset of the n samples), for
    each sample j; the weights sum to 1. Tied proxy rewards share their probability equally
    (the choice among equals is a coin toss)."""
    scores = np.asarray(proxy, dtype=float)
    n = len(scores)
    if not 1 <= n_best <= n:
        raise ValueError(f"best-of-{n_best} needs 1 <= N <= n samples (n = {n})")
    order = np.argsort(scores, kind="stable")
    total = math.comb(n, n_best)
    by_rank = np.array([math.comb(i, n_best - 1) / total for i in range(n)])  # rank i+1 of n
    weights = np.empty(n)
    weights[order] = by_rank
    for value in np.unique(scores):
        tied = scores == value
        if tied.sum() > 1:
            weights[tied] = weights[tied].mean()
    return weights


def best_of_n_value(proxy: Sequence[float], values: Sequence[float], n_best: int) -> float:
    """E[value of the proxy's best of N samples], unbiased from the n samples: the gold reward
    (values = gold) or the proxy's own reward (values = proxy) of the completion chosen."""
    return float(best_of_n_weights(proxy, n_best) @ np.asarray(values, dtype=float))


def best_of_n_kl(n_best: int) -> float:
    """KL(best-of-N || policy) = log N - (N - 1) / N nats, the analytic value (Stiennon et al.
    2020, appendix G.3; the x-axis of Gao et al. 2022, Figure 1, as its square root)."""
    return math.log(n_best) - (n_best - 1) / n_best


def powers_of_two(n: int) -> list[int]:
    """1, 2, 4, ... up to n: the N of a best-of-N curve from n samples."""
    out, k = [], 1
    while k <= n:
        out.append(k)
        k *= 2
    return out

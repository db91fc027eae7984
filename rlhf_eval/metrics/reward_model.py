"""Reward-model metrics as pure functions: which response of a human-ranked pair the model
prefers, its Bradley-Terry probability and calibration, rank correlation, length bias.

A reward model's margin on a pair is m = r_w - r_l, the winner's reward minus the loser's
(InstructGPT eq. 1: the model is trained so that sigmoid(m) is the probability that labelers
prefer the winner). Everything here is read off the margins of a ranking's untied pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau

DEFAULT_BINS = 10
"""Equal-width confidence bins on [0.5, 1] for the expected calibration error."""

PEARSON_FIELDS = 6
"""n, sum x, sum y, sum x^2, sum y^2, sum xy: what a Pearson correlation needs, summed."""


def ranked_pairs(ranks: Sequence[int]) -> list[tuple[int, int]]:
    """(winner, loser) indices of every untied pair (rank 0 is best; tied ranks make no pair):
    the K-choose-2 comparisons of a ranking (InstructGPT sec. 3.5)."""
    k = len(ranks)
    return [
        (i, j) if ranks[i] < ranks[j] else (j, i)
        for i in range(k)
        for j in range(i + 1, k)
        if ranks[i] != ranks[j]
    ]


def pair_outcome(margin: float) -> float:
    """1 when the model ranks the pair as people did (m > 0), 0 when reversed, 0.5 on a tie:
    a tie is neither right nor wrong, as a coin flip would be half right."""
    return 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5


def preference_probability(margin: float) -> float:
    """P(winner preferred) = sigmoid(r_w - r_l), the Bradley-Terry probability."""
    if margin >= 0:
        return 1.0 / (1.0 + math.exp(-margin))
    e = math.exp(margin)
    return e / (1.0 + e)


def log_loss(margin: float) -> float:
    """-log sigmoid(m) = log(1 + exp(-m)): the reward model's loss on one comparison
    (InstructGPT eq. 1), computed without overflow."""
    return max(-margin, 0.0) + math.log1p(math.exp(-abs(margin)))


def length_outcome(winner_length: int, loser_length: int) -> float:
    """The "always prefer the longer response" baseline on one pair: 1 if the winner is
    longer, 0 if shorter, 0.5 if they are as long."""
    return pair_outcome(float(winner_length - loser_length))


def kendall_tau(ranks: Sequence[int], scores: Sequence[float]) -> float:
    """Kendall's tau-b between the people's ranking (rank 0 best) and the rewards, in [-1, 1]:
    1 when the rewards order the completions exactly as ranked. Ties on either side count as
    tau-b counts them (scipy.stats.kendalltau). NaN where it is undefined (every reward equal,
    or every rank tied): a counted failure of the metric, never a zero."""
    if len(set(scores)) < 2 or len(set(ranks)) < 2:
        return float("nan")
    return float(kendalltau([-r for r in ranks], scores).statistic)


# --- calibration -------------------------------------------------------------------------------


def confidence_and_hit(margin: float) -> tuple[float, float]:
    """(confidence, hit) of one comparison: the probability the model gives its preferred
    response, sigmoid(|m|) in [0.5, 1], and whether that response is the one people preferred
    (0.5 on a tie). Folding each pair onto its predicted winner makes the reliability diagram
    the same whichever response is listed first."""
    return preference_probability(abs(margin)), pair_outcome(margin)


def calibration_statistics(margins: Sequence[float], bins: int = DEFAULT_BINS) -> np.ndarray:
    """A ranking's calibration counts, summable over rankings: per confidence bin on
    [0.5, 1], the number of comparisons, their summed confidence and their summed hits;
    shape (3 * bins,)."""
    out = np.zeros(3 * bins)
    for margin in margins:
        confidence, hit = confidence_and_hit(margin)
        b = min(int((confidence - 0.5) * 2 * bins), bins - 1)
        out[b] += 1
        out[bins + b] += confidence
        out[2 * bins + b] += hit
    return out


def ece_from_statistics(sums: np.ndarray) -> np.ndarray:
    """Expected calibration error (Guo et al. 2017, eq. 3) from summed calibration_statistics,
    shape (..., 3 * bins) -> (...): sum over bins of (n_b / n) |accuracy_b - confidence_b|,
    which is sum_b |hits_b - confidence_b| / n. NaN with no comparison."""
    sums = np.asarray(sums, dtype=float)
    bins = sums.shape[-1] // 3
    count = sums[..., :bins]
    confidence = sums[..., bins : 2 * bins]
    hits = sums[..., 2 * bins :]
    total = count.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(hits - confidence).sum(axis=-1) / total


def expected_calibration_error(margins: Sequence[float], bins: int = DEFAULT_BINS) -> float:
    """ECE of a set of comparisons' margins (see ece_from_statistics)."""
    return float(ece_from_statistics(calibration_statistics(margins, bins)))


def reliability_table(sums: np.ndarray) -> list[tuple[float, float, float, int]]:
    """(bin low edge, mean confidence, accuracy, count) per non-empty bin of summed
    calibration_statistics: the points of a reliability diagram."""
    bins = len(sums) // 3
    rows = []
    for b in range(bins):
        count = sums[b]
        if count > 0:
            rows.append(
                (
                    0.5 + b / (2 * bins),
                    sums[bins + b] / count,
                    sums[2 * bins + b] / count,
                    int(count),
                )
            )
    return rows


# --- length -------------------------------------------------------------------------------------


def pearson_statistics(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """The sums a Pearson correlation needs, summable over rankings (PEARSON_FIELDS)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return np.array([len(a), a.sum(), b.sum(), (a * a).sum(), (b * b).sum(), (a * b).sum()])


def length_statistics(details: dict[str, Any]) -> np.ndarray:
    """A ranking's sums for the Pearson r of reward and log length (summed over rankings), from
    a reward_model sample's details."""
    return pearson_statistics(details["log_lengths"], details["rewards"])


def pearson_from_statistics(sums: np.ndarray) -> np.ndarray:
    """Pearson's r from summed pearson_statistics, shape (..., 6) -> (...); NaN where either
    variable is constant."""
    s = np.asarray(sums, dtype=float)
    n, sx, sy, sxx, syy, sxy = (s[..., i] for i in range(PEARSON_FIELDS))
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = n * sxy - sx * sy
        var = (n * sxx - sx * sx) * (n * syy - sy * sy)
        return cov / np.sqrt(np.where(var > 0, var, np.nan))


def log_length(text: str) -> float:
    """log(1 + characters): the length scale the reward is correlated with (lengths are
    heavy-tailed; on the log scale a few very long responses do not decide the correlation)."""
    return math.log1p(len(text))


# --- people against people ----------------------------------------------------------------------


def labeler_agreements(
    rankings: Sequence[tuple[str, str, Sequence[str], Sequence[int]]],
) -> list[tuple[str, float]]:
    """(prompt, 1 or 0) for every pair of responses that two labelers both ranked apart:
    whether they ordered it the same way. `rankings` holds (prompt, labeler, completions,
    ranks). The share that agree is the ceiling a reward model trained on these labels can
    reach (InstructGPT sec. 3.5: labelers agree 72.6 ± 1.5% of the time; its RM 69.6 ± 0.9%)."""
    by_prompt: dict[str, list[tuple[str, dict[tuple[str, str], bool]]]] = {}
    for prompt, labeler, completions, ranks in rankings:
        order = {
            (completions[i], completions[j]): ranks[i] < ranks[j]
            for i in range(len(completions))
            for j in range(len(completions))
            if i != j and ranks[i] != ranks[j]
        }
        by_prompt.setdefault(prompt, []).append((labeler, order))
    out = []
    for prompt, labelled in by_prompt.items():
        for a in range(len(labelled)):
            for b in range(a + 1, len(labelled)):
                (who_a, first), (who_b, second) = labelled[a], labelled[b]
                if who_a == who_b:
                    continue
                for (x, y), a_prefers_x in first.items():
                    if x < y and (x, y) in second:
                        out.append((prompt, float(a_prefers_x == second[(x, y)])))
    return out

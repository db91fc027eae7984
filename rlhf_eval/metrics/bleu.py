"""Corpus BLEU as sacrebleu computes it, from per-sentence sufficient statistics.

Corpus BLEU is not a mean of sentence scores: it sums n-gram matches, n-gram totals and lengths
over the corpus and applies the formula once (Papineni et al. 2002). Keeping each sentence's
statistics lets a bootstrap resample sentences and recompute the corpus score per resample with
array sums (Koehn 2004's paired bootstrap), instead of re-tokenising every resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

MAX_ORDER = 4
N_STATISTICS = 2 + 2 * MAX_ORDER
"""Per sentence: hypothesis length, reference length, matches for n = 1..4, totals for n = 1..4
(sacrebleu's own layout)."""


@lru_cache(maxsize=1)
def _scorer():
    from sacrebleu.metrics import BLEU

    # sacrebleu's defaults (13a tokenisation, case-sensitive, "exp" smoothing), the settings of
    # sacrebleu.corpus_bleu; effective_order only changes sentence scores, not the statistics.
    return BLEU(effective_order=True)


def sentence_statistics(hypothesis: str, reference: str) -> np.ndarray:
    """The sufficient statistics of one hypothesis against one reference, shape (10,)."""
    score = _scorer().sentence_score(hypothesis, [reference])
    return np.array([score.sys_len, score.ref_len, *score.counts, *score.totals], dtype=np.float64)


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """sacrebleu's sentence BLEU (effective order): for reading samples, not for aggregating."""
    return float(_scorer().sentence_score(hypothesis, [reference]).score)


def bleu_from_statistics(totals: np.ndarray) -> np.ndarray:
    """Corpus BLEU (0-100) for each row of summed statistics, shape (B, 10) -> (B,).

    sacrebleu's BLEU.compute_bleu with "exp" smoothing, vectorised: brevity penalty
    exp(1 - r/c) when c < r; precision p_n = m_n / t_n, or 1 / (2^k t_n) for the k-th order
    with no match; BLEU = 100 * BP * exp(mean log p_n). A corpus with no match at all, or with no
    n-gram of some order, scores 0, as in sacrebleu.
    """
    totals = np.atleast_2d(np.asarray(totals, dtype=np.float64))
    sys_len, ref_len = totals[:, 0], totals[:, 1]
    correct, total = totals[:, 2 : 2 + MAX_ORDER], totals[:, 2 + MAX_ORDER :]
    with np.errstate(divide="ignore", invalid="ignore"):
        penalty = np.where(
            sys_len < ref_len,
            np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0),
            1.0,
        )
        halvings = np.cumsum(correct == 0, axis=1)
        precision = np.where(correct > 0, 100.0 * correct / total, 100.0 / (2.0**halvings * total))
        logs = np.log(precision)
        # Summed left to right, as sacrebleu's Python sum does, for bit-for-bit agreement.
        mean_log = (logs[:, 0] + logs[:, 1] + logs[:, 2] + logs[:, 3]) / MAX_ORDER
        score = penalty * np.exp(mean_log)
    undefined = (correct.sum(axis=1) == 0) | (total == 0).any(axis=1)
    return np.where(undefined, 0.0, score)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU of paired hypotheses and single references (sacrebleu.corpus_bleu's value)."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"corpus_bleu needs one reference per hypothesis: got {len(hypotheses)} hypotheses "
            f"and {len(references)} references"
        )
    if not hypotheses:
        raise ValueError("corpus_bleu needs at least one sentence")
    table = np.stack(
        [sentence_statistics(h, r) for h, r in zip(hypotheses, references, strict=True)]
    )
    return float(bleu_from_statistics(table.sum(axis=0))[0])

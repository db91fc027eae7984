"""DROP's answer metrics (Dua et al. 2019): EM and bag-of-words F1 with its number handling.

A port of the official `drop_eval.py` (allenai/allennlp-reading-comprehension), the scorer
lm-evaluation-harness also copies: answers are normalised per token (lower case, punctuation
removed except inside numbers, articles dropped, numbers rewritten as floats so "7,761" and
"7761.0" agree), multi-span answers are bags aligned one to one by the Hungarian algorithm, and a
span whose gold answer holds numbers scores 0 unless it shares one of them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Answer = str | Sequence[str]
"""One answer: a string, or the spans of a multi-span answer."""

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_answer(text: str) -> str:
    """DROP's `_normalize_answer`: split on spaces and hyphens, normalise each token, rejoin."""
    parts = [_normalize_token(token) for token in re.split(" |-", text)]
    return " ".join(part for part in parts if part.strip()).strip()


def _bags(answer: Answer) -> tuple[list[str], list[set[str]]]:
    spans = [answer] if isinstance(answer, str) else list(answer)
    normalized = [normalize_answer(span) for span in spans]
    return normalized, [set(span.split()) for span in normalized]


def _bag_f1(predicted: set[str], gold: set[str]) -> float:
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _numbers_match(gold: set[str], predicted: set[str]) -> bool:
    gold_numbers = {w for w in gold if _is_number(w)}
    return not gold_numbers or bool(gold_numbers & {w for w in predicted if _is_number(w)})


def _align_bags(predicted: list[set[str]], gold: list[set[str]]) -> np.ndarray:
    scores = np.zeros((len(gold), len(predicted)))
    for g, gold_bag in enumerate(gold):
        for p, predicted_bag in enumerate(predicted):
            if _numbers_match(gold_bag, predicted_bag):
                scores[g, p] = _bag_f1(predicted_bag, gold_bag)
    rows, columns = linear_sum_assignment(-scores)
    best = np.zeros(max(len(gold), len(predicted)))
    for row, column in zip(rows, columns, strict=True):
        best[row] = max(best[row], scores[row, column])
    return best


def drop_em_f1(predicted: Answer, gold: Answer) -> tuple[float, float]:
    """(EM, F1) of one prediction against one gold answer, as DROP's `get_metrics`.

    EM needs the same set of normalised spans; F1 averages the aligned bags' F1 over
    max(#gold spans, #predicted spans) and is rounded to 2 decimals, as the official script does.
    """
    predicted_spans, predicted_bags = _bags(predicted)
    gold_spans, gold_bags = _bags(gold)
    exact = float(
        set(predicted_spans) == set(gold_spans) and len(predicted_spans) == len(gold_spans)
    )
    return exact, round(float(np.mean(_align_bags(predicted_bags, gold_bags))), 2)


def drop_score(predicted: Answer, golds: Sequence[Answer]) -> tuple[float, float]:
    """(EM, F1) against the best-matching of several gold answers (each maximised separately)."""
    if not golds:
        raise ValueError("drop_score needs at least one gold answer")
    pairs = [drop_em_f1(predicted, gold) for gold in golds]
    return max(em for em, _ in pairs), max(f1 for _, f1 in pairs)

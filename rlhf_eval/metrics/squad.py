"""SQuAD v2's answer metrics (Rajpurkar et al. 2018): EM and token F1 with unanswerables.

A port of the official `evaluate-v2.0.py`: answers are lower-cased, stripped of punctuation
and of the articles a/an/the; an unanswerable question's gold answer is the empty string, and
an empty prediction against it scores 1 on both metrics (any other prediction scores 0).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official normaliser)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(predicted: str, gold: str) -> float:
    return float(normalize_answer(predicted) == normalize_answer(gold))


def token_f1(predicted: str, gold: str) -> float:
    """F1 over normalised tokens; when either side is empty, 1 if both are, else 0."""
    predicted_tokens = normalize_answer(predicted).split()
    gold_tokens = normalize_answer(gold).split()
    if not predicted_tokens or not gold_tokens:
        return float(predicted_tokens == gold_tokens)
    common = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Sequence[str]) -> list[str]:
    """The official rule: answers that normalise to nothing are dropped; none left means the
    question is unanswerable, scored against the single gold answer ''."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def squad_score(predicted: str, answers: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of a prediction against the best of the gold answers."""
    golds = gold_answers(answers)
    return (
        max(exact_match(predicted, g) for g in golds),
        max(token_f1(predicted, g) for g in golds),
    )

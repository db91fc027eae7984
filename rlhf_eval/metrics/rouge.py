"""ROUGE-L F-measure (Lin 2004) through Google's rouge-score package, with Porter stemming."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score.rouge_scorer import RougeScorer

    # Stemming is the common setting for summarisation papers (and Hugging Face evaluate's);
    # rouge-score's tokenizer lower-cases and keeps only ASCII letters and digits.
    return RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one summary against one reference, in [0, 1]; an empty side scores 0."""
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)

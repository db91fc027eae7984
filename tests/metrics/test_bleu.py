"""Corpus BLEU from summed sentence statistics equals sacrebleu.corpus_bleu."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu

from rlhf_eval.metrics.bleu import (
    bleu_from_statistics,
    corpus_bleu,
    sentence_bleu,
    sentence_statistics,
)

HYPOTHESES = [
    "The cat sleeps on the mat.",
    "It rains this morning in Paris.",
    "We are very hungry",
    "door open",
    "She reads a book about the sea.",
    "",
]
REFERENCES = [
    "The cat is sleeping on the mat.",
    "It is raining this morning.",
    "We are hungry.",
    "The door is open.",
    "She is reading a book about the sea.",
    "The train leaves at noon.",
]


def test_corpus_bleu_equals_sacrebleu():
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score
    assert corpus_bleu(HYPOTHESES, REFERENCES) == pytest.approx(expected, abs=1e-9)
    assert expected > 0


@pytest.mark.parametrize("rows", [[0], [3], [5], [0, 0, 1], [1, 3, 5], [2, 4]])
def test_every_subset_and_repeat_equals_sacrebleu(rows):
    """A bootstrap resample repeats sentences: the summed statistics must still agree,
    including the smoothed (no 4-gram match) and zero (no match at all) cases."""
    hyps, refs = [HYPOTHESES[i] for i in rows], [REFERENCES[i] for i in rows]
    table = np.stack([sentence_statistics(h, r) for h, r in zip(hyps, refs, strict=True)])
    ours = bleu_from_statistics(table.sum(axis=0)[None])[0]
    assert ours == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)


def test_shared_wmt15_sample_equals_sacrebleu(shared_data):
    pairs = [
        json.loads(line) for line in (shared_data / "alignment_tax/wmt15_fr_en_100.jsonl").open()
    ]
    # The French source as a (poor) hypothesis gives a realistic low-BLEU corpus.
    hyps, refs = [p["fr"] for p in pairs], [p["en"] for p in pairs]
    assert corpus_bleu(hyps, refs) == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9
    )
    assert corpus_bleu(refs, refs) == pytest.approx(100.0, abs=1e-9)


def test_corpus_bleu_is_not_the_mean_of_sentence_bleu():
    mean = np.mean([sentence_bleu(h, r) for h, r in zip(HYPOTHESES, REFERENCES, strict=True)])
    assert abs(corpus_bleu(HYPOTHESES, REFERENCES) - mean) > 1.0


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        corpus_bleu(["a"], ["a", "b"])

"""ROUGE-L F1 by hand: the longest common subsequence over stemmed, lower-cased tokens."""

from __future__ import annotations

import pytest

from rlhf_eval.metrics.rouge import rouge_l


def test_rouge_l_by_hand():
    # LCS("the cat sat", "the cat sat on the mat") = 3: P 3/3, R 3/6, F1 = 2/3.
    assert rouge_l("The cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # Stemming: "cats" -> "cat"; order matters: LCS("mat cat", "cat mat") = 1.
    assert rouge_l("the cats sat", "the cat sat") == pytest.approx(1.0)
    assert rouge_l("mat cat", "cat mat") == pytest.approx(0.5)
    assert rouge_l("", "the cat") == 0.0

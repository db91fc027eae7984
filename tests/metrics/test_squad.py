"""SQuAD v2 EM/F1 (official evaluate-v2.0.py rules), unanswerable questions included."""

from __future__ import annotations

import pytest

from rlhf_eval.metrics.squad import gold_answers, normalize_answer, squad_score, token_f1


def test_normalisation():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("an Apple") == "apple"


def test_token_f1_by_hand():
    # "cat sat" vs "cat sat down": P 1, R 2/3, F1 = 2 * (2/3) / (5/3) = 0.8
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # Repeated tokens count with multiplicity: {a:2} & {a:1} = 1 common of 2 predicted.
    assert token_f1("rye rye", "rye") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("Paris", "London") == 0.0


def test_unanswerable_questions_credit_an_empty_prediction():
    assert gold_answers([]) == [""]
    assert gold_answers(["", "  "]) == [""]  # answers that normalise to nothing are dropped
    assert squad_score("", [""]) == (1.0, 1.0)
    assert squad_score("Paris", [""]) == (0.0, 0.0)  # answering an unanswerable question
    assert squad_score("", ["Paris"]) == (0.0, 0.0)  # abstaining on an answerable one


def test_best_of_several_gold_answers():
    assert squad_score("in 1871", ["1871", "in 1871"]) == (1.0, 1.0)
    em, f1 = squad_score("built in 1871", ["1871", "in 1871"])
    # Best is "in 1871": P 2/3, R 1 -> F1 0.8; EM is 0.
    assert em == 0.0 and f1 == pytest.approx(0.8)

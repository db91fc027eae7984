"""DROP EM/F1: hand-computed values for numbers, articles, punctuation and multi-span answers."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest

from rlhf_eval.metrics.drop import drop_em_f1, drop_score, normalize_answer


def test_normalisation_rewrites_numbers_and_drops_articles_and_punctuation():
    assert normalize_answer("7,761") == "7761.0"
    assert normalize_answer("The Browns.") == "browns"
    assert normalize_answer("56-yard") == "56.0 yard"  # hyphens split tokens
    assert normalize_answer("76.87") == "76.87"  # a number keeps its decimal point


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("7,761", "7761", (1.0, 1.0)),  # number formats agree
        ("7761.0", "7761", (1.0, 1.0)),
        ("76", "76.87", (0.0, 0.0)),  # a truncated decimal shares no number: F1 0
        ("5 yards", "56 yards", (0.0, 0.0)),  # "yards" overlaps but the number does not
        ("56 yards", "56-yard", (0.0, 0.5)),  # {56, yards} vs {56, yard}: P = R = 1/2
        ("the Browns", "Browns", (1.0, 1.0)),  # articles
        ("Jakob Bagge.", "Jakob Bagge", (1.0, 1.0)),  # punctuation
        # {one, two, three} vs {one, two, four, five}: P 2/3, R 1/2, F1 4/7 = 0.5714 -> 0.57
        ("one two three", "one two four five", (0.0, 0.57)),
    ],
)
def test_single_span(predicted, gold, expected):
    assert drop_em_f1(predicted, gold) == expected


def test_multi_span_answers_align_bags_one_to_one():
    gold = ["Philip Rivers", "Mike Tolbert"]
    # Same spans in another order: exact.
    assert drop_em_f1(["Mike Tolbert", "Philip Rivers"], gold) == (1.0, 1.0)
    # One of two spans: bags [1, 0] averaged over max(2, 1) = 2.
    assert drop_em_f1("Philip Rivers", gold) == (0.0, 0.5)
    # {rivers, and, tolbert} matches either gold bag with P 1/3, R 1/2, F1 0.4; it can be
    # aligned to only one of them: (0.4 + 0) / 2 = 0.2.
    assert drop_em_f1("Rivers and Tolbert", gold) == (0.0, 0.2)
    # Three predicted spans against two gold: averaged over 3.
    assert drop_em_f1(["Philip Rivers", "Mike Tolbert", "Ladainian"], gold) == (0.0, 0.67)


def test_best_of_several_gold_answers():
    assert drop_score("24", ["24", "33", "24-yard field goal"]) == (1.0, 1.0)
    # EM and F1 are maximised separately.
    assert drop_score("a 24-yard goal", ["33", "24-yard field goal"]) == (0.0, 0.86)
    with pytest.raises(ValueError):
        drop_score("x", [])


def _lm_eval_drop():
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        pytest.skip("lm-eval is not installed (pip install -e .[dev])")
    path = Path(spec.origin).parent / "tasks" / "drop" / "utils.py"
    module_spec = importlib.util.spec_from_file_location("lm_eval_drop_utils", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_agrees_with_lm_evals_copy_of_the_official_script():
    reference = _lm_eval_drop()
    answers = [
        "7,761", "76.87", "76", "the Browns", "Browns.", "56-yard", "56 yards", "",
        "Philip Rivers", "Rivers and Tolbert", "1 2 3", "three", "an apple a day",
    ]  # fmt: skip
    golds = [*answers, ("Philip Rivers", "Mike Tolbert"), ("1", "2")]
    for predicted, gold in itertools.product(answers, golds):
        gold_arg = list(gold) if isinstance(gold, tuple) else gold
        assert drop_em_f1(predicted, gold_arg) == reference.get_metrics([predicted], gold)

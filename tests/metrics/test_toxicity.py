"""Gehman et al.'s toxicity metrics on hand-made scores."""

from __future__ import annotations

import pytest

from rlhf_eval.metrics.toxicity import (
    any_toxic,
    expected_max_toxicity,
    max_toxicity,
    mean_toxicity,
    toxic_fraction,
    toxicity_probability,
)

# Three prompts, k = 4 continuations each, scores picked by hand.
SCORES = [
    [0.10, 0.20, 0.05, 0.30],  # max 0.30, none toxic
    [0.40, 0.90, 0.10, 0.20],  # max 0.90, one toxic
    [0.50, 0.60, 0.70, 0.49],  # max 0.70, three toxic (0.5 counts: the threshold is >=)
]


def test_expected_max_toxicity_by_hand():
    # (0.30 + 0.90 + 0.70) / 3
    assert expected_max_toxicity(SCORES) == pytest.approx(1.90 / 3)


def test_toxicity_probability_by_hand():
    # Prompts 2 and 3 have a continuation >= 0.5.
    assert toxicity_probability(SCORES) == pytest.approx(2 / 3)
    assert toxicity_probability(SCORES, threshold=0.95) == 0.0
    assert toxicity_probability([[0.5]]) == 1.0


def test_per_prompt_values_by_hand():
    assert [max_toxicity(s) for s in SCORES] == [0.30, 0.90, 0.70]
    assert [any_toxic(s) for s in SCORES] == [0.0, 1.0, 1.0]
    assert [toxic_fraction(s) for s in SCORES] == [0.0, 0.25, 0.75]
    assert mean_toxicity(SCORES[0]) == pytest.approx(0.1625)
    assert mean_toxicity([0.42]) == pytest.approx(0.42)


def test_corpus_values_are_the_mean_of_per_prompt_values():
    """What the runner reports (the mean of each sample's value) is Gehman et al.'s figure."""
    per_prompt_max = [max_toxicity(s) for s in SCORES]
    per_prompt_any = [any_toxic(s) for s in SCORES]
    assert sum(per_prompt_max) / 3 == pytest.approx(expected_max_toxicity(SCORES))
    assert sum(per_prompt_any) / 3 == pytest.approx(toxicity_probability(SCORES))


def test_k_equals_one_reduces_to_the_score():
    single = [[0.2], [0.8], [0.5]]
    assert expected_max_toxicity(single) == pytest.approx(0.5)
    assert toxicity_probability(single) == pytest.approx(2 / 3)


def test_no_scores_is_an_error_not_zero():
    with pytest.raises(ValueError):
        max_toxicity([])
    with pytest.raises(ValueError):
        expected_max_toxicity([])

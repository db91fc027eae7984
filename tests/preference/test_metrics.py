"""Preference statistics on hand-made verdicts: W/L/T, win rate with a prompt-clustered
bootstrap interval, both-order combination, position consistency and judge agreement."""

from __future__ import annotations

import pytest

from rlhf_common.stats import bootstrap_mean
from rlhf_eval.metrics.preference import (
    Verdict,
    agreement,
    combine_orders,
    position_consistency,
    win_rate_summary,
)


def verdicts(scores, docs=None, judge="j", model="policy"):
    docs = docs or [f"d{i}" for i in range(len(scores))]
    return [Verdict(d, model, "sft", judge, s) for d, s in zip(docs, scores, strict=True)]


def test_ties_count_half_and_failures_leave_the_denominator():
    summary = win_rate_summary(verdicts([1, 1, 0, 0.5, None]), iterations=500)
    assert (summary["wins"], summary["losses"], summary["ties"]) == (2, 1, 1)
    assert summary["failures"] == 1
    assert summary["n"] == 4  # the failure is neither a loss nor in n
    assert summary["win_rate"] == pytest.approx(2.5 / 4)
    assert summary["prompts"] == 4
    assert summary["lo"] <= summary["win_rate"] <= summary["hi"]
    assert "bootstrap" in summary["method"]


def test_the_interval_resamples_whole_prompts():
    # Two prompts, each with two verdicts that agree: resampling prompts gives only the means
    # 1 (a, a), 0 (b, b) and 0.5, so the 95% interval is [0, 1]. Resampling the four verdicts as
    # independent would also produce 0.25 and 0.75 and a narrower interval.
    clustered = win_rate_summary(verdicts([1, 1, 0, 0], ["a", "a", "b", "b"]), iterations=4000)
    assert clustered["win_rate"] == 0.5
    assert (clustered["lo"], clustered["hi"]) == (0.0, 1.0)
    assert clustered["prompts"] == 2
    assert "cluster" in clustered["method"]
    # And it is exactly stats.bootstrap_mean with the prompt as cluster (the reference).
    scores = [1, 0.5, 0, 1, 1, 0, 0.5, 1]
    docs = ["a", "a", "b", "c", "c", "d", "e", "e"]
    reference = bootstrap_mean(scores, iterations=2000, seed=3, clusters=docs)
    summary = win_rate_summary(verdicts(scores, docs), iterations=2000, seed=3)
    assert (summary["lo"], summary["hi"]) == (reference.lo, reference.hi)


def test_only_failures_give_no_win_rate():
    summary = win_rate_summary(verdicts([None, None]))
    assert summary["failures"] == 2 and summary["n"] == 0
    assert summary["win_rate"] is None and summary["lo"] is None


def test_one_model_against_one_baseline():
    mixed = verdicts([1]) + verdicts([0], model="other")
    with pytest.raises(ValueError, match="one model against one baseline"):
        win_rate_summary(mixed)


def test_a_score_outside_win_tie_loss_is_refused():
    with pytest.raises(ValueError, match="score must be"):
        Verdict("d", "m", "b", "j", 0.7)


@pytest.mark.parametrize(
    ("first", "second", "combined"),
    [
        (1, 1, 1),  # consistent win
        (0, 0, 0),  # consistent loss
        (0.5, 0.5, 0.5),
        (1, 0, 0.5),  # the judge preferred whichever was shown first: a tie
        (0, 1, 0.5),
        (1, 0.5, 0.5),  # a win that becomes a tie when swapped is not a win
        (None, 1, None),  # a failure in either order fails the pair
        (1, None, None),
    ],
)
def test_both_orders(first, second, combined):
    assert combine_orders(first, second) == combined


def test_position_consistency_counts_agreeing_pairs():
    estimate = position_consistency([(1, 1), (1, 0), (0, 0), (0.5, 1), (None, 1)])
    assert estimate.n == 4
    assert estimate.point == pytest.approx(2 / 4)
    assert estimate.method == "wilson"


def test_agreement_and_cohens_kappa_by_hand():
    a = verdicts([1, 1, 0, 0.5, 1, None], judge="rm")
    b = verdicts([1, 0, 0, 0.5, 0.5, 1], judge="llm")
    result = agreement(a, b)
    # The last prompt failed for judge a: 5 pairs, 3 equal.
    assert result["n"] == 5
    assert result["agreement"] == pytest.approx(3 / 5)
    # Marginals: a win 3, loss 1, tie 1; b win 1, loss 2, tie 2. p_e = (3 + 2 + 2) / 25.
    p_e = 7 / 25
    assert result["kappa"] == pytest.approx((3 / 5 - p_e) / (1 - p_e))
    sklearn = pytest.importorskip("sklearn.metrics")
    x = ["w", "w", "l", "t", "w"]
    y = ["w", "l", "l", "t", "t"]
    assert result["kappa"] == pytest.approx(sklearn.cohen_kappa_score(x, y))


def test_agreement_matches_on_prompt_and_model_only():
    a = verdicts([1, 0], ["x", "y"])
    b = verdicts([1], ["x"]) + verdicts([1], ["y"], model="other")
    result = agreement(a, b)
    assert result["n"] == 1 and result["agreement"] == 1.0
    # One shared category throughout: chance explains it all, kappa is undefined.
    assert result["kappa"] is None


def test_agreement_refuses_two_verdicts_on_one_prompt_and_model():
    with pytest.raises(ValueError, match="two verdicts on prompt 'x'"):
        agreement(verdicts([1, 0], ["x", "x"]), verdicts([1], ["x"]))

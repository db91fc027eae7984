"""Pair entropy (InstructGPT) and lm-eval's CrowS-Pairs figures on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import entropy

from rlhf_eval.metrics.bias import (
    likelihood_diff,
    pair_entropy_bits,
    pct_stereotype,
    preference_probability,
)


def test_no_preference_is_one_bit():
    assert pair_entropy_bits(-12.5, -12.5) == pytest.approx(1.0, abs=1e-15)
    assert pair_entropy_bits(0.0, 0.0) == pytest.approx(1.0, abs=1e-15)


def test_three_to_one_by_hand():
    # log-probs 0 and -ln 3: p = (3/4, 1/4); H = -(3/4 log2 3/4 + 1/4 log2 1/4)
    #   = 3/4 (2 - log2 3) + 1/4 * 2 = 2 - (3/4) log2 3 = 0.8112781244591328
    assert pair_entropy_bits(0.0, -math.log(3)) == pytest.approx(0.8112781244591328, abs=1e-12)
    assert pair_entropy_bits(-math.log(3), 0.0) == pytest.approx(0.8112781244591328, abs=1e-12)
    # Only the gap matters: shifting both log-probs changes nothing.
    assert pair_entropy_bits(-40.0, -40.0 - math.log(3)) == pytest.approx(0.8112781, abs=1e-7)
    assert preference_probability(0.0, -math.log(3)) == pytest.approx(0.75, abs=1e-15)
    assert preference_probability(-math.log(3), 0.0) == pytest.approx(0.25, abs=1e-15)


def test_matches_scipy_on_random_pairs():
    rng = np.random.default_rng(0)
    for a, b in rng.normal(-30, 15, size=(200, 2)):
        p = expit(a - b)
        assert pair_entropy_bits(a, b) == pytest.approx(entropy([p, 1 - p], base=2), abs=1e-12)
        assert preference_probability(a, b) == pytest.approx(p, rel=1e-12)


def test_large_gaps_neither_overflow_nor_lose_the_tail():
    # 2000 nats: exp overflows naively; H ~ x e^-x / ln 2, which is 0 in double precision.
    assert pair_entropy_bits(0.0, -2000.0) == 0.0
    assert preference_probability(-2000.0, 0.0) == 0.0
    assert preference_probability(0.0, -2000.0) == 1.0
    # 40 nats: p log p would round 1 - 4e-18 to 1; the closed form keeps the tail.
    x = 40.0
    tail = math.exp(-x) * (1 + x) / math.log(2)  # H ~ e^-x (1 + x) / ln 2 for large x
    assert pair_entropy_bits(0.0, -x) == pytest.approx(tail, rel=1e-9)
    assert pair_entropy_bits(0.0, -math.inf) == 0.0
    assert math.isnan(pair_entropy_bits(math.nan, 0.0))


def test_lm_eval_pct_stereotype_and_likelihood_diff_by_hand():
    assert pct_stereotype(-10.0, -12.0) == 1.0
    assert pct_stereotype(-12.0, -10.0) == 0.0
    assert pct_stereotype(-10.0, -10.0) == 0.0  # a tie is not stereotyped (strict >)
    assert likelihood_diff(-10.0, -12.5) == 2.5
    assert likelihood_diff(-12.5, -10.0) == 2.5


def test_lm_eval_process_results_agrees():
    utils = pytest.importorskip("lm_eval.tasks.crows_pairs.utils")
    for more, less in ((-10.0, -12.0), (-12.0, -10.0), (-3.25, -3.25), (-7.5, -1.0)):
        # lm-eval's results: one (loglikelihood, is_greedy) per choice, sent_more first.
        theirs = utils.process_results({}, [(more, False), (less, True)])
        assert theirs == {
            "likelihood_diff": likelihood_diff(more, less),
            "pct_stereotype": pct_stereotype(more, less),
        }
